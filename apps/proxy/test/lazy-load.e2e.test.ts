/**
 * What a process does not use, it does not load. The heavy runtimes of optional transforms (the
 * LLM SDKs of `judge`, gRPC of `grpc`, the AWS SDK, google-auth-library, jose and oauth4webapi
 * of the credential transforms) are loaded when such a transform is built or first mints, not
 * when the proxy starts; the engine (Fastify, undici) only by a process that serves, not by `validate`
 * or the primary of a cluster. A resolve hook in each process records every module URL it
 * loads and prints them at exit, tagged with the process's role.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, requireBuiltCli } from './support/proxy-process.js';

const run = promisify(execFile);

/** The module lists the recorder wrote into `dir`, one per process; each read list is removed. */
async function loadedLists(dir: string): Promise<{ role: string; urls: string[] }[]> {
  const files = (await readdir(dir)).filter((f) => f.startsWith('loaded-'));
  const lists = await Promise.all(files.map(async (f) => JSON.parse(await readFile(join(dir, f), 'utf8')) as { role: string; urls: string[] }));
  await Promise.all(files.map((f) => rm(join(dir, f))));
  return lists;
}

/** Module URLs of the engine and the HTTP stack it brings. */
const ENGINE = ['/engine/dist/index.js', '/node_modules/fastify/', '/node_modules/undici/'];

/** Module URLs of the credential SDKs that only `aws_jwt`, `aws_auth`, the AWS secret sources, `gcp_*` and `oauth_token` use. */
const CREDENTIAL_SDKS = ['/@aws-sdk/', '/@smithy/', '/google-auth-library/', '/gaxios/', '/jose/', '/oauth4webapi/'];

/** Registered with `--import`: writes every resolved module URL to `$LOADED_DIR/loaded-<pid>.json` when the process exits. */
const RECORDER = `
import cluster from 'node:cluster';
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { join } from 'node:path';
const seen = new Set();
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });
const role = cluster.isWorker ? 'worker' : 'primary';
// One file per process: lines this long written by several processes to one pipe would interleave.
process.on('exit', () => writeFileSync(join(process.env.LOADED_DIR, 'loaded-' + process.pid + '.json'), JSON.stringify({ role, urls: [...seen] })));
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

  it('validate loads neither the LLM, gRPC or credential SDKs nor the engine', async () => {
    const { stdout } = await run(process.execPath, ['--import', join(dir, 'recorder.mjs'), cliPath, 'validate', '--config', join(dir, 'proxy.yaml')], {
      env: { PATH: process.env.PATH ?? '', PROXY_RUNTIME_FLAGS: 'off', LOADED_DIR: dir },
    });
    expect(stdout).toContain('valid');
    const [loaded] = await loadedLists(dir);
    // The recorder works: the transform packages themselves (their schemas) are loaded.
    expect(loaded?.urls.some((url) => url.includes('/transform-judge/'))).toBe(true);
    expect(loaded?.urls.some((url) => url.includes('/transform-grpc/'))).toBe(true);
    for (const heavy of ['/@anthropic-ai/sdk/', '/openai/', '/@grpc/grpc-js/', '/@grpc/proto-loader/', ...CREDENTIAL_SDKS, ...ENGINE]) {
      expect(loaded?.urls.filter((url) => url.includes(heavy))).toEqual([]);
    }
  });

  /** Starts the proxy on `config`, waits until it listens, stops it and returns what it loaded. */
  async function servedModules(config: string, env: Record<string, string> = {}): Promise<string[]> {
    const file = join(dir, 'serve.yaml');
    await writeFile(file, config);
    const child = spawn(process.execPath, ['--import', join(dir, 'recorder.mjs'), cliPath, '--config', file], {
      env: { PATH: process.env.PATH ?? '', PROXY_RUNTIME_FLAGS: 'off', LOADED_DIR: dir, ...env },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.resume();
    const deadline = Date.now() + 20_000;
    while (!stdout.includes('"listening"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stdout).toContain('"listening"');
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    const [loaded] = await loadedLists(dir);
    return loaded?.urls ?? [];
  }

  it('a serving proxy without credential transforms or DNS loads none of their libraries; aws_jwt loads the AWS SDK when built', async () => {
    const plain = await servedModules(await readFile(join(dir, 'proxy.yaml'), 'utf8'));
    expect(plain.some((url) => url.includes('/transform-aws-jwt/'))).toBe(true);
    for (const sdk of CREDENTIAL_SDKS) expect(plain.filter((url) => url.includes(sdk))).toEqual([]);
    // With `dns.enabled: false`, neither is the DNS server nor its wire format.
    expect(plain.filter((url) => url.includes('/dns/dist/') || url.includes('/dns-packet/'))).toEqual([]);

    // The same recorder sees the SDK once a transform needs it (no STS call: the client only reads its region).
    const withJwt = await servedModules(
      'dns:\n  enabled: false\nproxy:\n  http_listen: "127.0.0.1:0"\ntransforms:\n  - name: aws_jwt\n    config:\n      audience: ["https://api.example.com"]\n',
      { AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' },
    );
    expect(withJwt.some((url) => url.includes('/@aws-sdk/client-sts/'))).toBe(true);
  });

  it('the primary of a cluster does not load the engine; its workers do', async () => {
    const child = spawn(process.execPath, ['--import', join(dir, 'recorder.mjs'), cliPath, '--config', join(dir, 'proxy.yaml'), '--workers', '2'], {
      env: { PATH: process.env.PATH ?? '', PROXY_RUNTIME_FLAGS: 'off', LOADED_DIR: dir },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.resume();
    const deadline = Date.now() + 20_000;
    while ((stdout.match(/"listening"/g) ?? []).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    const lists = await loadedLists(dir);
    const primary = lists.filter((l) => l.role === 'primary');
    const workers = lists.filter((l) => l.role === 'worker');
    expect(primary).toHaveLength(1);
    expect(workers).toHaveLength(2);
    for (const part of ENGINE) {
      expect(primary[0]?.urls.filter((url) => url.includes(part))).toEqual([]);
      for (const worker of workers) expect(worker.urls.some((url) => url.includes(part))).toBe(true);
    }
  });
});
