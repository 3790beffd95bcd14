import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand, startEchoServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

const SECRET = 'sk-real-metrics-secret-5d21';

let echo: EchoServer;
let proxy: ProxyProcess;
let refusedPort: number;
let scrape: string;

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends one request with curl and returns its status code. */
async function status(args: readonly string[]): Promise<string> {
  return (await curl(['-o', '/dev/null', '-w', '%{http_code}', ...args])).stdout;
}

const metricsUrl = (path: string): string => `http://127.0.0.1:${proxy.port('metrics')}${path}`;

/** The traffic below is sent with curl, in the hook; without it the suite is skipped. */
const HAVE_CURL = hasCommand('curl');

beforeAll(async () => {
  if (!HAVE_CURL) return;
  echo = await startEchoServer({ host: '127.0.0.1' });
  refusedPort = await closedPort();
  proxy = await startProxyProcess(
    `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
  reverse:
    - listen: "127.0.0.1:0"
      upstream_host: "127.0.0.1:${echo.port}"
      upstream_scheme: http
      upstream_timeout: "200ms"
transforms:
  - name: allowlist
    config:
      rules:
        - { cidr: "127.0.0.0/8", ports: [${echo.port}, ${refusedPort}] }
  - name: secrets
    config:
      secrets:
        - source:
            type: env
            var: METRICS_E2E_SECRET
          replace:
            proxy_value: "pk-metrics-placeholder"
            match_headers: ["Authorization"]
          rules:
            - host: "127.0.0.1"
metrics:
  listen: "127.0.0.1:0"
  path: "/scrape"
`,
    { env: { METRICS_E2E_SECRET: SECRET } },
  );

  const http = `127.0.0.1:${proxy.port('http')}`;
  const echoed = await curl(['-x', http, '-H', 'Authorization: Bearer pk-metrics-placeholder', `http://127.0.0.1:${echo.port}/e2e/secret-path-91c?q=private-query`]);
  expect(echoed.stdout).toContain(SECRET);
  expect(await status(['-x', http, '-X', 'PURGE', `http://127.0.0.1:${echo.port}/e2e/purge-path`])).toBe('200');
  expect(await status(['-x', http, 'http://blocked.example.invalid/e2e/blocked-path'])).toBe('403');
  expect(await status(['-x', http, `http://127.0.0.1:${refusedPort}/e2e/refused-path`])).toBe('502');
  expect(await status([`http://127.0.0.1:${proxy.port('reverse')}/delay/1500`])).toBe('504');
  // Metrics are recorded before each audit record is written: wait for all five.
  for (const path of ['/e2e/secret-path-91c', '/e2e/purge-path', '/e2e/blocked-path', '/e2e/refused-path', '/delay/1500']) {
    await proxy.waitForAudit((r) => r.path === path);
  }
  scrape = (await curl([metricsUrl('/scrape')])).stdout;
});

afterAll(async () => {
  await proxy?.stop();
  await echo?.close();
});

describe.skipIf(!HAVE_CURL)('metrics endpoint (YAML metrics section)', () => {
  it('logs a listening line for the metrics listener', async () => {
    const line = await proxy.waitForLine((l) => l.msg === 'listening' && l.listener === 'metrics');
    expect(line.address).toBe(`127.0.0.1:${proxy.port('metrics')}`);
    expect(proxy.lines().some((l) => l.section === 'metrics')).toBe(false);
  });

  it('counts served requests by method (non-standard -> _OTHER) and status', () => {
    const lines = scrape.split('\n');
    expect(lines).toContain('# TYPE http_server_request_duration_seconds histogram');
    const served = (method: string, code: number): string =>
      `http_server_request_duration_seconds_count{http_request_method="${method}",http_response_status_code="${code}",otel_scope_name="@proxy/engine"} 1`;
    expect(lines).toContain(served('GET', 200));
    expect(lines).toContain(served('_OTHER', 200));
    expect(lines).toContain(served('GET', 403));
    expect(lines).toContain(served('GET', 502));
    expect(lines).toContain(served('GET', 504));
    expect(lines).toContain('http_server_active_requests{otel_scope_name="@proxy/engine"} 0');
  });

  it('records upstream calls by destination, with error_type only on failures', () => {
    const lines = scrape.split('\n');
    const client = (port: number, extra: string, count: number): string =>
      `http_client_request_duration_seconds_count{server_address="127.0.0.1",server_port="${port}"${extra},otel_scope_name="@proxy/engine"} ${count}`;
    expect(lines).toContain(client(echo.port, '', 2));
    expect(lines).toContain(client(refusedPort, ',error_type="connection_refused"', 1));
    expect(lines).toContain(client(echo.port, ',error_type="timeout"', 1));
  });

  it('counts requests by audit action and refusals by the transform that refused them', () => {
    const lines = scrape.split('\n');
    expect(lines).toContain('proxy_requests_total{action="allow",otel_scope_name="@proxy/app"} 2');
    expect(lines).toContain('proxy_requests_total{action="reject",otel_scope_name="@proxy/app"} 1');
    expect(lines).toContain('proxy_requests_total{action="error",otel_scope_name="@proxy/app"} 2');
    expect(lines).toContain('proxy_rejections_total{rejected_by="allowlist",otel_scope_name="@proxy/app"} 1');
  });

  it('exposes Node runtime and process metrics', () => {
    expect(scrape).toMatch(/^nodejs_eventloop_utilization\{[^}]*\} [0-9.e+-]+$/m);
    expect(scrape).toMatch(/^v8js_memory_heap_used\{v8js_heap_space_name="old_space",[^}]*\} \d+$/m);
    expect(scrape).toMatch(/^process_memory_usage_bytes\{otel_scope_name="@proxy\/app"\} \d+$/m);
  });

  it('never shows a secret, a request path, a query or a refused host', () => {
    for (const text of [SECRET, 'pk-metrics-placeholder', '/e2e/', 'secret-path', 'private-query', 'purge-path', '/delay', 'blocked.example.invalid']) {
      expect(scrape).not.toContain(text);
    }
    expect(scrape).not.toMatch(/(^|[{,])(path|url_path|http_route|url)=/m);
  });

  it('answers /healthz with 200 and any other path with 404', async () => {
    const health = await curl(['-w', '\n%{http_code}', metricsUrl('/healthz')]);
    expect(health.stdout).toBe('ok\n\n200');
    expect(await status([metricsUrl('/metrics')])).toBe('404');
    expect(await status([metricsUrl('/')])).toBe('404');
  });
});
