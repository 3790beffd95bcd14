/**
 * Reload under load: 50 keep-alive clients (25 plain HTTP forward, 25 TLS-intercepted through
 * CONNECT with the proxy's CA) keep the proxy busy while the config is reloaded 100 times,
 * alternating two valid files (B injects a header A does not) and, every tenth time, an invalid
 * one that must get 422; most reloads go through the management API, every fifth valid one
 * through SIGHUP. Then: no request failed, every audit record names its generation, each
 * request behaved as the generation its record names (so it ran whole on one pipeline), both
 * behaviours were seen, and old generations are freed: after forced collections the V8 heap
 * is within 10% of before and so is VmRSS (/proc/<pid>/status, median of three samples).
 * Collections are forced through the inspector (the proxy runs with it on a loopback ephemeral
 * port; the test sends `HeapProfiler.collectGarbage`), so the product has no debug hook.
 */
import { readFile, rm, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import WebSocket from 'ws';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { runCli, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';
import { startHttpsUpstream, type HttpsUpstream } from './support/tls-clients.js';

const KEY = 'load-mgmt-key-7f3a91c2';
const INJECTED = 'load-injected-real-2b7e4d90';
const CLIENTS_PER_KIND = 25;
const RELOADS = 100;

let plain: EchoServer;
let secure: HttpsUpstream;
let dns: DnsTestServer;
let dir: string;
let proxy: ProxyProcess;
let caPem: string;

function config(kind: 'A' | 'B' | 'invalid'): string {
  const base = `dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
tls:
  mode: mitm
  ca_cert: "ca.crt"
  ca_key: "ca.key"
  upstream_ca_bundle: "${secure.pki.caFile}"
management:
  listen: "127.0.0.1:0"
  api_key_env: MGMT_KEY
transforms:
  - name: allowlist
    config:
      domains: ["127.0.0.1:${plain.port}", "api.example.test:${secure.port}"]
      rules:
        - { cidr: "${secure.address}/32", ports: [${secure.port}] }
  - name: annotate
    config:
      annotations:
        - rules: [{ host: "*" }]
          headers: ["x-req"]
`;
  if (kind === 'A') return base;
  if (kind === 'invalid') return `${base}  - name: secrets\n    config:\n      secrets: "not a list"\n`;
  return `${base}  - name: secrets
    config:
      secrets:
        - source: { type: env, var: INJECTED }
          inject: { header: X-Injected }
          rules:
            - host: "127.0.0.1"
            - host: "api.example.test"
`;
}

beforeAll(async () => {
  plain = await startEchoServer();
  secure = await startHttpsUpstream(['api.example.test'], 'reload load upstream CA');
  dns = await startDnsServer({ records: { 'api.example.test': { A: [secure.address] } } });
  dir = await mkdtemp(join(tmpdir(), 'proxy-reload-load-'));
  const generated = await runCli(['ca', 'generate', '--out', dir, '--name', 'reload load CA']);
  if (generated.code !== 0) throw new Error(`proxy ca generate failed:\n${generated.stderr}`);
  caPem = await readFile(join(dir, 'ca.crt'), 'utf8');
  proxy = await startProxyProcess(config('A'), {
    dir,
    // The inspector (for forced collections) rules out the in-place restart, so the allocator
    // setting that restart applies (runtime-flags.ts) is given here.
    env: { MGMT_KEY: KEY, INJECTED, PROXY_RUNTIME_FLAGS: 'off', NODE_OPTIONS: '--inspect=127.0.0.1:0', MALLOC_ARENA_MAX: '2' },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await plain?.close();
  await secure?.close();
  await dns?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** What one client request saw. */
interface Observation {
  readonly id: string;
  readonly injected: boolean;
}

/** 50 clients in loops; `stop()` ends them and resolves with what they saw and how many failed. */
function startLoad(agents: ProxyAgent[], prefix: string): { stop: () => Promise<{ seen: Observation[]; failures: string[] }> } {
  let running = true;
  const seen: Observation[] = [];
  const failures: string[] = [];
  let n = 0;
  const loops = agents.map(async (dispatcher, i) => {
    const url = i < CLIENTS_PER_KIND ? `http://127.0.0.1:${plain.port}` : `https://api.example.test:${secure.port}`;
    while (running) {
      const id = `${prefix}-${i}-${n++}`;
      try {
        const res = await request(`${url}/load/${id}`, { dispatcher, headers: { 'x-req': id } });
        const body = (await res.body.json()) as { headers: Record<string, string> };
        if (res.statusCode !== 200) failures.push(`${id}: ${res.statusCode}`);
        else seen.push({ id, injected: body.headers['x-injected'] === INJECTED });
      } catch (err) {
        failures.push(`${id}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { seen, failures };
    },
  };
}

/**
 * Forces two full collections through the inspector, then reads VmRSS (kB, median of three
 * samples) and the V8 heap in use (kB).
 */
async function settledMemory(): Promise<{ rss: number; heap: number }> {
  const url = /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(proxy.stderr())?.[0];
  if (url === undefined) throw new Error(`no inspector URL in:\n${proxy.stderr()}`);
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let id = 0;
  const send = (method: string): Promise<void> =>
    new Promise((resolve) => {
      const mine = ++id;
      const onMessage = (data: WebSocket.RawData): void => {
        if ((JSON.parse(String(data)) as { id?: number }).id !== mine) return;
        ws.off('message', onMessage);
        resolve();
      };
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id: mine, method }));
    });
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    await send('HeapProfiler.collectGarbage');
    await send('HeapProfiler.collectGarbage');
    await new Promise((r) => setTimeout(r, 300));
    const status = await readFile(`/proc/${proxy.child.pid}/status`, 'utf8');
    samples.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]));
  }
  const usage = await new Promise<string>((resolve) => {
    const mine = ++id;
    const onMessage = (data: WebSocket.RawData): void => {
      const m = JSON.parse(String(data)) as { id?: number; result?: { result?: { value?: string } } };
      if (m.id !== mine) return;
      ws.off('message', onMessage);
      resolve(String(m.result?.result?.value));
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ id: mine, method: 'Runtime.evaluate', params: { expression: 'JSON.stringify(process.memoryUsage())' } }));
  });
  ws.close();
  return { rss: samples.sort((a, b) => a - b)[1]!, heap: Math.round((JSON.parse(usage) as { heapUsed: number }).heapUsed / 1024) };
}

async function management(method: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${proxy.port('management')}${path}`, { method, headers: { authorization: `Bearer ${KEY}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function waitForGeneration(generation: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await management('GET', '/v1/status')).body.config_generation === generation) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`generation ${generation} never came`);
}

it('reloads 100 times under 50 busy connections without a failed request or a leak', async () => {
  const agents = [
    ...Array.from({ length: CLIENTS_PER_KIND }, () => new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port('http')}`, proxyTunnel: false })),
    ...Array.from({ length: CLIENTS_PER_KIND }, () => new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port('tunnel')}`, requestTls: { ca: caPem } })),
  ];
  try {
    // Warm up on generation 1 (connections, leaf certificates, JIT), then measure.
    const warm = startLoad(agents, 'warm');
    await new Promise((r) => setTimeout(r, 2_000));
    const warmed = await warm.stop();
    expect(warmed.failures).toEqual([]);
    const before = await settledMemory();

    const generations = new Map<number, 'A' | 'B'>([[1, 'A']]);
    let generation = 1;
    let current: 'A' | 'B' = 'A';
    let invalid = 0;
    let bySignal = 0;
    const load = startLoad(agents, 'run');
    for (let i = 0; i < RELOADS; i++) {
      if (i % 10 === 9) {
        await writeFile(join(dir, 'proxy.yaml'), config('invalid'));
        const refused = await management('POST', '/v1/reload');
        expect(refused.status).toBe(422);
        invalid++;
        continue;
      }
      const next: 'A' | 'B' = current === 'A' ? 'B' : 'A';
      await writeFile(join(dir, 'proxy.yaml'), config(next));
      generation++;
      if (i % 5 === 2) {
        proxy.child.kill('SIGHUP');
        await waitForGeneration(generation);
        bySignal++;
      } else {
        const reloaded = await management('POST', '/v1/reload');
        expect(reloaded).toEqual({ status: 200, body: { status: 'ok', config_generation: generation } });
      }
      generations.set(generation, next);
      current = next;
      // Let some requests run on each generation.
      await new Promise((r) => setTimeout(r, 20));
    }
    const { seen, failures } = await load.stop();
    expect(failures).toEqual([]);
    expect([invalid, bySignal, generation]).toEqual([10, 20, 91]);

    // Every audit record names a generation; each request behaved as its generation's file.
    // A record is written once its response has finished: wait for the last ones to arrive.
    const allRecorded = (): boolean => {
      const paths = new Set(proxy.audits().map((r) => String(r.path)));
      return seen.every((o) => paths.has(`/load/${o.id}`));
    };
    for (let i = 0; i < 50 && !allRecorded(); i++) await new Promise((r) => setTimeout(r, 100));
    const audits = proxy.audits();
    expect(audits.filter((r: LogLine) => typeof r.config_generation !== 'number')).toEqual([]);
    const generationOf = new Map<string, number>();
    for (const record of audits) {
      const transforms = record.request_transforms as { annotations?: Record<string, string> }[];
      const id = transforms.find((t) => t.annotations?.['header:X-Req'] !== undefined)?.annotations?.['header:X-Req'];
      if (id !== undefined) generationOf.set(id, record.config_generation as number);
    }
    const mismatched = seen.filter((o) => {
      const g = generationOf.get(o.id);
      return g === undefined || (generations.get(g) === 'B') !== o.injected;
    });
    expect(mismatched).toEqual([]);
    expect(seen.filter((o) => o.injected).length).toBeGreaterThan(0);
    expect(seen.filter((o) => !o.injected).length).toBeGreaterThan(0);
    expect(new Set(seen.filter((o) => o.id.startsWith('run-')).map((o) => generationOf.get(o.id))).size).toBeGreaterThan(20);

    const after = await settledMemory();
    const measured = `RSS ${before.rss} kB before, ${after.rss} kB after; V8 heap ${before.heap} kB before, ${after.heap} kB after ${generation - 1} reloads`;
    console.log(`reload under load: ${seen.length} requests; ${measured}`);
    // Old generations are freed: the heap after collection and RSS are back within 10%.
    expect(after.heap, measured).toBeLessThanOrEqual(before.heap * 1.1);
    expect(after.rss, measured).toBeLessThanOrEqual(before.rss * 1.1);

    const written = proxy.stdout() + proxy.stderr();
    expect(written).not.toContain(INJECTED);
    expect(written).not.toContain(KEY);
  } finally {
    await Promise.all(agents.map((a) => a.close()));
  }
}, 120_000);
