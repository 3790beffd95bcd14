import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

// The real values only the proxy knows; the workload sends placeholders.
const REAL = {
  REAL_TOKEN: 'real-token-7c1e9a',
  INJECT_KEY: 'inject-key-55d0b2',
  GH_TOKEN: 'ghp-real-3a9f00',
  REQUIRED_TOKEN: 'required-real-81bb4c',
};

let echo: EchoServer;
let dns: DnsTestServer;
let proxy: ProxyProcess;
let proxyUrl: string;
let api: string;

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  dns = await startDnsServer({
    records: { 'api.example.test': { A: ['127.0.0.1'] }, 'other.example.test': { A: ['127.0.0.1'] } },
  });
  proxy = await startProxyProcess(
    `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: ["169.254.169.254/32"]
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test:${echo.port}"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: REAL_TOKEN }
          replace:
            proxy_value: "proxy-tok-123"
            match_headers: []
            match_query: true
            match_body: true
          rules:
            - host: "api.example.test"
        - source: { type: env, var: INJECT_KEY }
          inject:
            header: "X-Api-Key"
            formatter: "Key {{ .Value }}"
          rules:
            - host: "api.example.test"
              paths: ["/inject/*"]
        - source: { type: env, var: GH_TOKEN }
          inject:
            header: "Authorization"
            formatter: 'Basic {{ base64 "x-access-token:" .Value }}'
          rules:
            - host: "api.example.test"
              paths: ["/github/*"]
        - source: { type: env, var: REQUIRED_TOKEN }
          replace:
            proxy_value: "proxy-required"
            match_headers: ["X-Required"]
            require: true
          rules:
            - host: "api.example.test"
              paths: ["/strict/*"]
`,
    { env: REAL },
  );
  proxyUrl = `http://127.0.0.1:${proxy.port('http')}`;
  api = `http://api.example.test:${echo.port}`;
});

afterAll(async () => {
  await proxy?.stop();
  await echo?.close();
  await dns?.close();
});

/** The echo upstream's view of the request the proxy sent. */
function echoed(body: string): { path: string; query: string; headers: Record<string, string>; body: string } {
  return JSON.parse(body) as { path: string; query: string; headers: Record<string, string>; body: string };
}

