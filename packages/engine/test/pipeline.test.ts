import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reject, rejectJson, respond } from '@proxy/core';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { createEngine } from '../src/index.js';
import { curl, echoed, RecordingLogger, send, sendRaw, startEngine, type TestEngine } from './support.js';

let echo: EchoServer;
let proxy: TestEngine;
let upstream: string;

beforeAll(async () => {
  echo = await startEchoServer();
  proxy = await startEngine({ maxRequestBodyBytes: 1024 });
  upstream = `http://127.0.0.1:${echo.port}`;
});

afterEach(async () => {
  await proxy.use();
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
});

describe('request transforms', () => {
  it('answers a reject with its status and records which transform refused', async () => {
    await proxy.use(
      { name: 'passes', transform: { onRequest: () => undefined } },
      { name: 'guard', transform: { onRequest: (req) => (req.path === '/blocked' ? reject(403, 'not_allowlisted') : undefined) } },
    );
    const before = echo.connections;
    const r = await send(proxy.port(), { target: `${upstream}/blocked` });
    expect(r.status).toBe(403);
    expect(r.headers['content-type']).toContain('text/plain');
    expect(echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/blocked');
    expect(audit).toMatchObject({ action: 'reject', status_code: 403, rejected_by: 'guard', reason: 'not_allowlisted', mode: 'http' });
    expect(audit.request_transforms.map((t) => [t.name, t.action])).toEqual([
      ['passes', 'allow'],
      ['guard', 'reject'],
    ]);
  });

  it('answers a JSON reject with its body and content type, recorded as a reject', async () => {
    await proxy.use({ name: 'signer', transform: { onRequest: () => rejectJson(413, 'body_truncated', { error: 'signer', reason: 'body_truncated' }) } });
    const before = echo.connections;
    const r = await send(proxy.port(), { target: `${upstream}/json-reject` });
    expect([r.status, r.headers['content-type'], r.body]).toEqual([413, 'application/json; charset=utf-8', '{"error":"signer","reason":"body_truncated"}']);
    expect(echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/json-reject');
    expect(audit).toMatchObject({ action: 'reject', status_code: 413, rejected_by: 'signer', reason: 'body_truncated' });
  });

  it('fails closed with 502 when a transform throws, and never contacts the upstream', async () => {
    await proxy.use({
      name: 'broken',
      transform: {
        onRequest: () => {
          throw new Error('token vault said: hunter2');
        },
      },
    });
    const before = echo.connections;
    const r = await send(proxy.port(), { target: `${upstream}/throws` });
    expect(r.status).toBe(502);
    expect(r.body).not.toContain('hunter2');
    expect(r.body).not.toMatch(/at .*\.ts/);
    expect(echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/throws');
    expect(audit).toMatchObject({ action: 'error', status_code: 502, rejected_by: 'broken' });
    expect(JSON.stringify(proxy.logger.lines)).not.toContain('hunter2');
  });

  it('answers a respond decision itself (a stub), without the upstream', async () => {
    await proxy.use({ name: 'stub', transform: { onRequest: () => respond(200, '{"token":"stub"}', { 'Content-Type': 'application/json' }, 'token_endpoint') } });
    const before = echo.connections;
    const r = await send(proxy.port(), { method: 'POST', target: `${upstream}/token` });
    expect(r.status).toBe(200);
    expect(r.body).toBe('{"token":"stub"}');
    expect(echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/token');
    expect(audit).toMatchObject({ action: 'stub', stubbed_by: 'stub', status_code: 200 });
  });

  it('forwards what transforms changed: method, path, query and headers', async () => {
    await proxy.use({
      name: 'rewrite',
      transform: {
        onRequest: (req) => {
          req.method = 'PUT';
          req.path = '/rewritten';
          req.query = 'key=injected';
          req.headers.set('Authorization', 'Bearer real-token');
          req.headers.delete('x-drop');
        },
      },
    });
    const r = await send(proxy.port(), { target: `${upstream}/original?key=placeholder`, headers: { 'x-drop': '1' } });
    const seen = echoed(r.body);
    expect(seen).toMatchObject({ method: 'PUT', path: '/rewritten', query: 'key=injected' });
    expect(seen.headers.authorization).toBe('Bearer real-token');
    expect(seen.headers['x-drop']).toBeUndefined();
    // The audit record keeps the path as the client sent it.
    const audit = await proxy.audit((a) => a.path === '/original');
    expect(audit.status_code).toBe(200);
  });

  it('sends the buffered body when a transform read and replaced it, with a correct Content-Length', async () => {
    await proxy.use({
      name: 'swap',
      transform: {
        onRequest: async (req) => {
          const body = (await req.body.read()).toString('utf8');
          req.body.replace(body.replace('placeholder', 'the-real-value'));
        },
      },
    });
    const r = await send(proxy.port(), { method: 'POST', target: `${upstream}/swap`, headers: { 'content-type': 'text/plain' }, body: 'token=placeholder' });
    const seen = echoed(r.body);
    expect(seen.body).toBe('token=the-real-value');
    expect(seen.headers['content-length']).toBe(String('token=the-real-value'.length));
  });

  it('sends a body that was read but not replaced, chunked in, as received', async () => {
    await proxy.use({ name: 'peek', transform: { onRequest: async (req) => void (await req.body.read()) } });
    const answer = await sendRaw(
      proxy.port(),
      `POST ${upstream}/peek HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    );
    expect(echoed(answer.slice(answer.indexOf('\r\n\r\n') + 4)).body).toBe('hello world');
  });

  it('answers 413 when a transform reads a body over max_request_body_bytes, and never forwards it', async () => {
    await proxy.use({ name: 'reader', transform: { onRequest: async (req) => void (await req.body.read()) } });
    const before = echo.connections;
    const declared = await send(proxy.port(), { method: 'POST', target: `${upstream}/too-large`, body: 'x'.repeat(5000) });
    expect(declared.status).toBe(413);
    const chunked = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-H', 'Transfer-Encoding: chunked', '--data-binary', 'y'.repeat(5000), '-o', '/dev/null', '-w', '%{http_code}', `${upstream}/too-large-chunked`]);
    expect(chunked.stdout).toBe('413');
    expect(echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/too-large');
    expect(audit).toMatchObject({ status_code: 413, action: 'reject', rejected_by: 'reader', reason: 'body_too_large' });
  });

  it('answers 413 when a transform swallowed its over-limit read: the spent body is never forwarded', async () => {
    await proxy.use({ name: 'lenient', transform: { onRequest: async (req) => void (await req.body.read().catch(() => undefined)) } });
    const before = echo.connections;
    const r = await send(proxy.port(), { method: 'POST', target: `${upstream}/lenient-too-large`, body: 'x'.repeat(5000) });
    expect(r.status).toBe(413);
    expect(echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.path === '/lenient-too-large');
    expect(audit).toMatchObject({ status_code: 413, action: 'reject', rejected_by: 'engine', reason: 'body_too_large' });
  });

  it('keeps in-flight requests on the pipeline they started with across setPipeline', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let closed = false;
    await proxy.use({
      name: 'old',
      transform: {
        onRequest: async (req) => {
          if (req.path === '/slow') await gate;
          req.headers.set('X-Generation', 'old');
        },
        close: () => void (closed = true),
      },
    });
    const slow = send(proxy.port(), { target: `${upstream}/slow` });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const previous = await proxy.use({ name: 'new', transform: { onRequest: (req) => req.headers.set('X-Generation', 'new') } });
    const closing = previous!.close();
    const fresh = await send(proxy.port(), { target: `${upstream}/fresh` });
    expect(echoed(fresh.body).headers['x-generation']).toBe('new');
    expect(closed).toBe(false);
    release();
    expect(echoed((await slow).body).headers['x-generation']).toBe('old');
    await closing;
    expect(closed).toBe(true);
  });
});

describe('response transforms', () => {
  it('let a transform read and rewrite the response before it is returned', async () => {
    await proxy.use({
      name: 'redact',
      transform: {
        onResponse: async (_req, res) => {
          const text = (await res.body.read()).toString('utf8');
          res.status = 203;
          res.headers.set('X-Redacted', 'yes');
          res.body.replace(text.replaceAll('/resp-transform', '/[redacted]'));
        },
      },
    });
    const r = await send(proxy.port(), { target: `${upstream}/resp-transform` });
    expect(r.status).toBe(203);
    expect(r.headers['x-redacted']).toBe('yes');
    expect(echoed(r.body).path).toBe('/[redacted]');
    const audit = await proxy.audit((a) => a.path === '/resp-transform');
    expect(audit.response_transforms.map((t) => [t.name, t.action])).toEqual([['redact', 'allow']]);
    expect(audit.status_code).toBe(203);
  });

  it('stream the response through when the response transform does not read it', async () => {
    await proxy.use({ name: 'observe', transform: { onResponse: (_req, res, trace) => trace.annotate('status', res.status) } });
    const r = await send(proxy.port(), { target: `${upstream}/bytes/200000` });
    expect(r.body.length).toBe(200000);
  });

  it('let a response transform refuse the response', async () => {
    await proxy.use({ name: 'dlp', transform: { onResponse: (_req, res) => (res.status === 404 ? reject(502, 'blocked_response') : undefined) } });
    const r = await send(proxy.port(), { target: `${upstream}/status/404` });
    expect(r.status).toBe(502);
    const audit = await proxy.audit((a) => a.path === '/status/404');
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'dlp', status_code: 502 });
  });
});

describe('without a pipeline', () => {
  it('answers 503 until one is installed', async () => {
    const audits: unknown[] = [];
    const engine = createEngine({
      logger: new RecordingLogger(),
      onAudit: (a) => audits.push(a),
      httpListen: '127.0.0.1:0',
      maxRequestBodyBytes: 1024,
      maxResponseBodyBytes: 0,
      upstreamResponseHeaderTimeoutMs: 1000,
      upstreamDenyCidrs: [],
    });
    const [address] = await engine.listen();
    const r = await send(address!.port, { target: `${upstream}/early` });
    expect(r.status).toBe(503);
    expect(audits).toHaveLength(1);
    await engine.close(0);
  });
});
