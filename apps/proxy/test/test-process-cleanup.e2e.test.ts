// The e2e helpers stop a proxy started inside a test when that test ends, however it ends.
// On a machine without curl the curl helper skips a test midway, after its proxy was started;
// before this, such proxies outlived the test run, still listening.
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

const config = `
proxy:
  http_listen: "127.0.0.1:0"
transforms: []
`;

/** Whether a process with this pid still exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a proxy process started inside a test', () => {
  const started: { pid: number; dir: string }[] = [];
  let kept: ProxyProcess | undefined;
  afterAll(async () => {
    await kept?.stop();
  });

  it('is started, then its test is skipped midway', async (context) => {
    const proxy = await startProxyProcess(config);
    started.push({ pid: proxy.child.pid!, dir: proxy.dir });
    context.skip('skipped on purpose after starting a proxy: the last test checks that it is gone');
  });

  it.fails('is started, then its test fails', async () => {
    const proxy = await startProxyProcess(config);
    started.push({ pid: proxy.child.pid!, dir: proxy.dir });
    expect('this assertion').toBe('failing, on purpose');
  });

  it('is started and kept past its test when asked (a later test uses it)', async () => {
    kept = await startProxyProcess(config, { keepAfterTest: true });
  });

  it('has ended with its test, directory removed, unless kept', async () => {
    expect(started).toHaveLength(2);
    for (const { pid, dir } of started) {
      expect(alive(pid), `proxy ${pid} outlived its test`).toBe(false);
      expect(existsSync(dir)).toBe(false);
    }
    expect(alive(kept!.child.pid!)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${kept!.port('http')}/`)).status).toBeGreaterThan(0);
  });
});
