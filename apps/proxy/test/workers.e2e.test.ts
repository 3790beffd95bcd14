/**
 * `proxy.workers` end to end: the built binary runs as a cluster primary with two workers
 * behind its loopback listeners, driven with real clients over new connections. It proves
 * that both workers serve, that the audit stream stays whole JSON lines under concurrency with
 * records longer than a pipe's atomic write, that `/metrics` adds the workers up, that SIGHUP
 * reloads every worker, that a killed worker is replaced while the listener keeps accepting
 * (after growing delays when it keeps dying),
 * that SIGTERM drains, and that one worker means no cluster at all.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { parseSample } from '../src/metrics-merge.js';
import { runCli, startProxyCommand, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';

/** The outcome of one request through the proxy: its status, or the error code of a failed connection. */
type Outcome = { status: number } | { error: string };

/** GET `url` through the forward proxy on `port`, on a new connection (no keep-alive agent). */
function viaProxy(port: number, url: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: url, agent: false, headers: { host: new URL(url).host } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

function config(echoPort: number, allowed: string, workers = 2): string {
  return `proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
  workers: ${workers}
metrics:
  listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["${allowed}"]
`;
}

/** The pids of the child processes of `pid`. */
async function childPids(pid: number): Promise<number[]> {
  try {
    const { stdout } = await promisify(execFile)('ps', ['--ppid', String(pid), '-o', 'pid=']);
    return stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
  } catch {
    return [];
  }
}

/** The sum of a counter's samples (every label set) in a Prometheus text. */
function counterSum(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

let echo: EchoServer;

/**
 * Sends `count` requests for `/<prefix>/<i>` to the echo upstream through the proxy, on new
 * connections, each answered 200; returns the workers their audit records name.
 */
async function servingWorkers(proxy: ProxyProcess, prefix: string, count: number): Promise<Set<unknown>> {
  const before = proxy.audits().length;
  for (let i = 0; i < count; i++) expect(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/${prefix}/${i}`)).toEqual({ status: 200 });
  await proxy.waitForAudit((r) => r.path === `/${prefix}/${count - 1}`, before);
  return new Set(proxy.audits().slice(before).map((r) => r.worker));
}
beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
});
afterAll(async () => {
  await echo?.close();
});

describe('two workers behind one set of listeners', () => {
  let proxy: ProxyProcess;
  let target: string;
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${proxy.port('metrics')}/metrics`)).text();

  beforeAll(async () => {
    target = `127.0.0.1:${echo.port}`;
    proxy = await startProxyProcess(config(echo.port, target));
    await proxy.waitForLine((l) => l.msg === 'all workers serving');
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('forks two workers, each logging its listener on the same port, and serves from both over new connections', async () => {
    const children = await childPids(proxy.child.pid!);
    expect(children.length).toBe(2);
    // The primary settled the runtime flags; the workers inherited them and did not restart again.
    for (const pid of children) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      expect(argv.filter((a) => a === '--max-semi-space-size=16')).toHaveLength(1);
      expect((await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')).toContain('MALLOC_ARENA_MAX=2');
    }
    const listening = proxy.lines().filter((l) => l.msg === 'listening' && l.listener === 'http');
    expect(listening.map((l) => l.worker).sort()).toEqual([1, 2]);
    expect(new Set(listening.map((l) => l.address)).size).toBe(1);
    const before = proxy.audits().length;
    for (let i = 0; i < 40; i++) expect(await viaProxy(proxy.port('http'), `http://${target}/spread/${i}`)).toEqual({ status: 200 });
    await proxy.waitForAudit((r) => r.path === '/spread/39', before);
    const workers = proxy.audits().slice(before).map((r) => r.worker);
    expect(new Set(workers)).toEqual(new Set([1, 2]));
    // Round-robin: neither worker got (nearly) all of them.
    expect(workers.filter((w) => w === 1).length).toBeGreaterThan(5);
    expect(workers.filter((w) => w === 2).length).toBeGreaterThan(5);
  });

  it('keeps the audit stream whole JSON lines under concurrency, with records longer than 4 KiB', async () => {
    const count = 300;
    const long = 'x'.repeat(6000);
    const before = proxy.audits().length;
    const outcomes = await Promise.all(Array.from({ length: count }, (_, i) => viaProxy(proxy.port('http'), `http://${target}/long/${i}/${long}?q=${long}`)));
    expect(outcomes.filter((o) => !('status' in o) || o.status !== 200)).toEqual([]);
    await expect.poll(() => proxy.audits().length - before, { timeout: 15_000 }).toBeGreaterThanOrEqual(count);
    const lines = proxy.stdout().split('\n');
    expect(lines.pop()).toBe('');
    // Every line of stdout parses on its own: no line was cut or interleaved with another.
    const parsed = lines.map((l) => JSON.parse(l) as LogLine);
    const long_records = parsed.filter((r) => r.msg === 'request' && String(r.path).startsWith('/long/'));
    expect(long_records.length).toBe(count);
    expect(new Set(long_records.map((r) => r.path)).size).toBe(count);
    expect(lines.filter((l) => l.includes('"path":"/long/')).every((l) => l.length > 6_000)).toBe(true);
    expect(new Set(long_records.map((r) => r.worker))).toEqual(new Set([1, 2]));
  });

  it('serves one /metrics that adds the workers up, one # TYPE per name, gauges per worker and the primary\'s own', async () => {
    const before = counterSum(await scrape(), 'proxy_requests_total');
    const k = 24;
    const audits = proxy.audits().length;
    for (let i = 0; i < k; i++) expect(await viaProxy(proxy.port('http'), `http://${target}/counted/${i}`)).toEqual({ status: 200 });
    await expect.poll(() => proxy.audits().length - audits).toBe(k);
    const text = await scrape();
    expect(counterSum(text, 'proxy_requests_total') - before).toBe(k);
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    const names = types.map((l) => l.split(' ')[2]);
    expect(names.length).toBeGreaterThan(5);
    expect(new Set(names).size).toBe(names.length);
    // Every other line is a sample of a family declared above it.
    const declared = new Set<string>();
    for (const line of text.split('\n')) {
      if (line.startsWith('# TYPE ')) declared.add(line.split(' ')[2]!);
      if (line === '' || line.startsWith('#')) continue;
      const sample = parseSample(line);
      expect(sample, line).toBeDefined();
      const name = sample!.name;
      expect([...declared].some((family) => name.startsWith(family) && /^(_bucket|_sum|_count)?$/.test(name.slice(family.length))), line).toBe(true);
    }
    expect(text).toMatch(/^process_memory_usage_bytes\{otel_scope_name="@proxy\/app",worker="1"\} \d+$/m);
    expect(text).toMatch(/^process_memory_usage_bytes\{otel_scope_name="@proxy\/app",worker="2"\} \d+$/m);
    // The primary's own resident memory, as its /proc entry has it (within what moves between two reads).
    const primaryRss = Number(/^process_memory_usage_bytes\{otel_scope_name="@proxy\/app",worker="primary"\} (\d+)$/m.exec(text)?.[1]);
    const vmRss = Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${proxy.child.pid}/status`, 'utf8'))?.[1]) * 1024;
    expect(Math.abs(primaryRss - vmRss) / vmRss).toBeLessThan(0.25);
    expect(text).toMatch(/^process_uptime_seconds\{otel_scope_name="@proxy\/app",worker="primary"\} [\d.]+$/m);
    expect(text).toMatch(/^http_server_request_duration_seconds_count\{[^}]*http_response_status_code="200"[^}]*\} \d+$/m);
    const health = await fetch(`http://127.0.0.1:${proxy.port('metrics')}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${proxy.port('metrics')}/readyz`);
    expect(await ready.json()).toEqual({ ready: true });
  });

  it('reloads every worker on SIGHUP to the primary: every new connection sees the new allowlist', async () => {
    await writeFile(join(proxy.dir, 'proxy.yaml'), config(echo.port, 'only.example.invalid'));
    proxy.child.kill('SIGHUP');
    await expect
      .poll(() => proxy.lines().filter((l) => l.msg === 'configuration reloaded' && l.config_generation === 2).map((l) => l.worker).sort(), { timeout: 10_000 })
      .toEqual([1, 2]);
    const before = proxy.audits().length;
    for (let i = 0; i < 20; i++) expect(await viaProxy(proxy.port('http'), `http://${target}/after-reload/${i}`)).toEqual({ status: 403 });
    await proxy.waitForAudit((r) => r.path === '/after-reload/19', before);
    const refused = proxy.audits().slice(before);
    expect(new Set(refused.map((r) => r.worker))).toEqual(new Set([1, 2]));
    expect(refused.every((r) => r.action === 'reject' && r.config_generation === 2)).toBe(true);
  });
});

describe('the management API and the iron-proxy log style with two workers', () => {
  const KEY = 'workers-mgmt-key-8c1d';
  let proxy: ProxyProcess;
  const yaml = (allowed: string, extra = ''): string =>
    `${config(echo.port, allowed)}${extra}management:\n  listen: "127.0.0.1:0"\n  api_key_env: MGMT_KEY\nlog:\n  audit_format: iron-proxy\n`;
  const api = (method: string, path: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${proxy.port('management')}${path}`, { method, headers: { authorization: `Bearer ${KEY}` } });

  beforeAll(async () => {
    proxy = await startProxyProcess(yaml(`127.0.0.1:${echo.port}`), { env: { MGMT_KEY: KEY } });
    await proxy.waitForLine((l) => l.msg === 'all workers serving');
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('writes every line, the workers\' included, to stderr as whole JSON lines', async () => {
    for (let i = 0; i < 10; i++) expect(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/iron/${i}`)).toEqual({ status: 200 });
    await expect.poll(() => proxy.audits().filter((r) => String((r.audit as LogLine | undefined)?.path).startsWith('/iron/')).length).toBe(10);
    expect(proxy.stdout()).toBe('');
    const lines = proxy.stderr().split('\n').filter((l) => l !== '');
    expect(lines.every((l) => typeof JSON.parse(l) === 'object')).toBe(true);
    expect(proxy.audits().every((r) => r.level === 'INFO' && (r.worker === 1 || r.worker === 2))).toBe(true);
  });

  it('reloads every worker on POST /v1/reload, and refuses a bad file with the located errors, keeping the running config', async () => {
    await writeFile(join(proxy.dir, 'proxy.yaml'), yaml('only.example.invalid'));
    const ok = await api('POST', '/v1/reload');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok', config_generation: 2 });
    // Each worker logs its own outcome (the test reads the pipe a moment after the answer).
    await expect
      .poll(() => proxy.lines().filter((l) => l.msg === 'configuration reloaded' && l.trigger === 'api').map((l) => l.worker).sort())
      .toEqual([1, 2]);
    const status = (await (await api('GET', '/v1/status')).json()) as { workers: { worker: number; pid: number; config_generation: number; config_hash: string }[] };
    expect(status).toMatchObject({ config_generation: 2, last_reload_result: 'ok' });
    // Each worker's own status: both on generation 2 of the same file.
    expect(status.workers.map((w) => w.worker).sort()).toEqual([1, 2]);
    expect(status.workers.map((w) => w.pid).sort()).toEqual((await childPids(proxy.child.pid!)).sort());
    expect(status.workers.every((w) => w.config_generation === 2 && w.config_hash === status.workers[0]?.config_hash)).toBe(true);
    for (let i = 0; i < 10; i++) expect(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/api-reloaded/${i}`)).toEqual({ status: 403 });

    await writeFile(join(proxy.dir, 'proxy.yaml'), yaml('only.example.invalid', 'bogus: 1\n'));
    const bad = await api('POST', '/v1/reload');
    expect(bad.status).toBe(422);
    const body = (await bad.json()) as { errors: { field: string; line: number }[] };
    expect(body.errors).toEqual([expect.objectContaining({ field: 'bogus', line: 11 })]);
    expect(await (await api('GET', '/v1/status')).json()).toMatchObject({ config_generation: 2, last_reload_result: 'failed' });
    expect(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/still-generation-2`)).toEqual({ status: 403 });
  });

  it('shows in /v1/status a replacement worker that read a file changed since the last reload', async () => {
    // A valid change, not reloaded: worker 2 keeps generation 2; the replacement of a killed
    // worker 1 starts from the file as it is now.
    await writeFile(join(proxy.dir, 'proxy.yaml'), yaml(`127.0.0.1:${echo.port}`));
    const victim = (await proxy.waitForLine((l) => l.msg === 'worker serving' && l.worker === 1)).pid as number;
    process.kill(victim, 'SIGKILL');
    await proxy.waitForLine((l) => l.msg === 'worker serving' && l.worker === 3);
    type Status = { config_hash: string; workers: { worker: number; config_hash: string; config_generation: number }[] };
    await expect.poll(async () => ((await (await api('GET', '/v1/status')).json()) as Status).workers.map((w) => w.worker).sort()).toEqual([2, 3]);
    const status = (await (await api('GET', '/v1/status')).json()) as Status;
    const byWorker = new Map(status.workers.map((w) => [w.worker, w]));
    expect(byWorker.get(2)?.config_generation).toBe(2);
    expect(byWorker.get(3)?.config_generation).toBe(1);
    expect(byWorker.get(3)?.config_hash).not.toBe(byWorker.get(2)?.config_hash);
  });
});

