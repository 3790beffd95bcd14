import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { curl, DEFAULT_DENY_CIDRS, echoed, send, sendRaw, startEngine, type TestEngine } from './support.js';

let echo: EchoServer;
let proxy: TestEngine;
let upstream: string;

beforeAll(async () => {
  echo = await startEchoServer();
  proxy = await startEngine();
  upstream = `127.0.0.1:${echo.port}`;
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
});

describe('forward listener: destination', () => {
  it('forwards an absolute-form request to the host it names, in origin form', async () => {
    const r = await send(proxy.port(), { target: `http://${upstream}/get?a=1&b=%20`, headers: { host: upstream } });
    expect(r.status).toBe(200);
    const seen = echoed(r.body);
    expect(seen.url).toBe('/get?a=1&b=%20');
    expect(seen.headers.host).toBe(upstream);
  });

  it('forwards an absolute-form request that carries no Host header (HTTP/1.0)', async () => {
    const answer = await sendRaw(proxy.port(), `GET http://${upstream}/old HTTP/1.0\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('"url":"/old"');
  });

  it('takes the destination from the Host header for origin-form requests', async () => {
    const r = await send(proxy.port(), { target: '/via-host?x=y', headers: { host: upstream } });
    expect(r.status).toBe(200);
    expect(echoed(r.body).url).toBe('/via-host?x=y');
  });

  it('works with curl -x', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-w', '\n%{http_code}', `http://${upstream}/curl`]);
    const lines = r.stdout.split('\n');
    expect(lines.pop()).toBe('200');
    expect(echoed(lines.join('\n')).path).toBe('/curl');
  });

  it('refuses with 421 when the URI and the Host header name different hosts, and never forwards', async () => {
    const before = echo.requests.length;
    const r = await send(proxy.port(), { target: `http://${upstream}/mismatch`, headers: { host: 'other.example:80' } });
    expect(r.status).toBe(421);
    expect(echo.requests.length).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/mismatch');
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'engine', reason: 'host_mismatch', status_code: 421 });
  });

  it('accepts a Host header naming the same host in another case or with the default port spelled out', async () => {
    const r = await send(proxy.port(), { target: `http://LOCALHOST:${echo.port}/case`, headers: { host: `localhost:${echo.port}` } });
    expect(r.status).toBe(200);
    // Port 80 is never dialled here: the deny list stops the request after the Host check passed.
    const guarded = await startEngine({ upstreamDenyCidrs: DEFAULT_DENY_CIDRS });
    try {
      const defaultPort = await send(guarded.port(), { target: 'http://localhost/default-port', headers: { host: 'LocalHost:80' } });
      expect(defaultPort.status).toBe(403);
      const audit = await guarded.audit((a) => a.path === '/default-port');
      expect(audit.rejected_by).toBe('upstream_guard');
    } finally {
      await guarded.close();
    }
  });

  it('answers 400 when an origin-form request has no Host header', async () => {
    const answer = await sendRaw(proxy.port(), 'GET /no-host HTTP/1.0\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const audit = await proxy.audit((a) => a.path === '/no-host');
    expect(audit).toMatchObject({ action: 'reject', reason: 'missing_host', status_code: 400, host: '' });
  });

  it('answers 400 to more than one Host header', async () => {
    const answer = await sendRaw(proxy.port(), `GET /two-hosts HTTP/1.1\r\nHost: ${upstream}\r\nHost: other.example\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it.each([
    ['/a/../b'],
    ['/a/./b'],
    ['/a/%2e%2e/b'],
    ['/a/%2E./b'],
    ['/..'],
    ['/a/..%2fb'],
    ['/a/..;/b'],
  ])('answers 400 to the dot-segment path %s and never forwards it', async (path) => {
    const before = echo.connections;
    const r = await send(proxy.port(), { target: `http://${upstream}${path}` });
    expect(r.status).toBe(400);
    expect(echo.connections).toBe(before);
  });

  it('keeps dots that are not whole segments', async () => {
    const r = await send(proxy.port(), { target: `http://${upstream}/v1.2/file..txt/.well-known` });
    expect(r.status).toBe(200);
    expect(echoed(r.body).path).toBe('/v1.2/file..txt/.well-known');
  });

  it('forwards percent-encoding exactly as sent, even when it is not valid UTF-8', async () => {
    const r = await send(proxy.port(), { target: `http://${upstream}/odd/%zz/%ff%fe?q=%zz` });
    expect(r.status).toBe(200);
    expect(echoed(r.body).url).toBe('/odd/%zz/%ff%fe?q=%zz');
  });

  it('forwards an absolute-form URI with no path as "/"', async () => {
    const r = await send(proxy.port(), { target: `http://${upstream}?only=query` });
    expect(echoed(r.body).url).toBe('/?only=query');
  });

  it('refuses an asterisk-form target with 400 and an audit record', async () => {
    const answer = await sendRaw(proxy.port(), `OPTIONS * HTTP/1.1\r\nHost: ${upstream}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const audit = await proxy.audit((a) => a.method === 'OPTIONS' && a.reason === 'invalid_target');
    expect(audit.status_code).toBe(400);
  });

  it('refuses CONNECT with 405 (tunnels are another listener), with an audit record', async () => {
    const answer = await sendRaw(proxy.port(), `CONNECT ${upstream} HTTP/1.1\r\nHost: ${upstream}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 405 /);
    const audit = await proxy.audit((a) => a.method === 'CONNECT');
    expect(audit).toMatchObject({ action: 'reject', reason: 'connect_not_supported', status_code: 405 });
    expect(echo.requests.some((q) => q.method === 'CONNECT')).toBe(false);
  });

  it('refuses URIs of other schemes', async () => {
    const r = await send(proxy.port(), { target: `ftp://${upstream}/file` });
    expect(r.status).toBe(400);
  });
});

describe('forward listener: headers and bodies', () => {
  it('never forwards hop-by-hop headers, the headers Connection names, or Proxy-Authorization', async () => {
    const answer = await sendRaw(
      proxy.port(),
      [
        `POST http://${upstream}/hop HTTP/1.1`,
        `Host: ${upstream}`,
        'Connection: close, X-Private-Hop',
        'X-Private-Hop: secret-hop-value',
        'Keep-Alive: timeout=5',
        'Proxy-Connection: keep-alive',
        'Proxy-Authorization: Basic dXNlcjpwYXNz',
        'TE: trailers',
        'Trailer: X-Checksum',
        'Upgrade: h2c',
        'Transfer-Encoding: chunked',
        'X-End-To-End: kept',
        '',
        '4\r\nbody\r\n0\r\nX-Checksum: 1\r\n\r\n',
      ].join('\r\n'),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    const seen = echoed(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const hop of ['x-private-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding']) {
      expect(names).not.toContain(hop);
    }
    expect(seen.headers['x-end-to-end']).toBe('kept');
    expect(seen.body).toBe('body');
    expect(answer).not.toContain('dXNlcjpwYXNz');
    expect(answer).not.toContain('secret-hop-value');
  });

  it('preserves header casing and order both ways', async () => {
    const r = await send(proxy.port(), { target: `http://${upstream}/casing`, headers: ['Host', upstream, 'X-MiXeD-Case', 'a', 'x-lower', 'b'] });
    const raw = echoed(r.body).rawHeaders;
    expect(raw).toContain('X-MiXeD-Case');
    expect(raw.indexOf('X-MiXeD-Case')).toBeLessThan(raw.indexOf('x-lower'));
  });

  it('does not relay the hop-by-hop headers of the response', async () => {
    // The echo upstream answers with Connection: keep-alive; the proxy decides its own.
    const r = await send(proxy.port(), { target: `http://${upstream}/resp-hop`, headers: { host: upstream, connection: 'close' } });
    expect(r.status).toBe(200);
    expect(r.headers['keep-alive']).toBeUndefined();
  });

  it('returns redirects to the client without following them', async () => {
    const before = echo.requests.length;
    const r = await send(proxy.port(), { target: `http://${upstream}/status/302` });
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('/redirected');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(echo.requests.slice(before).map((q) => q.path)).toEqual(['/status/302']);
  });

  it('streams a request body through unchanged', async () => {
    const body = 'x'.repeat(300_000);
    const r = await send(proxy.port(), { method: 'POST', target: `http://${upstream}/upload`, headers: { 'content-type': 'application/octet-stream' }, body });
    expect(echoed(r.body).bodyBytes).toBe(body.length);
  });

  it('forwards chunked request bodies', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-H', 'Transfer-Encoding: chunked', '--data-binary', 'chunked-body', `http://${upstream}/chunked`]);
    expect(echoed(r.stdout).body).toBe('chunked-body');
  });

  it('relays any method, including ones Fastify does not route by default', async () => {
    for (const method of ['PATCH', 'OPTIONS', 'PURGE', 'DELETE']) {
      const r = await send(proxy.port(), { method, target: `http://${upstream}/m` });
      expect(echoed(r.body).method, method).toBe(method);
    }
  });

  it('answers HEAD with the upstream headers and no body', async () => {
    const r = await send(proxy.port(), { method: 'HEAD', target: `http://${upstream}/bytes/1000` });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('1000');
    expect(r.body).toBe('');
  });
});

describe('forward listener: audit records', () => {
  it('writes one record per request with the iron-proxy fields', async () => {
    const count = proxy.audits.length;
    await send(proxy.port(), { method: 'POST', target: `http://${upstream}/audited?q=1`, body: 'abc' });
    const audit = await proxy.audit((a) => a.path === '/audited');
    expect(audit).toMatchObject({
      host: '127.0.0.1',
      method: 'POST',
      path: '/audited',
      remote_addr: '127.0.0.1',
      mode: 'http',
      action: 'allow',
      status_code: 200,
      request_transforms: [],
      response_transforms: [],
    });
    expect(audit.rejected_by).toBeUndefined();
    expect(typeof audit.duration_ms).toBe('number');
    expect(audit.duration_ms).toBeGreaterThanOrEqual(0);
    expect(typeof audit.request_id).toBe('string');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(proxy.audits.length).toBe(count + 1);
  });
});
