import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUNTIME_ENV, RUNTIME_FLAGS } from '../src/runtime-flags.js';
import { cliPath, startInstalledProxy, startProxyProcess } from './support/proxy-process.js';

const config = `
proxy:
  http_listen: "127.0.0.1:0"
transforms: []
`;

/** The command line the kernel reports for `pid` (after any exec). */
async function commandLine(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
}

/** The environment the kernel reports for `pid` (after any exec). */
async function environmentOf(pid: number): Promise<Record<string, string>> {
  const entries = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter((e) => e.includes('='));
  return Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** Starts the binary with `env`, returns its V8 flags and environment as the kernel sees them, and stops it. */
async function flagsOf(env: Record<string, string> = {}): Promise<{ args: string[]; environment: Record<string, string>; samePid: boolean }> {
  const proxy = await startProxyProcess(config, { env });
  try {
    const args = await commandLine(proxy.child.pid!);
    return { args, environment: await environmentOf(proxy.child.pid!), samePid: args.some((a) => a.endsWith('cli.js')) };
  } finally {
    await proxy.stop();
  }
}

describe('runtime flags of the proxy binary', () => {
  it('restarts itself in place with the capped young generation', async () => {
    const { args, samePid } = await flagsOf();
    expect(samePid).toBe(true);
    for (const flag of RUNTIME_FLAGS) expect(args).toContain(flag);
    expect(args.filter((a) => a.startsWith('--max-semi-space-size'))).toHaveLength(1);
  });

  it('caps the allocator arenas unless the operator set MALLOC_ARENA_MAX', async () => {
    const { environment } = await flagsOf();
    expect(environment).toMatchObject(RUNTIME_ENV);
    expect((await flagsOf({ MALLOC_ARENA_MAX: '8' })).environment.MALLOC_ARENA_MAX).toBe('8');
    // Only the variable missing: the process still restarts for it, V8 flags left as given.
    const onlyEnv = await flagsOf({ NODE_OPTIONS: '--max-semi-space-size=8' });
    expect(onlyEnv.environment.MALLOC_ARENA_MAX).toBe('2');
    expect(onlyEnv.args.some((a) => a.startsWith('--max-semi-space-size'))).toBe(false);
  });

  it("keeps the operator's own setting from NODE_OPTIONS", async () => {
    const { args } = await flagsOf({ NODE_OPTIONS: '--max-semi-space-size=8' });
    expect(args.some((a) => a.startsWith('--max-semi-space-size'))).toBe(false);
  });

  it('leaves V8 alone with PROXY_RUNTIME_FLAGS=off', async () => {
    const { args, environment } = await flagsOf({ PROXY_RUNTIME_FLAGS: 'off' });
    expect(args.some((a) => a.startsWith('--max-semi-space-size'))).toBe(false);
    expect(environment.MALLOC_ARENA_MAX).toBeUndefined();
  });

  it('collects start-up garbage once serving, and not with PROXY_RUNTIME_FLAGS=off', async () => {
    // V8 reports a forced full collection as "Mark-Compact (reduce) ... testing".
    const forced = async (env: Record<string, string>, waitMs: number): Promise<string[]> => {
      const dir = await mkdtemp(join(tmpdir(), 'proxy-e2e-'));
      await writeFile(join(dir, 'proxy.yaml'), config);
      const proxy = await startInstalledProxy(process.execPath, ['--trace-gc', cliPath, '--config', join(dir, 'proxy.yaml')], { dir, env });
      try {
        // It runs right after the listeners open: 1.5 s is plenty to see that it did not.
        for (let waited = 0; waited < waitMs && !proxy.stdout().includes('testing;'); waited += 50) await new Promise((r) => setTimeout(r, 50));
        return proxy.stdout().split('\n').filter((l) => l.includes('Mark-Compact') && l.includes('testing;'));
      } finally {
        await proxy.stop();
        await rm(dir, { recursive: true, force: true });
      }
    };
    expect((await forced({}, 10_000)).length).toBeGreaterThanOrEqual(1);
    expect(await forced({ PROXY_RUNTIME_FLAGS: 'off' }, 1500)).toEqual([]);
  });

  it('collects start-up garbage in the primary of a cluster too, once its workers serve', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-e2e-'));
    await writeFile(join(dir, 'proxy.yaml'), config.replace('proxy:\n', 'proxy:\n  workers: 2\n'));
    const proxy = await startInstalledProxy(process.execPath, ['--trace-gc', cliPath, '--config', join(dir, 'proxy.yaml')], { dir });
    try {
      // --trace-gc lines start with "[<pid>:": the primary's are the ones with the pid it was started as.
      const primary = `[${proxy.child.pid}:`;
      const ofPrimary = (): string[] => proxy.stdout().split('\n').filter((l) => l.startsWith(primary) && l.includes('Mark-Compact') && l.includes('testing;'));
      for (let waited = 0; waited < 15_000 && ofPrimary().length === 0; waited += 50) await new Promise((r) => setTimeout(r, 50));
      expect(ofPrimary().length).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('paces young collections by buffer memory while serving large bodies, and not with PROXY_RUNTIME_FLAGS=off', async () => {
    // 48 MiB of responses through the forward listener, 1 MiB each; V8 reports a forced young
    // collection as "Scavenge ... testing".
    const body = Buffer.alloc(1024 * 1024, 'x');
    const origin: Server = createServer((_req, res) => res.end(body));
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const originPort = (origin.address() as AddressInfo).port;
    const forcedScavenges = async (env: Record<string, string>): Promise<number> => {
      const dir = await mkdtemp(join(tmpdir(), 'proxy-e2e-'));
      await writeFile(join(dir, 'proxy.yaml'), config.replace('proxy:\n', 'proxy:\n  upstream_deny_cidrs: []\n'));
      const proxy = await startInstalledProxy(process.execPath, ['--trace-gc', cliPath, '--config', join(dir, 'proxy.yaml')], { dir, env });
      try {
        const through = (): Promise<number> =>
          new Promise((resolve, reject) => {
            const req = request({ host: '127.0.0.1', port: proxy.port('http'), path: `http://127.0.0.1:${originPort}/`, headers: { host: `127.0.0.1:${originPort}` } }, (res) => {
              let bytes = 0;
              res.on('data', (chunk: Buffer) => (bytes += chunk.length));
              res.on('end', () => resolve(bytes));
            });
            req.on('error', reject);
            req.end();
          });
        for (let i = 0; i < 48; i++) expect(await through()).toBe(body.length);
        return proxy.stdout().split('\n').filter((l) => l.includes('Scavenge') && l.includes('testing;')).length;
      } finally {
        await proxy.stop();
        await rm(dir, { recursive: true, force: true });
      }
    };
    try {
      expect(await forcedScavenges({})).toBeGreaterThanOrEqual(2);
      expect(await forcedScavenges({ PROXY_RUNTIME_FLAGS: 'off' })).toBe(0);
    } finally {
      await new Promise((resolve) => origin.close(resolve));
    }
  });
});
