import { createServer } from 'node:net';
import type { Attributes } from '@opentelemetry/api';
import { DataPointType, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { reject } from '@proxy/core';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { send, startEngine, type TestEngine } from './support.js';

/** A reader that collects on demand: the in-memory view of everything recorded so far. */
class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** One data point as the tests look at it: its attributes and its count (histograms) or value. */
interface Point {
  readonly attributes: Attributes;
  readonly value: number;
}

let echo: EchoServer;
let proxy: TestEngine;
let provider: MeterProvider;
let reader: CollectingReader;

beforeAll(async () => {
  echo = await startEchoServer();
  reader = new CollectingReader();
  provider = new MeterProvider({ readers: [reader] });
  proxy = await startEngine({
    meter: provider.getMeter('engine-test'),
    upstreamResponseHeaderTimeoutMs: 5000,
    reverse: [
      { listen: '127.0.0.1:0', upstreamHost: `127.0.0.1:${echo.port}`, upstreamScheme: 'http', hostHeader: 'X-Upstream-Host', upstreamTimeoutMs: 200 },
    ],
  });
});

afterEach(async () => {
  await proxy.use();
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
  await provider?.shutdown();
});

async function metrics(): Promise<MetricData[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
}

/** The data points of instrument `name` (histogram points counted by their `count`). */
async function points(name: string): Promise<Point[]> {
  const metric = (await metrics()).find((m) => m.descriptor.name === name);
  if (metric === undefined) return [];
  return metric.dataPoints.map((p) => ({
    attributes: p.attributes,
    value: metric.dataPointType === DataPointType.HISTOGRAM ? (p.value as { count: number }).count : (p.value as number),
  }));
}

/** The count (or value) of the point whose attributes are exactly `attributes`; 0 when there is none. */
async function valueOf(name: string, attributes: Attributes): Promise<number> {
  const found = (await points(name)).find((p) => sameAttributes(p.attributes, attributes));
  return found?.value ?? 0;
}

function sameAttributes(a: Attributes, b: Attributes): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** Runs `action`, then returns how much the point with `attributes` of `name` grew. */
async function growth(name: string, attributes: Attributes, action: () => Promise<unknown>): Promise<number> {
  const before = await valueOf(name, attributes);
  await action();
  return (await valueOf(name, attributes)) - before;
}

const SERVER = 'http.server.request.duration';
const CLIENT = 'http.client.request.duration';
const ACTIVE = 'http.server.active_requests';

/** Sends a request through the forward listener and waits for its audit record (metrics are recorded before it). */
async function through(path: string, method = 'GET', port = echo.port): Promise<number> {
  const r = await send(proxy.port(), { method, target: `http://127.0.0.1:${port}${path}` });
  const withoutQuery = path.split('?')[0];
  await proxy.audit((a) => a.path === withoutQuery);
  return r.status;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const upstream = (extra: Attributes = {}): Attributes => ({ 'server.address': '127.0.0.1', 'server.port': echo.port, ...extra });

describe('engine HTTP metrics', () => {
  it('records the served request by method and status, and the upstream call by destination', async () => {
    const server = await growth(SERVER, { 'http.request.method': 'GET', 'http.response.status_code': 200 }, async () => {
      const client = await growth(CLIENT, upstream(), () => through('/metrics/ok'));
      expect(client).toBe(1);
    });
    expect(server).toBe(1);
  });

  it('records the upstream status as the served status', async () => {
    const grew = await growth(SERVER, { 'http.request.method': 'GET', 'http.response.status_code': 404 }, () => through('/status/404'));
    expect(grew).toBe(1);
  });

  it('records a method outside the standard nine as _OTHER', async () => {
    const grew = await growth(SERVER, { 'http.request.method': '_OTHER', 'http.response.status_code': 200 }, async () => {
      expect(await through('/metrics/purge', 'PURGE')).toBe(200);
    });
    expect(grew).toBe(1);
    expect((await points(SERVER)).some((p) => p.attributes['http.request.method'] === 'PURGE')).toBe(false);
  });

  it('records a request a transform refused, with no upstream call', async () => {
    await proxy.use({ name: 'deny', transform: { onRequest: () => reject(403, 'denied') } });
    const clientBefore = (await points(CLIENT)).reduce((n, p) => n + p.value, 0);
    const grew = await growth(SERVER, { 'http.request.method': 'POST', 'http.response.status_code': 403 }, () => through('/metrics/denied', 'POST'));
    expect(grew).toBe(1);
    expect((await points(CLIENT)).reduce((n, p) => n + p.value, 0)).toBe(clientBefore);
  });

  it('labels a refused connection error_type connection_refused', async () => {
    const port = await closedPort();
    const attributes = { 'server.address': '127.0.0.1', 'server.port': port, 'error.type': 'connection_refused' };
    const grew = await growth(CLIENT, attributes, async () => {
      expect(await through('/metrics/refused', 'GET', port)).toBe(502);
    });
    expect(grew).toBe(1);
  });

  it('labels a response head later than the timeout error_type timeout, and the request 504', async () => {
    const served = await growth(SERVER, { 'http.request.method': 'GET', 'http.response.status_code': 504 }, async () => {
      const grew = await growth(CLIENT, upstream({ 'error.type': 'timeout' }), async () => {
        const r = await send(proxy.port('reverse'), { target: '/delay/1500' });
        expect(r.status).toBe(504);
        await proxy.audit((a) => a.path === '/delay/1500');
      });
      expect(grew).toBe(1);
    });
    expect(served).toBe(1);
  });

  it('counts a request as active while it is in flight', async () => {
    expect(await valueOf(ACTIVE, {})).toBe(0);
    const pending = send(proxy.port(), { target: `http://127.0.0.1:${echo.port}/delay/300` });
    await expect.poll(() => echo.requests.some((r) => r.path === '/delay/300')).toBe(true);
    expect(await valueOf(ACTIVE, {})).toBe(1);
    expect((await pending).status).toBe(200);
    await proxy.audit((a) => a.path === '/delay/300');
    expect(await valueOf(ACTIVE, {})).toBe(0);
  });

  it('records a WebSocket upgrade as a served request and an upstream call', async () => {
    const upgraded = await growth(SERVER, { 'http.request.method': 'GET', 'http.response.status_code': 101 }, async () => {
      const called = await growth(CLIENT, upstream(), async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${proxy.port('reverse')}/metrics/ws`);
        await new Promise<void>((resolve, fail) => {
          ws.once('open', () => resolve());
          ws.once('error', fail);
        });
        ws.close();
        await proxy.audit((a) => a.path === '/metrics/ws');
      });
      expect(called).toBe(1);
    });
    expect(upgraded).toBe(1);
  });

  it('copies a transform\'s token_result annotation to the upstream call', async () => {
    await proxy.use({ name: 'minter', transform: { onRequest: (_r, trace) => trace.annotate('token_result', 'ok') } });
    const grew = await growth(CLIENT, upstream({ 'token.result': 'ok' }), () => through('/metrics/token-ok'));
    expect(grew).toBe(1);
  });

  it('records a credential failure as an upstream call that never left', async () => {
    await proxy.use({
      name: 'minter',
      transform: {
        onRequest: (_r, trace) => {
          trace.annotate('token_result', 'fetch_error');
          return reject(502, 'token_unavailable', 'token unavailable');
        },
      },
    });
    const before = echo.requests.length;
    const grew = await growth(CLIENT, upstream({ 'token.result': 'fetch_error' }), async () => {
      expect(await through('/metrics/token-failed')).toBe(502);
    });
    expect(grew).toBe(1);
    expect(echo.requests.length).toBe(before);
  });

  it('ignores a token_result annotation that is not a short word', async () => {
    await proxy.use({ name: 'minter', transform: { onRequest: (_r, trace) => trace.annotate('token_result', 'Bearer SECRET-VALUE-1') } });
    const grew = await growth(CLIENT, upstream(), () => through('/metrics/token-odd'));
    expect(grew).toBe(1);
  });

  it('never records a path, a query or an annotation text in any attribute', async () => {
    await through('/metrics/private-path-7f3a?q=private-query-7f3a');
    const all = (await metrics()).flatMap((m) => m.dataPoints.map((p) => p.attributes));
    expect(all.length).toBeGreaterThan(0);
    for (const attributes of all) {
      for (const [key, value] of Object.entries(attributes)) {
        expect(key).not.toMatch(/path|url|target|query/);
        expect(String(value)).not.toMatch(/private-|SECRET|\//);
      }
    }
  });
});

describe('engine HTTP metrics with the upstream guard', () => {
  it('does not record an upstream call the guard refused to dial', async () => {
    const guardedReader = new CollectingReader();
    const guardedProvider = new MeterProvider({ readers: [guardedReader] });
    const guarded = await startEngine({ meter: guardedProvider.getMeter('guarded'), upstreamDenyCidrs: ['127.0.0.0/8'] });
    try {
      const r = await send(guarded.port(), { target: `http://127.0.0.1:${echo.port}/metrics/denied-address` });
      expect(r.status).toBe(403);
      await guarded.audit((a) => a.path === '/metrics/denied-address');
      const { resourceMetrics } = await guardedReader.collect();
      const byName = new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
      expect(byName.get(CLIENT)?.dataPoints ?? []).toHaveLength(0);
      expect(byName.get(SERVER)?.dataPoints.map((p) => p.attributes)).toEqual([{ 'http.request.method': 'GET', 'http.response.status_code': 403 }]);
    } finally {
      await guarded.close();
      await guardedProvider.shutdown();
    }
  });
});
