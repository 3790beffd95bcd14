import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from '@fastify/http-proxy';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/audit.js';
import { ConfigError } from '../src/errors.js';
import { sendDecision, transformPlugin } from '../src/fastify.js';
import { CONTINUE, defineTransform, reject, rejectJson, respond, retarget } from '../src/transform.js';

/** What the upstream saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A small transform exercising every kind of change, driven by request headers. */
const rewrite = defineTransform<{ header: string; value: string; blocked_path?: string }>({
  name: 'rewrite',
  schema: {
    type: 'object',
    properties: {
      header: { type: 'string', minLength: 1 },
      value: { type: 'string' },
      blocked_path: { type: 'string', default: '/blocked' },
    },
    required: ['header', 'value'],
    additionalProperties: false,
  },
  create(config) {
    return {
      async onRequest(request, trace) {
        trace.annotate('host', request.host);
        if (request.path === config.blocked_path) return reject(403, 'blocked_path');
        if (request.path === '/stub') return respond(200, '{"stub":true}', { 'content-type': 'application/json', 'x-stub': '1' }, 'stubbed');
        if (request.path === '/explode') throw new Error('transform bug');
        if (request.path === '/retarget') return retarget('elsewhere.example.com', 443);
        request.headers.set(config.header, config.value);
        request.headers.delete('x-remove-me');
        if (request.path === '/rewrite') {
          request.path = '/rewritten';
          request.query = 'added=1';
          request.method = 'PUT';
        }
        if (request.path === '/upper') request.body.replace((await request.body.read()).toString().toUpperCase());
        if (request.path === '/peek') trace.annotate('length', (await request.body.read()).length);
        if (request.path === '/peek-lenient') await request.body.read().catch(() => trace.annotate('read', 'failed'));
        return CONTINUE;
      },
    };
  },
});

let upstream: Server;
let upstreamUrl: string;
const seen: Seen[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.setHeader('content-type', 'text/plain');
      res.end('from upstream');
    });
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

afterAll(async () => {
  upstream.close();
  await once(upstream, 'close');
});

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  seen.length = 0;
});

async function proxyApp(audits: AuditRecord[] = []): Promise<string> {
  const app = Fastify();
  apps.push(app);
  const port = Number(new URL(upstreamUrl).port);
  await app.register(
    transformPlugin(rewrite, {
      destination: () => ({ scheme: 'http', host: '127.0.0.1', port }),
      onAudit: (r) => audits.push(r),
      maxBodyBytes: 64,
    }),
    { header: 'X-Injected', value: 'from-transform' },
  );
  await app.register(httpProxy, { upstream: upstreamUrl });
  return app.listen({ port: 0, host: '127.0.0.1' });
}