describe('/readyz with two workers', () => {
  it('answers 503 naming a secret no worker could fetch', async () => {
    const secrets = `  - name: secrets\n    config:\n      secrets:\n        - source: { type: env, var: WORKERS_MISSING_SECRET }\n          inject: { header: X-Token }\n          rules:\n            - host: "nothing.example.invalid"\n`;
    const proxy = await startProxyProcess(`${config(echo.port, `127.0.0.1:${echo.port}`)}${secrets}`);
    try {
      await proxy.waitForLine((l) => l.msg === 'all workers serving');
      await expect
        .poll(async () => {
          const res = await fetch(`http://127.0.0.1:${proxy.port('metrics')}/readyz`);
          return [res.status, (await res.json()) as unknown];
        })
        .toEqual([503, { ready: false, secrets_unavailable: [expect.stringContaining('WORKERS_MISSING_SECRET')] }]);
    } finally {
      await proxy.stop();
    }
  });
});

describe('a worker that fails to start', () => {
  it('stops the cluster with exit code 1 and the worker\'s error, instead of replacing it forever', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-workers-'));
    try {
      const file = join(dir, 'proxy.yaml');
      await writeFile(file, `${config(echo.port, 'a.example')}tls:\n  ca_cert: missing-ca.crt\n  ca_key: missing-ca.key\n`);
      const result = await runCli(['--config', file]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('missing-ca.crt');
      const lines = result.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine);
      expect(lines.some((l) => l.msg === 'worker failed to start')).toBe(true);
      expect(lines.some((l) => l.msg === 'worker exited unexpectedly: starting a replacement')).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a worker that dies', () => {
  it('is replaced while the listener keeps accepting: at most the one request in flight on it fails', async () => {
    const proxy = await startProxyProcess(config(echo.port, `127.0.0.1:${echo.port}`));
    try {
      await proxy.waitForLine((l) => l.msg === 'all workers serving');
      const victim = (await proxy.waitForLine((l) => l.msg === 'worker serving' && l.worker === 1)).pid as number;
      const outcomes: Outcome[] = [];
      let killed = false;
      const deadline = Date.now() + 4_000;
      // One request at a time on a new connection each: only one can be in flight on the victim.
      const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${proxy.port('metrics')}/metrics`)).text();
      let countedBeforeKill = 0;
      while (Date.now() < deadline) {
        if (!killed && outcomes.length === 20) {
          await expect.poll(async () => counterSum(await scrape(), 'proxy_requests_total')).toBe(20);
          countedBeforeKill = 20;
          process.kill(victim, 'SIGKILL');
          killed = true;
        }
        outcomes.push(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/during-crash/${outcomes.length}`));
      }
      const failed = outcomes.filter((o) => 'error' in o);
      console.log(`workers: ${outcomes.length} requests while a worker was killed and replaced, ${failed.length} failed ${JSON.stringify(failed)}`);
      expect(outcomes.length).toBeGreaterThan(40);
      expect(failed.length).toBeLessThanOrEqual(1);
      expect(outcomes.filter((o) => 'status' in o && o.status !== 200)).toEqual([]);
      const crash = await proxy.waitForLine((l) => l.msg === 'worker exited unexpectedly: starting a replacement');
      expect(crash).toMatchObject({ level: 'error', worker: 1, pid: victim, signal: 'SIGKILL', restart_in_ms: 0 });
      const replacement = await proxy.waitForLine((l) => l.msg === 'worker serving' && l.worker === 3);
      expect(replacement.pid).not.toBe(victim);
      // The scrape now has the gauges of the survivor and the replacement only, and the dead
      // worker's counts as of the scrape before the kill: every request was counted.
      const after = await scrape();
      expect(after).toMatch(/^process_memory_usage_bytes\{otel_scope_name="@proxy\/app",worker="3"\} \d+$/m);
      expect(after).not.toMatch(/worker="1"/);
      expect(countedBeforeKill).toBe(20);
      await expect.poll(async () => counterSum(await scrape(), 'proxy_requests_total')).toBe(outcomes.filter((o) => 'status' in o).length);
      expect(await servingWorkers(proxy, 'after-crash', 10)).toEqual(new Set([2, 3]));
    } finally {
      expect((await proxy.stop()).code).toBe(0);
    }
  });
});

