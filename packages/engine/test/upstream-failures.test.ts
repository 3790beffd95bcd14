import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { send, startEngine, type TestEngine } from './support.js';
import { createTestPki } from './test-pki.js';

let echo: EchoServer;
let tlsEcho: EchoServer;
let dns: DnsTestServer;
let proxy: TestEngine;

beforeAll(async () => {
  const pki = await createTestPki();
  echo = await startEchoServer();
  tlsEcho = await startEchoServer({ tls: { cert: pki.cert, key: pki.key } });
  dns = await startDnsServer({ records: { 'known.example.test': { A: ['127.0.0.1'] }, localhost: { A: ['127.0.0.1'] } } });
  proxy = await startEngine({
    upstreamResponseHeaderTimeoutMs: 300,
    upstreamResolver: dns.resolver,
    reverse: [{ listen: '127.0.0.1:0', upstreamHost: `127.0.0.1:${echo.port}`, upstreamScheme: 'http', hostHeader: 'X-Upstream-Host', upstreamTimeoutMs: 3000 }],
  });
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
  await tlsEcho?.close();
  await dns?.close();
});

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('upstream failures', () => {
  it('answers 504 when the response headers take longer than the timeout', async () => {
    const r = await send(proxy.port(), { target: `http://127.0.0.1:${echo.port}/delay/2000` });
    expect(r.status).toBe(504);
    expect(r.headers['content-type']).toContain('text/plain');
    const audit = await proxy.audit((a) => a.path === '/delay/2000');
    expect(audit).toMatchObject({ action: 'error', reason: 'upstream_timeout', status_code: 504 });
  });

  it('lets a reverse listener override the timeout', async () => {
    const r = await send(proxy.port('reverse', 0), { target: '/delay/600' });
    expect(r.status).toBe(200);
  });

  it('answers 502 upstream_unreachable when the connection is refused', async () => {
    const port = await closedPort();
    const r = await send(proxy.port(), { target: `http://127.0.0.1:${port}/refused` });
    expect(r.status).toBe(502);
    expect(r.body.length).toBeLessThan(100);
    const audit = await proxy.audit((a) => a.path === '/refused');
    expect(audit).toMatchObject({ action: 'error', reason: 'upstream_unreachable', status_code: 502 });
  });

  it('answers 502 upstream_resolve_failed when the name does not resolve', async () => {
    const r = await send(proxy.port(), { target: 'http://missing.example.test/nxdomain' });
    expect(r.status).toBe(502);
    const audit = await proxy.audit((a) => a.path === '/nxdomain');
    expect(audit).toMatchObject({ action: 'error', reason: 'upstream_resolve_failed', status_code: 502 });
  });

  it('answers 502 upstream_tls when the upstream certificate is not trusted', async () => {
    const before = tlsEcho.requests.length;
    const r = await send(proxy.port(), { target: `https://localhost:${tlsEcho.port}/untrusted` });
    expect(r.status).toBe(502);
    expect(tlsEcho.requests.length).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/untrusted');
    expect(audit).toMatchObject({ action: 'error', reason: 'upstream_tls', status_code: 502 });
  });

  it('answers 502 upstream_tls when the certificate does not name the host', async () => {
    const pki = await createTestPki();
    const strict = await startEngine({ upstreamCa: pki.caCert, upstreamResolver: dns.resolver });
    const named = await startEchoServer({ tls: { cert: pki.cert, key: pki.key } });
    try {
      const good = await send(strict.port(), { target: `https://localhost:${named.port}/named` });
      expect(good.status).toBe(200);
      const wrongName = await send(strict.port(), { target: `https://known.example.test:${named.port}/wrong-name` });
      expect(wrongName.status).toBe(502);
      const audit = await strict.audit((a) => a.path === '/wrong-name');
      expect(audit.reason).toBe('upstream_tls');
    } finally {
      await strict.close();
      await named.close();
    }
  });

  it('never writes a stack or an internal error message in the body', async () => {
    const port = await closedPort();
    const r = await send(proxy.port(), { target: `http://127.0.0.1:${port}/quiet` });
    expect(r.body).not.toMatch(/ECONNREFUSED|Error|at /);
  });
});