describe('transformPlugin in front of @fastify/http-proxy', () => {
  it('forwards the headers the transform set and drops the ones it deleted', async () => {
    const audits: AuditRecord[] = [];
    const base = await proxyApp(audits);
    const res = await fetch(`${base}/v1/items?x=1`, { headers: { 'x-remove-me': 'secret-ish', 'x-keep': 'kept' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('from upstream');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe('/v1/items?x=1');
    expect(seen[0]!.headers['x-injected']).toBe('from-transform');
    expect(seen[0]!.headers['x-keep']).toBe('kept');
    expect(seen[0]!.headers['x-remove-me']).toBeUndefined();
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ action: 'allow', status_code: 200, host: '127.0.0.1', path: '/v1/items', mode: 'reverse' });
    expect(audits[0]!.request_transforms[0]).toMatchObject({ name: 'rewrite', action: 'allow', annotations: { host: '127.0.0.1' } });
  });

  it('answers a reject itself: the upstream never sees it', async () => {
    const audits: AuditRecord[] = [];
    const base = await proxyApp(audits);
    const res = await fetch(`${base}/blocked`);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('request refused by the proxy: blocked_path\n');
    expect(seen).toHaveLength(0);
    expect(audits[0]).toMatchObject({ action: 'reject', rejected_by: 'rewrite', reason: 'blocked_path', status_code: 403 });
  });

  it('answers a respond decision with its status, headers and body', async () => {
    const base = await proxyApp();
    const res = await fetch(`${base}/stub`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-stub')).toBe('1');
    expect(await res.json()).toEqual({ stub: true });
    expect(seen).toHaveLength(0);
  });

  it('fails closed with 502 when the transform throws', async () => {
    const base = await proxyApp();
    const res = await fetch(`${base}/explode`);
    expect(res.status).toBe(502);
    expect(await res.text()).toBe('request refused by the proxy: transform_error\n');
    expect(seen).toHaveLength(0);
  });

  it('refuses a re-targeted request with 502: the route decides where requests go', async () => {
    const audits: AuditRecord[] = [];
    const base = await proxyApp(audits);
    const res = await fetch(`${base}/retarget`);
    expect(res.status).toBe(502);
    expect(seen).toHaveLength(0);
    expect(audits[0]).toMatchObject({ action: 'error', reason: 'retarget_unsupported', status_code: 502 });
  });

  it('forwards a rewritten method, path and query', async () => {
    const base = await proxyApp();
    const res = await fetch(`${base}/rewrite?orig=1`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    expect(seen[0]).toMatchObject({ method: 'PUT', url: '/rewritten?added=1', body: 'payload' });
  });

  it('forwards a replaced body with a correct Content-Length', async () => {
    const base = await proxyApp();
    await fetch(`${base}/upper`, { method: 'POST', body: 'make me loud', headers: { 'content-type': 'text/plain' } });
    expect(seen[0]!.body).toBe('MAKE ME LOUD');
    expect(seen[0]!.headers['content-length']).toBe('12');
    expect(seen[0]!.headers['transfer-encoding']).toBeUndefined();
  });

  it('still forwards a body the transform only read', async () => {
    const base = await proxyApp();
    await fetch(`${base}/peek`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    expect(seen[0]!.body).toBe('{"a":1}');
  });

  it('rejects a body over maxBodyBytes with 413 and does not forward it', async () => {
    const base = await proxyApp();
    const res = await fetch(`${base}/peek`, { method: 'POST', body: 'x'.repeat(100), headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(413);
    expect(seen).toHaveLength(0);
  });

  it('answers 413 when a transform swallowed the over-limit read: the spent body is never forwarded', async () => {
    const base = await proxyApp();
    const res = await fetch(`${base}/peek-lenient`, { method: 'POST', body: 'x'.repeat(100), headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(413);
    expect(seen).toHaveLength(0);
  });
});

describe('transformPlugin registration', () => {
  it('refuses an invalid config with a ConfigError listing every issue', async () => {
    const app = Fastify();
    apps.push(app);
    let caught: unknown;
    try {
      await app.register(transformPlugin(rewrite), { header: '', extra: 1 } as never);
      await app.ready();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues.map((i) => i.path).sort()).toEqual(['extra', 'header', 'value']);
  });

  it('uses the Host header as destination by default and closes the transform with Fastify', async () => {
    const events: string[] = [];
    const probe = defineTransform<Record<string, never>>({
      name: 'probe',
      schema: { type: 'object', additionalProperties: false },
      create(_config, env) {
        env.signal.addEventListener('abort', () => events.push('aborted'));
        return {
          onRequest(request) {
            events.push(`${request.scheme}://${request.host}:${request.port}`);
          },
          close() {
            events.push('closed');
          },
        };
      },
    });
    const app = Fastify();
    await app.register(transformPlugin(probe), {});
    app.get('/', async () => 'ok');
    const res = await app.inject({ url: '/', headers: { host: 'API.Example.com:8080' } });
    expect(res.body).toBe('ok');
    await app.close();
    expect(events).toEqual(['http://api.example.com:8080', 'closed', 'aborted']);
  });

  it('hands a replaced body to route handlers as a Buffer with bodyAs: buffer', async () => {
    const replacer = defineTransform<Record<string, never>>({
      name: 'replacer',
      schema: { type: 'object' },
      create: () => ({
        onRequest(request) {
          request.body.replace('{"replaced":true}');
        },
      }),
    });
    const app = Fastify();
    apps.push(app);
    await app.register(transformPlugin(replacer, { bodyAs: 'buffer' }), {});
    app.post('/', async (request) => ({ isBuffer: Buffer.isBuffer(request.body), text: String(request.body), length: request.headers['content-length'] }));
    const res = await app.inject({ method: 'POST', url: '/', payload: { a: 1 } });
    expect(res.json()).toEqual({ isBuffer: true, text: '{"replaced":true}', length: '17' });
  });

  it('leaves a parsed JSON body alone when the transform only reads it', async () => {
    const reader = defineTransform<Record<string, never>>({
      name: 'reader',
      schema: { type: 'object' },
      create: () => ({
        async onRequest(request, trace) {
          trace.annotate('body', (await request.body.read()).toString());
        },
      }),
    });
    const audits: AuditRecord[] = [];
    const app = Fastify();
    apps.push(app);
    await app.register(transformPlugin(reader, { onAudit: (r) => audits.push(r) }), {});
    app.post('/', async (request) => request.body);
    const res = await app.inject({ method: 'POST', url: '/', payload: { a: 1 } });
    expect(res.json()).toEqual({ a: 1 });
    expect(audits[0]!.request_transforms[0]!.annotations).toEqual({ body: '{"a":1}' });
  });
});

describe('transformPlugin response hooks', () => {
  const tagger = defineTransform<{ tag: string }, { tag?: string }>({
    name: 'tagger',
    schema: { type: 'object', properties: { tag: { type: 'string', default: 'tagged' } }, additionalProperties: false },
    create: (config) => ({
      async onResponse(request, response, trace) {
        if (request.path === '/replace') return respond(203, 'replaced', { 'content-type': 'text/plain', 'x-replaced': '1' }, 'replaced');
        response.headers.set('X-Tag', config.tag);
        response.headers.delete('x-internal');
        const text = (await response.body.read()).toString();
        trace.annotate('length', text.length);
        response.body.replace(`${text}!`);
        return undefined;
      },
    }),
  });

  it('runs onResponse on a handler reply: headers and body changes, or a whole new reply', async () => {
    const audits: AuditRecord[] = [];
    const app = Fastify();
    apps.push(app);
    await app.register(transformPlugin(tagger, { onAudit: (r) => audits.push(r) }), {});
    app.get('/*', async (_request, reply) => reply.header('x-internal', 'yes').send({ ok: true }));
    const res = await app.inject('/x');
    expect([res.statusCode, res.body, res.headers['x-tag'], res.headers['x-internal'], res.headers['content-length']]).toEqual([200, '{"ok":true}!', 'tagged', undefined, '12']);
    const replaced = await app.inject('/replace');
    expect([replaced.statusCode, replaced.body, replaced.headers['x-replaced'], replaced.headers['x-internal']]).toEqual([203, 'replaced', '1', undefined]);
    expect(audits.map((r) => [r.path, r.action, r.status_code, r.response_transforms[0]?.action])).toEqual([
      ['/x', 'allow', 200, 'allow'],
      ['/replace', 'stub', 203, 'stub'],
    ]);
    expect(audits[0]!.response_transforms[0]!.annotations).toEqual({ length: 11 });
  });

  it('leaves requests it refused alone: onResponse never runs on the plugin’s own answer', async () => {
    const both = defineTransform<Record<string, never>>({
      name: 'both',
      schema: { type: 'object' },
      create: () => ({
        onRequest: () => reject(401, 'no_entry'),
        onResponse: () => {
          throw new Error('must not run');
        },
      }),
    });
    const app = Fastify();
    apps.push(app);
    await app.register(transformPlugin(both), {});
    app.get('/', async () => 'never');
    const res = await app.inject('/');
    expect([res.statusCode, res.body]).toEqual([401, 'request refused by the proxy: no_entry\n']);
  });
});

describe('sendDecision', () => {
  it('uses the reject message when given', async () => {
    const app = Fastify();
    apps.push(app);
    app.get('/', (_req, reply) => sendDecision(reply, reject(429, 'rate_limited', 'slow down')));
    app.get('/bytes', (_req, reply) => sendDecision(reply, respond(202, new Uint8Array([104, 105]), { 'x-a': 'b' })));
    const res = await app.inject({ url: '/' });
    expect([res.statusCode, res.body, res.headers['content-type']]).toEqual([429, 'slow down', 'text/plain; charset=utf-8']);
    const bytes = await app.inject({ url: '/bytes' });
    expect([bytes.statusCode, bytes.body, bytes.headers['x-a']]).toEqual([202, 'hi', 'b']);
  });

  it('sends a JSON reject with its content type', async () => {
    const app = Fastify();
    apps.push(app);
    app.get('/', (_req, reply) => sendDecision(reply, rejectJson(502, 'credential_unavailable', { error: 'signer', reason: 'credential_unavailable' })));
    const res = await app.inject({ url: '/' });
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([502, 'application/json; charset=utf-8', { error: 'signer', reason: 'credential_unavailable' }]);
  });

  it('sends a reject message with the content type the decision names', async () => {
    const app = Fastify();
    apps.push(app);
    app.get('/', (_req, reply) => sendDecision(reply, reject(502, 'token_unavailable', '{"error":"no token"}', 'application/json')));
    const res = await app.inject({ url: '/' });
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([502, 'application/json; charset=utf-8', { error: 'no token' }]);
  });
});
