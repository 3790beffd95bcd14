/**
 * The heavy runtimes of optional transforms (the LLM SDKs of `judge`, gRPC of `grpc`) are
 * loaded when such a transform is built, not when the proxy starts: a proxy that does not use
 * them must not pay their memory. A resolve hook in the proxy process records every module URL
 * it loads; the proxy is started on a config without those transforms.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, requireBuiltCli } from './support/proxy-process.js';

const run = promisify(execFile);

/** Registered with `--import`: prints every resolved module URL to stderr when the process exits. */
const RECORDER = `
import { registerHooks } from 'node:module';
const seen = new Set();
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });
process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify([...seen]) + '\\n'));
`;

describe('optional runtimes are loaded on demand', () => {
  let dir: string;
  beforeAll(async () => {
    requireBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'lazy-load-'));
    await writeFile(join(dir, 'recorder.mjs'), RECORDER);
    await writeFile(
      join(dir, 'proxy.yaml'),
      'dns:\n  enabled: false\nproxy:\n  http_listen: "127.0.0.1:0"\ntransforms:\n  - name: allowlist\n    config:\n      domains: ["example.com"]\n',
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a proxy without judge or grpc transforms never loads the Anthropic, OpenAI or gRPC libraries', async () => {
    const { stdout, stderr } = await run(process.execPath, ['--import', join(dir, 'recorder.mjs'), cliPath, 'validate', '--config', join(dir, 'proxy.yaml')], {
      env: { PATH: process.env.PATH ?? '', PROXY_RUNTIME_FLAGS: 'off' },
    });
    expect(stdout).toContain('valid');
    const line = stderr.split('\n').find((l) => l.startsWith('LOADED '));
    const loaded = JSON.parse(line?.slice('LOADED '.length) ?? '[]') as string[];
    // The recorder works: the transform packages themselves (their schemas) are loaded.
    expect(loaded.some((url) => url.includes('/transform-judge/'))).toBe(true);
    expect(loaded.some((url) => url.includes('/transform-grpc/'))).toBe(true);
    for (const heavy of ['/@anthropic-ai/sdk/', '/openai/', '/@grpc/grpc-js/', '/@grpc/proto-loader/']) {
      expect(loaded.filter((url) => url.includes(heavy))).toEqual([]);
    }
  });
});
