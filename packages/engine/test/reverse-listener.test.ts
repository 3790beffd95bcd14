import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { curl, echoed, send, startEngine, type TestEngine } from './support.js';
import { createTestPki, type TestPki } from './test-pki.js';

let echo: EchoServer;
let tlsEcho: EchoServer;
let pki: TestPki;
let proxy: TestEngine;

const PINNED = 0;
const BY_HEADER = 1;
const BY_HOST_LINE = 2;
const CUSTOM_HEADER = 3;
const HTTPS_LISTENER = 4;
const TLS_UPSTREAM = 5;

beforeAll(async () => {
  pki = await createTestPki();
  echo = await startEchoServer();
  tlsEcho = await startEchoServer({ tls: { cert: pki.cert, key: pki.key } });
  proxy = await startEngine({
    httpListen: undefined,
    upstreamCa: pki.caCert,
    reverse: [
      { listen: '127.0.0.1:0', upstreamHost: `127.0.0.1:${echo.port}`, upstreamScheme: 'http', hostHeader: 'X-Upstream-Host' },
      { listen: '127.0.0.1:0', upstreamScheme: 'http', hostHeader: 'X-Upstream-Host' },
      { listen: '127.0.0.1:0', upstreamScheme: 'http', hostHeader: 'Host' },
      { listen: '127.0.0.1:0', upstreamScheme: 'http', hostHeader: 'X-Target' },
      { listen: '127.0.0.1:0', upstreamHost: `127.0.0.1:${echo.port}`, upstreamScheme: 'http', hostHeader: 'X-Upstream-Host', tls: { cert: pki.cert, key: pki.key } },
      { listen: '127.0.0.1:0', upstreamHost: `localhost:${tlsEcho.port}`, upstreamScheme: 'https', hostHeader: 'X-Upstream-Host' },
    ],
  });
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
  await tlsEcho?.close();
});

describe('reverse listener', () => {
  it('reports each listener with its index', () => {
    expect(proxy.addresses.map((a) => [a.kind, a.index])).toEqual([0, 1, 2, 3, 4, 5].map((i) => ['reverse', i]));
    expect(proxy.addresses.every((a) => a.address === '127.0.0.1' && a.port > 0)).toBe(true);
  });

  it('forwards every request to the pinned upstream, whatever the selection header says, and strips it', async () => {
    const r = await send(proxy.port('reverse', PINNED), { target: '/pinned?x=1', headers: { 'x-upstream-host': 'elsewhere.example' } });
    expect(r.status).toBe(200);
    const seen = echoed(r.body);
    expect(seen.url).toBe('/pinned?x=1');
    expect(seen.headers.host).toBe(`127.0.0.1:${echo.port}`);
    expect(seen.headers['x-upstream-host']).toBeUndefined();
    const audit = await proxy.audit((a) => a.path === '/pinned');
    expect(audit).toMatchObject({ mode: 'reverse', action: 'allow', status_code: 200, host: '127.0.0.1', remote_addr: '127.0.0.1' });
  });

  it('selects the upstream from X-Upstream-Host, removes the header and appends X-Forwarded-For', async () => {
    const r = await send(proxy.port('reverse', BY_HEADER), {
      target: '/by-header',
      headers: { 'X-Upstream-Host': `127.0.0.1:${echo.port}`, 'X-Forwarded-For': '203.0.113.9' },
    });
    const seen = echoed(r.body);
    expect(seen.path).toBe('/by-header');
    expect(seen.headers['x-upstream-host']).toBeUndefined();
    expect(seen.headers.host).toBe(`127.0.0.1:${echo.port}`);
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
  });

  it('answers 400 naming the header when it is missing or empty, without contacting any upstream', async () => {
    for (const headers of [{}, { 'X-Upstream-Host': '' }, { 'X-Upstream-Host': '   ' }]) {
      const before = echo.connections;
      const r = await send(proxy.port('reverse', BY_HEADER), { target: '/nothing', headers });
      expect(r.status).toBe(400);
      expect(r.body).toContain('X-Upstream-Host');
      expect(echo.connections).toBe(before);
    }
    const audit = await proxy.audit((a) => a.path === '/nothing');
    expect(audit).toMatchObject({ mode: 'reverse', action: 'reject', rejected_by: 'engine', reason: 'missing_upstream_header', status_code: 400 });
  });

  it('uses a custom selection header name', async () => {
    const r = await send(proxy.port('reverse', CUSTOM_HEADER), { target: '/custom', headers: { 'x-target': `127.0.0.1:${echo.port}` } });
    expect(echoed(r.body).headers['x-target']).toBeUndefined();
    const missing = await send(proxy.port('reverse', CUSTOM_HEADER), { target: '/custom' });
    expect(missing.status).toBe(400);
    expect(missing.body).toContain('X-Target');
  });

  it('reads the upstream from the Host line when the header is "Host"', async () => {
    const r = await curl(['-H', `Host: 127.0.0.1:${echo.port}`, `http://127.0.0.1:${proxy.port('reverse', BY_HOST_LINE)}/by-host`]);
    expect(echoed(r.stdout).path).toBe('/by-host');
  });

  it('refuses dot segments and absolute-form targets', async () => {
    const dots = await send(proxy.port('reverse', PINNED), { target: '/a/%2e%2e/b' });
    expect(dots.status).toBe(400);
    const absolute = await send(proxy.port('reverse', PINNED), { target: `http://127.0.0.1:${echo.port}/x` });
    expect(absolute.status).toBe(400);
  });

  it('serves HTTPS when the listener has a certificate', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: proxy.port('reverse', HTTPS_LISTENER), path: '/over-tls', ca: pki.caCert, servername: 'localhost' }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(echoed(body).path).toBe('/over-tls');
  });

  it('forwards to an https upstream verified against the extra CA, with SNI and Host set to the upstream', async () => {
    const r = await send(proxy.port('reverse', TLS_UPSTREAM), { target: '/tls-upstream' });
    expect(r.status).toBe(200);
    expect(echoed(r.body).headers.host).toBe(`localhost:${tlsEcho.port}`);
  });
});
