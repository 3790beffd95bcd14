import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { RUNTIME_FLAGS } from '../src/runtime-flags.js';
import { startProxyProcess } from './support/proxy-process.js';

const config = `
proxy:
  http_listen: "127.0.0.1:0"
transforms: []
`;

/** The command line the kernel reports for `pid` (after any exec). */
async function commandLine(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
}

/** Starts the binary with `env`, returns its V8 flags as the kernel sees them, and stops it. */
async function flagsOf(env: Record<string, string> = {}): Promise<{ args: string[]; samePid: boolean }> {
  const proxy = await startProxyProcess(config, { env });
  try {
    const args = await commandLine(proxy.child.pid!);
    return { args, samePid: args.some((a) => a.endsWith('cli.js')) };
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

  it("keeps the operator's own setting from NODE_OPTIONS", async () => {
    const { args } = await flagsOf({ NODE_OPTIONS: '--max-semi-space-size=8' });
    expect(args.some((a) => a.startsWith('--max-semi-space-size'))).toBe(false);
  });

  it('leaves V8 alone with PROXY_RUNTIME_FLAGS=off', async () => {
    const { args } = await flagsOf({ PROXY_RUNTIME_FLAGS: 'off' });
    expect(args.some((a) => a.startsWith('--max-semi-space-size'))).toBe(false);
  });
});
