import { afterEach, describe, expect, it } from 'vitest';
import { ProxyError, type AuditRecord } from '@proxy/core';
import { createAuditCounter } from './audit-metrics.js';
import { createMetrics, type Metrics } from './metrics.js';

let open: Metrics[] = [];

afterEach(async () => {
  await Promise.all(open.map((m) => m.close()));
  open = [];
});

async function started(path = '/metrics'): Promise<{ metrics: Metrics; base: string }> {
  const metrics = createMetrics({ listen: '127.0.0.1:0', path });
  open.push(metrics);
  const { port } = await metrics.listen();
  return { metrics, base: `http://127.0.0.1:${port}` };
}

async function get(url: string, method = 'GET'): Promise<{ status: number; body: string; allow: string | null }> {
  const r = await fetch(url, { method });
  return { status: r.status, body: await r.text(), allow: r.headers.get('allow') };
}

function audit(fields: Partial<AuditRecord>): AuditRecord {
  return {
    request_id: 'r',
    host: 'api.example.com',
    port: 443,
    method: 'GET',
    path: '/private/path',
    remote_addr: '127.0.0.1',
    mode: 'http',
    action: 'allow',
    status_code: 200,
    duration_ms: 1,
    request_transforms: [],
    response_transforms: [],
    ...fields,
  };
}

describe('createMetrics', () => {
  it('serves the Prometheus exposition on its path, with unit suffixes on the proxy instruments', async () => {
    const { metrics, base } = await started('/custom/scrape');
    metrics
      .meter('@proxy/engine')
      .createHistogram('http.client.request.duration', { unit: 's', advice: { explicitBucketBoundaries: [1] } })
      .record(0.5, { 'server.address': 'api.example.com', 'error.type': 'timeout' });
    metrics.meter('aws_jwt').createCounter('token.fetch.count').add(2, { result: 'ok' });

    const r = await get(`${base}/custom/scrape`);
    expect(r.status).toBe(200);
    const lines = r.body.split('\n');
    expect(lines).toContain('# TYPE http_client_request_duration_seconds histogram');
    expect(lines).toContain('http_client_request_duration_seconds_count{server_address="api.example.com",error_type="timeout",otel_scope_name="@proxy/engine"} 1');
    expect(lines).toContain('http_client_request_duration_seconds_bucket{server_address="api.example.com",error_type="timeout",otel_scope_name="@proxy/engine",le="1"} 1');
    expect(lines).toContain('token_fetch_count_total{result="ok",otel_scope_name="aws_jwt"} 2');
  });

  it('includes Node runtime and process metrics', async () => {
    const { base } = await started();
    const sample = (name: string): RegExp => new RegExp(`^${name}\\{[^}]*\\} [0-9.e+-]+$`, 'm');
    const { body } = await get(`${base}/metrics`);
    for (const name of ['process_memory_usage_bytes', 'process_uptime_seconds', 'nodejs_eventloop_utilization', 'v8js_memory_heap_used']) {
      expect(body).toMatch(sample(name));
    }
    expect(body).toMatch(/^process_cpu_time_seconds_total\{cpu_mode="user",otel_scope_name="@proxy\/app"\} [0-9.e+-]+$/m);
    // Event loop delay is reported once the monitor has a few samples (10 ms apart).
    await expect.poll(async () => (await get(`${base}/metrics`)).body).toMatch(sample('nodejs_eventloop_delay_p99'));
  });

  it('answers /healthz, 404 elsewhere and 405 for other methods', async () => {
    const { base } = await started();
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await get(`${base}/healthz?probe=1`)).status).toBe(200);
    expect((await get(`${base}/`)).status).toBe(404);
    expect((await get(`${base}/metrics/extra`)).status).toBe(404);
    expect(await get(`${base}/metrics`, 'POST')).toMatchObject({ status: 405, allow: 'GET, HEAD' });
    expect((await get(`${base}/metrics`, 'HEAD')).status).toBe(200);
  });

  it('refuses a bad listen address or path, naming the setting', () => {
    expect(() => createMetrics({ listen: 'nowhere', path: '/metrics' })).toThrow(/metrics\.listen: invalid listen address "nowhere"/);
    expect(() => createMetrics({ listen: ':9090', path: 'metrics' })).toThrow(ProxyError);
    expect(() => createMetrics({ listen: ':9090', path: '/healthz', setting: '--metrics' })).toThrow(/--metrics\.path/);
  });

  it('closes idempotently, before or after listening', async () => {
    const unopened = createMetrics({ listen: '127.0.0.1:0', path: '/metrics' });
    await unopened.close();
    const { metrics, base } = await started();
    await Promise.all([metrics.close(), metrics.close()]);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe('createAuditCounter', () => {
  it('counts records by action and refusals by what refused them, never by host or path', async () => {
    const { metrics, base } = await started();
    const count = createAuditCounter(metrics.meter('@proxy/app'));
    count(audit({}));
    count(audit({ action: 'reject', rejected_by: 'allowlist', status_code: 403 }));
    count(audit({ action: 'reject', rejected_by: 'allowlist', status_code: 403 }));
    count(audit({ action: 'error', rejected_by: 'upstream_guard', status_code: 502 }));

    const { body } = await get(`${base}/metrics`);
    const lines = body.split('\n');
    expect(lines).toContain('proxy_requests_total{action="allow",otel_scope_name="@proxy/app"} 1');
    expect(lines).toContain('proxy_requests_total{action="reject",otel_scope_name="@proxy/app"} 2');
    expect(lines).toContain('proxy_requests_total{action="error",otel_scope_name="@proxy/app"} 1');
    expect(lines).toContain('proxy_rejections_total{rejected_by="allowlist",otel_scope_name="@proxy/app"} 2');
    expect(lines).toContain('proxy_rejections_total{rejected_by="upstream_guard",otel_scope_name="@proxy/app"} 1');
    expect(body).not.toContain('api.example.com');
    expect(body).not.toContain('/private/path');
  });
});