describe('forward proxy (curl -x)', () => {
  it('forwards an allowlisted request', async () => {
    const r = await curl(['-x', proxyUrl, '-w', '\n%{http_code}', `${api}/get?a=1`]);
    const [body, status] = r.stdout.split('\n');
    expect(status).toBe('200');
    expect(echoed(body!).path).toBe('/get');
    expect(echoed(body!).query).toBe('a=1');
  });

  it('blocks a host that is not allowlisted with 403 and a WARN audit record naming allowlist', async () => {
    const before = echo.requests.length;
    const r = await curl(['-x', proxyUrl, '-o', '/dev/null', '-w', '%{http_code}', `http://other.example.test:${echo.port}/secret-path`]);
    expect(r.stdout).toBe('403');
    expect(echo.requests.length).toBe(before);
    const audit = await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/secret-path');
    expect(audit).toMatchObject({
      level: 'warn',
      host: 'other.example.test',
      method: 'GET',
      mode: 'http',
      action: 'reject',
      status_code: 403,
      rejected_by: 'allowlist',
    });
    expect(typeof audit.duration_ms).toBe('number');
    expect(audit.remote_addr).toBe('127.0.0.1');
    expect((audit.request_transforms as { name: string; action: string }[])[0]).toMatchObject({ name: 'allowlist', action: 'reject' });
  });

  it('swaps the placeholder in a header', async () => {
    const r = await curl(['-x', proxyUrl, '-H', 'Authorization: Bearer proxy-tok-123', `${api}/headers`]);
    expect(echoed(r.stdout).headers.authorization).toBe(`Bearer ${REAL.REAL_TOKEN}`);
    const audit = await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/headers');
    expect(JSON.stringify(audit)).toContain('REAL_TOKEN');
    expect(JSON.stringify(audit)).toContain('header:');
  });

  it('swaps the placeholder inside Basic auth', async () => {
    const r = await curl(['-x', proxyUrl, '-u', 'user:proxy-tok-123', `${api}/basic`]);
    const auth = echoed(r.stdout).headers.authorization!;
    expect(auth.startsWith('Basic ')).toBe(true);
    expect(Buffer.from(auth.slice(6), 'base64').toString()).toBe(`user:${REAL.REAL_TOKEN}`);
  });

  it('swaps the placeholder in the query', async () => {
    const r = await curl(['-x', proxyUrl, `${api}/search?key=proxy-tok-123&q=x`]);
    expect(echoed(r.stdout).query).toBe(`key=${REAL.REAL_TOKEN}&q=x`);
  });

  it('swaps the placeholder in the body and fixes Content-Length', async () => {
    const r = await curl(['-x', proxyUrl, '-H', 'Content-Type: application/json', '-d', '{"token":"proxy-tok-123"}', `${api}/post`]);
    const seen = echoed(r.stdout);
    const expected = `{"token":"${REAL.REAL_TOKEN}"}`;
    expect(seen.body).toBe(expected);
    expect(seen.headers['content-length']).toBe(String(Buffer.byteLength(expected)));
  });

  it('injects a header through a formatter', async () => {
    const r = await curl(['-x', proxyUrl, `${api}/inject/x`]);
    expect(echoed(r.stdout).headers['x-api-key']).toBe(`Key ${REAL.INJECT_KEY}`);
  });

  it('injects Basic auth built with base64', async () => {
    const r = await curl(['-x', proxyUrl, `${api}/github/repos`]);
    const expected = Buffer.from(`x-access-token:${REAL.GH_TOKEN}`).toString('base64');
    expect(echoed(r.stdout).headers.authorization).toBe(`Basic ${expected}`);
  });

  it('rejects a request that lacks a required placeholder, and swaps it when present', async () => {
    const before = echo.requests.length;
    const denied = await curl(['-x', proxyUrl, '-o', '/dev/null', '-w', '%{http_code}', `${api}/strict/a`]);
    expect(denied.stdout).toBe('403');
    expect(echo.requests.length).toBe(before);
    const audit = await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/strict/a');
    expect(audit.rejected_by).toBe('secrets');
    const ok = await curl(['-x', proxyUrl, '-H', 'X-Required: proxy-required', `${api}/strict/b`]);
    expect(echoed(ok.stdout).headers['x-required']).toBe(REAL.REQUIRED_TOKEN);
  });

  it('takes the destination from the Host header when the request is in origin form', async () => {
    const r = await curl(['-H', `Host: api.example.test:${echo.port}`, `${proxyUrl}/origin-form`]);
    expect(echoed(r.stdout).path).toBe('/origin-form');
  });
});

describe('forward proxy (Node fetch through undici ProxyAgent)', () => {
  it('forwards and swaps', async () => {
    const dispatcher = new ProxyAgent({ uri: proxyUrl, proxyTunnel: false });
    try {
      const res = await undiciFetch(`${api}/fetch`, { headers: { 'x-token': 'proxy-tok-123' }, dispatcher });
      expect(res.status).toBe(200);
      const seen = echoed(await res.text());
      expect(seen.headers['x-token']).toBe(REAL.REAL_TOKEN);
      const blocked = await undiciFetch(`http://other.example.test:${echo.port}/x`, { dispatcher });
      expect(blocked.status).toBe(403);
      await blocked.text();
    } finally {
      await dispatcher.close();
    }
  });
});

describe('secret values', () => {
  it('never appear in anything the proxy wrote', async () => {
    // Provoke error paths too: a blocked request carrying a placeholder and a bad path.
    await curl(['-x', proxyUrl, '-H', 'Authorization: Bearer proxy-tok-123', `http://other.example.test:${echo.port}/x`]);
    const bodies = [
      (await curl(['-x', proxyUrl, `http://other.example.test:${echo.port}/y`])).stdout,
      (await curl(['-x', proxyUrl, `${api}/strict/z`])).stdout,
    ];
    await new Promise((r) => setTimeout(r, 200));
    const written = proxy.stdout() + proxy.stderr() + bodies.join('');
    for (const value of Object.values(REAL)) expect(written).not.toContain(value);
    expect(proxy.audits().length).toBeGreaterThan(5);
  });
});
