import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { transformService } from '@proxy/transform-grpc/service';
import { type TransformRequestRequest, type TransformRequestResponse } from '@proxy/transform-grpc';
import { request, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { RUNTIME_ENV, RUNTIME_FLAGS } from '../src/runtime-flags.js';
import { version } from '../src/version.js';
import { cliPath } from './support/proxy-process.js';

// The single executable (`pnpm build:sea`): run with no Node.js on PATH, it must do what the
// `proxy` bin does. A binary older than the built CLI or the app's sources is rebuilt first
// (20 s on two busy cores).

const run = promisify(execFile);
const appDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(appDir, '../..');
const binary = join(appDir, 'dist-sea', 'proxy');

let echo: EchoServer;
let dir: string;
/** A PATH with nothing on it: no `node` to fall back on. */
let emptyBin: string;

/** The newest modification time among the files the binary is built from (the workspace packages' through the built CLI). */
function newestInput(): number {
  const files = [cliPath, join(appDir, 'tsdown.sea.config.ts'), join(appDir, 'scripts/build-sea.mjs')];
  for (const entry of readdirSync(join(appDir, 'src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(join(entry.parentPath, entry.name));
  }
  return Math.max(...files.map((f) => (existsSync(f) ? statSync(f).mtimeMs : Infinity)));
}

async function buildBinaryIfStale(): Promise<void> {
  if (existsSync(binary) && statSync(binary).mtimeMs >= newestInput()) return;
  const started = Date.now();
  await run(process.execPath, [join(repoRoot, 'node_modules/tsdown/dist/run.mjs'), '-c', 'tsdown.sea.config.ts'], { cwd: appDir });
  await run(process.execPath, ['scripts/build-sea.mjs'], { cwd: appDir });
  console.log(`sea: built ${binary} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** scripts/build-sea.mjs builds for Linux only; the restart checks read /proc. */
const linux = process.platform === 'linux';

beforeAll(async () => {
  if (!linux) return;
  await buildBinaryIfStale();
  echo = await startEchoServer({ host: '127.0.0.1' });
  dir = await mkdtemp(join(tmpdir(), 'proxy-sea-'));
  emptyBin = join(dir, 'bin');
  await mkdir(emptyBin);
}, 240_000);

afterAll(async () => {
  await echo?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Runs the binary to completion with only `emptyBin` on PATH. */
function runBinary(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(binary, args, { cwd: dir, env: { PATH: emptyBin, HOME: dir, ...env } }, (err, stdout, stderr) =>
      resolvePromise({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
    );
  });
}

const config = (extra = ''): string => `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      rules: [{ cidr: "127.0.0.0/8", ports: [${echo.port}] }]${extra}
`;

type LogLine = Record<string, unknown>;

/** Starts the binary on `configFile`; resolves once it logs "listening", with the time that took. */
async function serve(configFile: string, args: readonly string[] = []) {
  const started = performance.now();
  const child = spawn(binary, ['--config', configFile, ...args], { cwd: dir, env: { PATH: emptyBin, HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
  const lines = (): LogLine[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  const waitFor = (pred: (l: LogLine) => boolean): Promise<LogLine> =>
    new Promise((resolveLine, reject) => {
      const check = (): boolean => {
        const hit = lines().find(pred);
        if (hit) resolveLine(hit);
        return hit !== undefined;
      };
      const timer = setTimeout(() => reject(new Error(`timed out; stdout:\n${out}\nstderr:\n${err}`)), 20_000);
      const onData = (): void => {
        if (check()) {
          clearTimeout(timer);
          child.stdout.off('data', onData);
        }
      };
      child.stdout.on('data', onData);
      onData();
      void exited.then(() => check() || reject(new Error(`exited early; stdout:\n${out}\nstderr:\n${err}`)));
    });
  const listening = await waitFor((l) => l.msg === 'listening');
  const startMs = performance.now() - started;
  const port = Number(String(listening.address).split(':').pop());
  return { child, port, startMs, waitFor, exited, stderr: () => err };
}

describe.skipIf(!linux)('the single executable', () => {
  it('has no Node.js on the PATH it runs with', async () => {
    const { stdout } = await run('/bin/sh', ['-c', 'command -v node || echo absent'], { env: { PATH: emptyBin } });
    expect(stdout.trim()).toBe('absent');
    const size = statSync(binary).size / 2 ** 20;
    console.log(`sea: ${binary} is ${size.toFixed(1)} MiB`);
  });

  it('prints its version', async () => {
    expect(await runBinary(['--version'])).toMatchObject({ code: 0, stdout: `proxy ${version}\n` });
  });

  it('validates a config', async () => {
    const example = join(repoRoot, 'examples/quickstart.yaml');
    const result = await runBinary(['validate', '--config', example]);
    expect(result).toMatchObject({ code: 0, stdout: `${example}: valid (2 transforms)\n` });
  });

  it('serves: allows, denies and audits requests, restarts once in place, stops on SIGTERM', async () => {
    const file = join(dir, 'proxy.yaml');
    await writeFile(file, config());
    const proxy = await serve(file);
    console.log(`sea: listening ${Math.round(proxy.startMs)} ms after spawn`);
    try {
      // The in-place restart for MALLOC_ARENA_MAX happened (same PID, no Node.js flags among the
      // arguments) and did not repeat: the process that listens is the one spawned.
      const pid = proxy.child.pid!;
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      for (const [name, value] of Object.entries(RUNTIME_ENV)) expect(environ).toContain(`${name}=${value}`);
      expect(environ).toContain(`NODE_OPTIONS=${RUNTIME_FLAGS.join(' ')}`);
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
      expect(cmdline).toEqual([binary, '--config', file]);

      const dispatcher = new ProxyAgent(`http://127.0.0.1:${proxy.port}`);
      try {
        const allowed = await request(`http://127.0.0.1:${echo.port}/allowed`, { dispatcher });
        await allowed.body.text();
        expect(allowed.statusCode).toBe(200);
        const denied = await request(`http://127.0.0.1:${echo.port + 1}/denied`, { dispatcher });
        await denied.body.text();
        expect(denied.statusCode).toBe(403);
      } finally {
        await dispatcher.close();
      }
      expect(await proxy.waitFor((l) => l.msg === 'request' && l.path === '/allowed')).toMatchObject({ action: 'allow', status_code: 200, method: 'GET' });
      expect(await proxy.waitFor((l) => l.msg === 'request' && l.path === '/denied')).toMatchObject({ action: 'reject', rejected_by: 'allowlist' });
    } finally {
      proxy.child.kill('SIGTERM');
    }
    expect(await proxy.exited).toEqual({ code: 0, signal: null });
  });

  it('runs workers: each a process of the binary itself, with the runtime settings, serving', async () => {
    const file = join(dir, 'workers.yaml');
    await writeFile(file, config());
    const proxy = await serve(file, ['--workers', '2']);
    try {
      await proxy.waitFor((l) => l.msg === 'all workers serving');
      for (const id of [1, 2]) {
        const pid = (await proxy.waitFor((l) => l.msg === 'worker serving' && l.worker === id)).pid as number;
        // cluster.fork names a script: the binary itself, which the worker drops from its arguments.
        const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
        expect(cmdline).toEqual([binary, binary, '--config', file, '--workers', '2']);
        const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
        expect(environ).toContain(`NODE_OPTIONS=${RUNTIME_FLAGS.join(' ')}`);
      }
      const dispatcher = new ProxyAgent(`http://127.0.0.1:${proxy.port}`);
      try {
        const allowed = await request(`http://127.0.0.1:${echo.port}/from-a-worker`, { dispatcher });
        await allowed.body.text();
        expect(allowed.statusCode).toBe(200);
      } finally {
        await dispatcher.close();
      }
      expect(await proxy.waitFor((l) => l.msg === 'request' && l.path === '/from-a-worker')).toMatchObject({ action: 'allow', worker: expect.any(Number) });
    } finally {
      proxy.child.kill('SIGTERM');
    }
    expect(await proxy.exited).toEqual({ code: 0, signal: null });
  });

  it('restarts once for the runtime settings, keeping the operator\'s NODE_OPTIONS and their own V8 flags', async () => {
    // A preloaded script reports each process image: NODE_OPTIONS reaches the binary (the SEA
    // default, execArgvExtension "env"), so it sees both the first start and the restart.
    const probe = join(dir, 'probe.cjs');
    await writeFile(probe, `process.stdout.write(JSON.stringify({ pid: process.pid, options: process.env.NODE_OPTIONS, arenas: process.env.MALLOC_ARENA_MAX }) + '\\n');`);
    const starts = async (nodeOptions: string): Promise<unknown[]> => {
      const { code, stdout } = await runBinary(['--version'], { NODE_OPTIONS: nodeOptions });
      expect(code).toBe(0);
      return stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as unknown);
    };
    const preload = `--require ${probe}`;
    const [first, second, ...more] = (await starts(preload)) as { pid: number }[];
    expect(more).toEqual([]);
    expect(second).toEqual({ pid: first!.pid, options: `${preload} ${RUNTIME_FLAGS.join(' ')}`, arenas: '2' });
    const own = `${preload} --max-semi-space-size=8`;
    expect((await starts(own))[1]).toMatchObject({ options: own, arenas: '2' });
    // PROXY_RUNTIME_FLAGS=off: no restart.
    const off = await runBinary(['--version'], { NODE_OPTIONS: preload, PROXY_RUNTIME_FLAGS: 'off' });
    expect(off.stdout.split('\n').filter((l) => l.startsWith('{'))).toHaveLength(1);
  });

  it('loads a third-party transform from node_modules beside the config', async () => {
    const project = join(dir, 'third-party');
    await mkdir(join(project, 'node_modules', '@acme'), { recursive: true });
    await symlink(join(repoRoot, 'examples/third-party-transform'), join(project, 'node_modules', '@acme', 'proxy-transform-example'), 'dir');
    const file = join(project, 'proxy.yaml');
    await writeFile(file, config(`\n  - name: "@acme/proxy-transform-example"\n    config:\n      require_headers: ["X-Team"]`));
    const proxy = await serve(file);
    try {
      const dispatcher = new ProxyAgent(`http://127.0.0.1:${proxy.port}`);
      try {
        const res = await request(`http://127.0.0.1:${echo.port}/no-team`, { dispatcher });
        await res.body.text();
        expect(res.statusCode).toBe(403);
      } finally {
        await dispatcher.close();
      }
      expect(await proxy.waitFor((l) => l.msg === 'request' && l.path === '/no-team')).toMatchObject({ rejected_by: '@acme/proxy-transform-example' });
    } finally {
      proxy.child.kill('SIGTERM');
    }
    expect((await proxy.exited).code).toBe(0);
  });

  it("gives a plugin the binary's own @proxy/core: what it throws keeps its status, with no copy on disk", async () => {
    const project = join(dir, 'bundled-core');
    const plugin = join(project, 'node_modules', '@acme', 'throws-451');
    await mkdir(plugin, { recursive: true });
    // No @proxy/core anywhere beside the plugin: only the binary's bundled one can satisfy it.
    await writeFile(join(plugin, 'package.json'), JSON.stringify({ name: '@acme/throws-451', version: '1.0.0', type: 'module', exports: './index.js', peerDependencies: { '@proxy/core': '*' } }));
    await writeFile(
      join(plugin, 'index.js'),
      `import { defineTransform, ErrorCodes, ProxyError } from '@proxy/core';
export default defineTransform({
  name: '@acme/throws-451',
  schema: { type: 'object' },
  create: () => ({
    onRequest(request) {
      if (request.path === '/legal') throw new ProxyError(ErrorCodes.TRANSFORM_FAILED, 'unavailable', { status: 451, reason: 'legal_hold' });
    },
  }),
});
`,
    );
    const file = join(project, 'proxy.yaml');
    await writeFile(file, config(`\n  - name: "@acme/throws-451"`));
    const proxy = await serve(file);
    try {
      const dispatcher = new ProxyAgent(`http://127.0.0.1:${proxy.port}`);
      try {
        const legal = await request(`http://127.0.0.1:${echo.port}/legal`, { dispatcher });
        await legal.body.text();
        expect(legal.statusCode).toBe(451);
        const fine = await request(`http://127.0.0.1:${echo.port}/fine`, { dispatcher });
        await fine.body.text();
        expect(fine.statusCode).toBe(200);
      } finally {
        await dispatcher.close();
      }
      expect(await proxy.waitFor((l) => l.msg === 'request' && l.path === '/legal')).toMatchObject({ status_code: 451, rejected_by: '@acme/throws-451', reason: 'legal_hold' });
    } finally {
      proxy.child.kill('SIGTERM');
    }
    expect((await proxy.exited).code).toBe(0);
  });

  it('speaks the grpc transform protocol from the .proto embedded in the bundle', async () => {
    const policy = new Server();
    policy.addService(transformService().definition, {
      TransformRequest(call: ServerUnaryCall<TransformRequestRequest, TransformRequestResponse>, callback: sendUnaryData<TransformRequestResponse>) {
        const deny = (call.request.request.url ?? '').startsWith('/deny');
        callback(null, deny ? { action: 'TRANSFORM_ACTION_REJECT', response: { status_code: 451, body: Buffer.from('denied by policy') } } : {});
      },
      TransformResponse(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
        callback(null, {});
      },
    });
    const policyPort = await new Promise<number>((resolvePort, reject) =>
      policy.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err === null ? resolvePort(port) : reject(err))),
    );
    const file = join(dir, 'grpc.yaml');
    await writeFile(file, config(`\n  - name: grpc\n    config:\n      name: policy\n      target: "127.0.0.1:${policyPort}"\n      timeout: 2s`));
    const proxy = await serve(file);
    try {
      const dispatcher = new ProxyAgent(`http://127.0.0.1:${proxy.port}`);
      try {
        const denied = await request(`http://127.0.0.1:${echo.port}/deny`, { dispatcher });
        expect({ status: denied.statusCode, body: await denied.body.text() }).toEqual({ status: 451, body: 'denied by policy' });
        const allowed = await request(`http://127.0.0.1:${echo.port}/ok`, { dispatcher });
        await allowed.body.text();
        expect(allowed.statusCode).toBe(200);
      } finally {
        await dispatcher.close();
      }
    } finally {
      proxy.child.kill('SIGTERM');
      policy.forceShutdown();
    }
    expect((await proxy.exited).code).toBe(0);
  });

  it('names the 1Password SDK as missing rather than failing obscurely', async () => {
    const file = join(dir, 'op.yaml');
    await writeFile(
      file,
      config(`
  - name: secrets
    config:
      secrets:
        - source: { type: 1password, token_env: OP_TOKEN, secret_ref: "op://vault/item/field" }
          replace: { proxy_value: "x" }`),
    );
    const result = await runBinary(['validate', '--config', file, '--check-secrets'], { OP_TOKEN: 'not-a-token' });
    expect(result.stdout + result.stderr).toContain('1Password SDK is not part of the single executable');
  });
});