describe('a worker that keeps dying', () => {
  it('is replaced after growing delays (0, 1 s, 2 s) while the other worker serves; the last replacement serves too', async () => {
    const proxy = await startProxyProcess(config(echo.port, `127.0.0.1:${echo.port}`));
    try {
      await proxy.waitForLine((l) => l.msg === 'all workers serving');
      const crashes: LogLine[] = [];
      const servings: LogLine[] = [];
      const outcomes: Outcome[] = [];
      // Worker 1's slot dies three times, each replacement killed as soon as it serves (young,
      // so each death counts towards the backoff); worker 2 keeps serving throughout.
      let victim = (await proxy.waitForLine((l) => l.msg === 'worker serving' && l.worker === 1)).pid as number;
      for (const replacementId of [3, 4, 5]) {
        process.kill(victim, 'SIGKILL');
        const crash = await proxy.waitForLine((l) => l.msg === 'worker exited unexpectedly: starting a replacement' && l.pid === victim);
        crashes.push(crash);
        // Requests keep flowing to the survivor while the slot waits out its delay.
        outcomes.push(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/backoff/${replacementId}`));
        const serving = await proxy.waitForLine((l) => l.msg === 'worker serving' && l.worker === replacementId, 10_000);
        servings.push(serving);
        victim = serving.pid as number;
      }
      expect(crashes.map((c) => c.restart_in_ms)).toEqual([0, 1_000, 2_000]);
      expect(crashes.map((c) => c.signal)).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL']);
      // Each replacement came up no sooner than its announced delay.
      for (let i = 0; i < 3; i++) {
        const waited = Date.parse(String(servings[i]?.time)) - Date.parse(String(crashes[i]?.time));
        expect(waited).toBeGreaterThanOrEqual((crashes[i]?.restart_in_ms as number) - 5);
      }
      expect(outcomes).toEqual([{ status: 200 }, { status: 200 }, { status: 200 }]);
      // The last replacement serves: new connections reach both workers again.
      expect(await servingWorkers(proxy, 'after-backoff', 30)).toEqual(new Set([2, 5]));
    } finally {
      expect((await proxy.stop()).code).toBe(0);
    }
  });
});

describe('SIGTERM to the primary', () => {
  it('drains every worker: the request in flight finishes, the primary exits 0', async () => {
    const proxy = await startProxyProcess(config(echo.port, `127.0.0.1:${echo.port}`));
    await proxy.waitForLine((l) => l.msg === 'all workers serving');
    const inFlight = viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/delay/1500`);
    await proxy.waitForLine((l) => l.msg === 'worker serving' && l.worker === 2);
    await new Promise((r) => setTimeout(r, 400));
    const stopped = proxy.stop('SIGTERM');
    expect(await inFlight).toEqual({ status: 200 });
    expect((await stopped).code).toBe(0);
    const stops = proxy.lines().filter((l) => l.msg === 'worker stopped');
    expect(stops.map((l) => [l.worker, l.exit_code]).sort()).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(proxy.lines().at(-1)).toMatchObject({ msg: 'stopped' });
    expect(proxy.lines().at(-1)?.worker).toBeUndefined();
  });
});

describe('one worker', () => {
  it('with --workers 1 (over the config\'s 2) runs a single process: no cluster, no worker field', async () => {
    const proxy = await startProxyCommand(['--config', 'proxy.yaml', '--workers', '1'], {
      files: { 'proxy.yaml': config(echo.port, `127.0.0.1:${echo.port}`, 2) },
    });
    try {
      expect(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/single`)).toEqual({ status: 200 });
      const record = await proxy.waitForAudit((r) => r.path === '/single');
      expect(record.worker).toBeUndefined();
      expect(await childPids(proxy.child.pid!)).toEqual([]);
      expect(proxy.lines().some((l) => l.msg === 'worker serving')).toBe(false);
    } finally {
      expect((await proxy.stop()).code).toBe(0);
    }
  });

  it('is the default: a config without proxy.workers runs a single process', async () => {
    const proxy = await startProxyProcess(config(echo.port, `127.0.0.1:${echo.port}`).replace('  workers: 2\n', ''));
    try {
      expect(await viaProxy(proxy.port('http'), `http://127.0.0.1:${echo.port}/default`)).toEqual({ status: 200 });
      expect((await proxy.waitForAudit((r) => r.path === '/default')).worker).toBeUndefined();
      expect(await childPids(proxy.child.pid!)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });
});

describe('bad worker counts', () => {
  it('refuses proxy.workers: 0 with the located error and exit code 1 before forking anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-workers-'));
    try {
      const file = join(dir, 'proxy.yaml');
      await writeFile(file, config(echo.port, 'a.example', 0));
      const result = await runCli(['--config', file]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${file}:4:12: proxy.workers: must be >= 1 (got 0)`);
      expect(result.stdout).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([['0'], ['-1'], ['many'], ['257'], ['100000']])('refuses --workers %s with a usage error (a count above 256 is refused, not clamped)', async (value) => {
    const result = await runCli(['--workers', value]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`flag --workers needs a whole number from 1 to 256 or "auto" (got "${value}")`);
  });
});
