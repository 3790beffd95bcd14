/**
 * `log.max_backlog_bytes` end to end: the built proxy writes an audit record per request to
 * stdout, and the test stops reading that stdout while a workload sends thousands of requests,
 * as a stalled log shipper would. The proxy must keep serving every request, hold no more than
 * the bound in waiting lines (the rest dropped and counted on `/metrics`), and, once the reader
 * is back, write whole lines and one warning naming how many were dropped. Both as one process
 * and as a cluster, whose primary writes every worker's lines.
 */
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

let echo: EchoServer;

beforeAll(async () => {
  echo = await startEchoServer();
});

afterAll(async () => {
  await echo.close();
});

function config(workers: number, allowed: string): string {
  return `proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
  workers: ${workers}
log:
  level: info
  max_backlog_bytes: 65536
metrics:
  listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["${allowed}"]
`;
}

/** GET `url` through the forward proxy on `port` with a kept-alive `agent`; resolves with the status. */
function viaProxy(port: number, url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: url, agent, headers: { host: new URL(url).host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Sends `count` requests, 20 at a time; returns how many were answered 200. */
async function workload(proxy: ProxyProcess, count: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 20 });
  let ok = 0;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      if ((await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/backlog/${i}/${'p'.repeat(200)}`, agent)) === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: 20 }, lane));
  agent.destroy();
  return ok;
}

async function droppedOnMetrics(proxy: ProxyProcess): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.port('metrics')}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('proxy_log_dropped_lines_total{'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe.each([
  ['one process', 1],
  ['a cluster of two workers', 2],
])('a stalled log output, %s', (_what, workers) => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await startProxyProcess(config(workers, `127.0.0.1:${echo.port}`));
    if (workers > 1) await proxy.waitForLine((l) => l.msg === 'all workers serving');
  }, 30_000);

  afterAll(async () => {
    // Read again, or the process could not write its last lines and exit.
    proxy.child.stdout.resume();
    await proxy.stop();
  }, 30_000);

  it('keeps serving, drops and counts the lines past the bound, and reports them once the reader is back', async () => {
    const before = await droppedOnMetrics(proxy);
    expect(before).toBe(0);
    // The reader stops: the pipe to the test fills, then the proxy's own backlog.
    proxy.child.stdout.pause();
    const requests = 4000;
    expect(await workload(proxy, requests)).toBe(requests);
    // About 2 MB of audit records against 64 KiB of backlog and the pipe's buffer (its size
    // depends on the system, hence no tighter bound here).
    expect(await droppedOnMetrics(proxy)).toBeGreaterThan(0);

    proxy.child.stdout.resume();
    const warnings = async (): Promise<number> => {
      await proxy.waitForLine((l) => typeof l['dropped_lines'] === 'number', 15_000);
      return proxy
        .lines()
        .filter((l) => typeof l['dropped_lines'] === 'number')
        .reduce((sum, l) => sum + Number(l['dropped_lines']), 0);
    };
    expect(await warnings()).toBeGreaterThan(0);
    // Every audit line that arrived is whole JSON (lines() parses them), and kept + dropped make up the workload.
    await expect.poll(async () => proxy.audits().filter((r) => String(r['path']).startsWith('/backlog/')).length + (await droppedOnMetrics(proxy)), { timeout: 15_000 }).toBe(requests);
    // Each drop was reported in a warning line once its output had caught up.
    await expect.poll(warnings, { timeout: 15_000 }).toBe(await droppedOnMetrics(proxy));
    const warning = proxy.lines().find((l) => typeof l['dropped_lines'] === 'number');
    expect(warning).toMatchObject({ level: 'warn' });
    expect(String(warning?.msg)).toContain('log.max_backlog_bytes');
  }, 60_000);
});
