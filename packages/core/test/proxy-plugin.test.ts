// proxyPlugin: a whole pipeline of transforms in someone else's Fastify server, in front of
// @fastify/http-proxy and plain routes, scoped to the encapsulation context it is registered in.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from '@fastify/http-proxy';
import { startEchoServer, type EchoRequestRecord, type EchoServer } from '@proxy/test-kit';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/audit.js';
import { ConfigError } from '../src/errors.js';
import { proxyPlugin, use } from '../src/fastify.js';
import { compileRules, rulesSchema, type RuleConfig } from '../src/rules.js';
import { createSecretResolver, envSource, secretSourceRef, type SecretResolver, type SecretSourceConfig } from '../src/secrets.js';
import { defineTransform, reject, respond, type Logger, type WithDefaults } from '../src/transform.js';

const REAL_TOKEN = 'real-embedded-token-9f3a71';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

/** Refuses requests whose path matches one of its rules: a policy stage. */
interface GateConfig {
  readonly deny: readonly RuleConfig[];
  readonly reason: string;
}
const gate = defineTransform<GateConfig, WithDefaults<GateConfig, 'reason'>>({
  name: 'gate',
  schema: {
    type: 'object',
    properties: { deny: rulesSchema, reason: { type: 'string', minLength: 1, default: 'denied_by_gate' } },
    required: ['deny'],
    additionalProperties: false,
  },
  create(config) {
    const deny = compileRules(config.deny);
    return {
      onRequest(request, trace) {
        trace.annotate('path', request.path);
        if (deny.matches(request)) return reject(403, config.reason);
        if (request.path.endsWith('/stub')) return respond(200, '{"stub":true}', { 'content-type': 'application/json' }, 'stubbed');
        return undefined;
      },
    };
  },
});

/** Injects a secret from a source as a header, naming it (never its value) in the audit record. */
interface InjectConfig {
  readonly header: string;
  readonly source: SecretSourceConfig;
}
const inject = defineTransform<InjectConfig, WithDefaults<InjectConfig, 'header'>>({
  name: 'inject',
  schema: {
    type: 'object',
    properties: { header: { type: 'string', minLength: 1, default: 'Authorization' }, source: secretSourceRef },
    required: ['source'],
    additionalProperties: false,
  },
  async create(config, env) {
    const token = await env.secrets.open(config.source);
    return {
      onRequest(request, trace) {
        if (request.path.endsWith('/explode')) throw new Error(`upstream refused ${token.value()}`);
        request.headers.set(config.header, `Bearer ${token.value()}`);
        trace.annotate('secret', token.label);
      },
      close: () => token.close(),
    };
  },
});

/** Marks responses: a header, an upper-cased body on `/loud`, a refusal on `/withhold`. */
const stamp = defineTransform<Record<string, never>>({
  name: 'stamp',
  schema: { type: 'object', additionalProperties: false },
  create: () => ({
    async onResponse(request, response, trace) {
      trace.annotate('status', response.status);
      if (request.path.endsWith('/withhold')) return reject(502, 'response_withheld');
      response.headers.set('X-Stamped', 'yes');
      if (request.path.endsWith('/loud')) response.body.replace((await response.body.read()).toString().toUpperCase());
      if (request.path.endsWith('/teapot')) response.status = 418;
      return undefined;
    },
  }),
});

let echo: EchoServer;
const stopSecrets = new AbortController();
let secrets: SecretResolver;

beforeAll(async () => {
  echo = await startEchoServer();
  secrets = createSecretResolver({
    sources: [envSource],
    logger: silent,
    clock: { now: () => Date.now() },
    http: () => Promise.reject(new Error('no network in tests')),
    signal: stopSecrets.signal,
    env: { REAL_TOKEN },
  });
});

afterAll(async () => {
  stopSecrets.abort();
  await echo?.close();
});

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/**
 * A server with the pipeline (gate, then inject) in the `/api` scope in front of the echo
 * server, a sibling `/public` scope with its own route, and a route outside both.
 */
async function server(audits: AuditRecord[]): Promise<string> {
  const app = Fastify();
  apps.push(app);
  await app.register(
    async (scope) => {
      await scope.register(
        proxyPlugin({
          transforms: [use(gate, { deny: [{ host: '*', paths: ['/api/blocked/*'] }] }), use(inject, { source: { type: 'env', var: 'REAL_TOKEN' } }), use(stamp, {})],
          destination: () => ({ scheme: 'http', host: '127.0.0.1', port: echo.port }),
          env: { secrets, logger: silent },
          onAudit: (record) => audits.push(record),
        }),
      );
      await scope.register(httpProxy, { upstream: echo.url, rewritePrefix: '/v1' });
      scope.get('/local/loud', async () => 'said quietly');
    },
    { prefix: '/api' },
  );
  await app.register(
    async (scope) => {
      scope.get('/echo', async (request) => ({ authorization: request.headers.authorization ?? null }));
    },
    { prefix: '/public' },
  );
  app.get('/outside', async (request) => ({ authorization: request.headers.authorization ?? null }));
  return app.listen({ host: '127.0.0.1', port: 0 });
}

describe('proxyPlugin: one pipeline in front of @fastify/http-proxy', () => {
  it('runs every transform in order and writes one audit record with an entry for each', async () => {
    const audits: AuditRecord[] = [];
    const base = await server(audits);
    const res = await fetch(`${base}/api/models?x=1`, { headers: { authorization: 'Bearer placeholder' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-stamped')).toBe('yes');
    const seen = (await res.json()) as EchoRequestRecord;
    expect(seen.headers.authorization).toBe(`Bearer ${REAL_TOKEN}`);
    expect(seen.path).toBe('/v1/models');
    expect(audits).toHaveLength(1);
    const [record] = audits;
    expect(record).toMatchObject({ action: 'allow', status_code: 200, host: '127.0.0.1', path: '/api/models', mode: 'reverse' });
    expect(record!.request_transforms.map((t) => [t.name, t.action])).toEqual([
      ['gate', 'allow'],
      ['inject', 'allow'],
    ]);
    expect(record!.request_transforms[1]!.annotations).toEqual({ secret: 'REAL_TOKEN' });
    expect(record!.response_transforms.map((t) => [t.name, t.action])).toEqual([['stamp', 'allow']]);
    expect(JSON.stringify(audits)).not.toContain(REAL_TOKEN);
  });

  it('stops at a reject: later transforms do not run and the upstream never sees the request', async () => {
    const audits: AuditRecord[] = [];
    const base = await server(audits);
    const before = echo.requests.length;
    const res = await fetch(`${base}/api/blocked/x`);
    expect(res.status).toBe(403);
    const text = await res.text();
    expect(text).toBe('request refused by the proxy: denied_by_gate\n');
    expect(echo.requests.length).toBe(before);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ action: 'reject', rejected_by: 'gate', reason: 'denied_by_gate', status_code: 403 });
    expect(audits[0]!.request_transforms.map((t) => t.name)).toEqual(['gate']);
    expect(audits[0]!.response_transforms).toEqual([]);
  });

  it('answers a stub from the first transform without running the rest', async () => {
    const audits: AuditRecord[] = [];
    const base = await server(audits);
    const res = await fetch(`${base}/api/stub`);
    expect([res.status, await res.json()]).toEqual([200, { stub: true }]);
    expect(res.headers.get('x-stamped')).toBeNull();
    expect(audits[0]).toMatchObject({ action: 'stub', stubbed_by: 'gate' });
    expect(audits[0]!.request_transforms.map((t) => t.name)).toEqual(['gate']);
  });

  it('fails closed when a transform throws: 502, and the secret in the error is nowhere', async () => {
    const audits: AuditRecord[] = [];
    const base = await server(audits);
    const before = echo.requests.length;
    const res = await fetch(`${base}/api/explode`);
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(text).toBe('request refused by the proxy: transform_error\n');
    expect(text).not.toContain(REAL_TOKEN);
    expect(echo.requests.length).toBe(before);
    expect(audits[0]).toMatchObject({ action: 'error', reason: 'transform_error' });
    expect(JSON.stringify(audits)).not.toContain(REAL_TOKEN);
  });

  it('runs response hooks on the upstream stream: status and body changes reach the client', async () => {
    const audits: AuditRecord[] = [];
    const base = await server(audits);
    const teapot = await fetch(`${base}/api/teapot`);
    expect(teapot.status).toBe(418);
    expect(teapot.headers.get('x-stamped')).toBe('yes');
    const loud = await fetch(`${base}/api/loud`);
    expect(loud.status).toBe(200);
    const body = await loud.text();
    expect(body).toBe(body.toUpperCase());
    expect(body).toContain('"PATH":"/V1/LOUD"');
    expect(loud.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));
  });

  it('runs response hooks on a route handler reply and answers a response reject itself', async () => {
    const audits: AuditRecord[] = [];
    const base = await server(audits);
    const local = await fetch(`${base}/api/local/loud`);
    expect([local.status, await local.text(), local.headers.get('x-stamped')]).toEqual([200, 'SAID QUIETLY', 'yes']);
    const withheld = await fetch(`${base}/api/withhold`);
    expect([withheld.status, await withheld.text()]).toEqual([502, 'request refused by the proxy: response_withheld\n']);
    const record = audits.find((a) => a.path === '/api/withhold');
    expect(record).toMatchObject({ action: 'reject', rejected_by: 'stamp', reason: 'response_withheld', status_code: 502 });
  });
});

describe('proxyPlugin audit when the client leaves', () => {
  it('writes the record as client_closed once the client gives up on a pending upstream', async () => {
    const held: (() => void)[] = [];
    const arrived: (() => void)[] = [];
    const stalled = createServer((_req, res) => {
      held.push(() => res.destroy());
      arrived.shift()?.();
    });
    stalled.listen(0, '127.0.0.1');
    await once(stalled, 'listening');
    const audits: AuditRecord[] = [];
    const app = Fastify();
    apps.push(app);
    try {
      await app.register(proxyPlugin({ transforms: [use(gate, { deny: [] })], onAudit: (r) => audits.push(r) }));
      await app.register(httpProxy, { upstream: `http://127.0.0.1:${(stalled.address() as AddressInfo).port}` });
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const reached = new Promise<void>((resolve) => arrived.push(resolve));
      const client = new AbortController();
      const pending = fetch(`${base}/slow`, { signal: client.signal }).catch((err: unknown) => err);
      await reached;
      client.abort();
      expect(await pending).toBeInstanceOf(Error);
      await expect.poll(() => audits.length).toBe(1);
      expect(audits[0]).toMatchObject({ action: 'error', reason: 'client_closed', status_code: 499, path: '/slow' });
      expect(audits[0]!.request_transforms.map((t) => t.name)).toEqual(['gate']);
    } finally {
      for (const release of held) release();
      stalled.close();
    }
  });
});

describe('proxyPlugin scope', () => {
  it('transforms only the routes of the context it is registered in', async () => {
    const audits: AuditRecord[] = [];
    const base = await server(audits);
    const sibling = await fetch(`${base}/public/echo`, { headers: { authorization: 'Bearer mine' } });
    expect(await sibling.json()).toEqual({ authorization: 'Bearer mine' });
    expect(sibling.headers.get('x-stamped')).toBeNull();
    const outside = await fetch(`${base}/outside`);
    expect(await outside.json()).toEqual({ authorization: null });
    expect(audits).toEqual([]);
    const scoped = await fetch(`${base}/api/blocked/y`);
    expect(scoped.status).toBe(403);
    expect(audits).toHaveLength(1);
  });

  it('keeps two pipelines in sibling contexts apart', async () => {
    const a: AuditRecord[] = [];
    const b: AuditRecord[] = [];
    const app = Fastify();
    apps.push(app);
    for (const [prefix, audits, header] of [
      ['/a', a, 'X-A'],
      ['/b', b, 'X-B'],
    ] as const) {
      await app.register(
        async (scope) => {
          await scope.register(proxyPlugin({ transforms: [{ transform: inject, config: { header, source: { type: 'env', var: 'REAL_TOKEN' } } }], env: { secrets, logger: silent }, onAudit: (r) => audits.push(r) }));
          scope.get('/h', async (request) => ({ a: request.headers['x-a'] !== undefined, b: request.headers['x-b'] !== undefined }));
        },
        { prefix },
      );
    }
    expect((await app.inject('/a/h')).json()).toEqual({ a: true, b: false });
    expect((await app.inject('/b/h')).json()).toEqual({ a: false, b: true });
    expect([a.length, b.length]).toEqual([1, 1]);
  });

  it('applies to the whole server when registered at the root', async () => {
    const audits: AuditRecord[] = [];
    const app = Fastify();
    apps.push(app);
    await app.register(proxyPlugin({ transforms: [use(gate, { deny: [{ host: '*', paths: ['/no'] }] })], onAudit: (r) => audits.push(r) }));
    app.get('/no', async () => 'reached');
    await app.register(async (scope) => scope.get('/yes', async () => 'reached'), { prefix: '/child' });
    expect((await app.inject('/no')).statusCode).toBe(403);
    expect((await app.inject('/child/yes')).body).toBe('reached');
    expect(audits.map((r) => r.path)).toEqual(['/no', '/child/yes']);
  });
});

describe('proxyPlugin registration', () => {
  it('refuses bad config with every issue, each naming its transform and field', async () => {
    const app = Fastify();
    apps.push(app);
    const bad = proxyPlugin({
      transforms: [
        use(gate, { deny: [{ host: '*', paths: ['no-slash'] }], reason: '' }),
        // A secret pasted where a source belongs: reported by field, its value never echoed.
        { transform: inject, config: { header: 'X-Key', source: { type: 'env', var: 'REAL_TOKEN' }, token: REAL_TOKEN } as never },
      ],
    });
    const caught = await app.register(bad).ready().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(caught).toBeInstanceOf(ConfigError);
    const issues = (caught as ConfigError).issues;
    expect(issues.map((i) => i.path).sort()).toEqual(['transforms[0].config.deny[0].paths[0]', 'transforms[0].config.reason', 'transforms[1].config.token']);
    for (const issue of issues) expect(issue.message).toMatch(/\(transform (gate|inject)\)$/);
    expect((caught as ConfigError).message).toContain('transforms[1].config.token: is not a known field (transform inject)');
    expect((caught as ConfigError).message).not.toContain(REAL_TOKEN);
  });

  it('applies schema defaults to a copy, never to the caller’s config', async () => {
    const config = { deny: [{ host: '*', paths: ['/x'] }] };
    const app = Fastify();
    apps.push(app);
    const audits: AuditRecord[] = [];
    await app.register(proxyPlugin({ transforms: [use(gate, config)], onAudit: (r) => audits.push(r) }));
    app.get('/x', async () => 'no');
    const res = await app.inject('/x');
    expect([res.statusCode, audits[0]?.reason]).toEqual([403, 'denied_by_gate']);
    expect(config).toEqual({ deny: [{ host: '*', paths: ['/x'] }] });
  });

  it('closes the transforms created before one whose create fails', async () => {
    const events: string[] = [];
    const first = defineTransform<Record<string, never>>({
      name: 'first',
      schema: { type: 'object' },
      create: () => ({ close: () => void events.push('first closed') }),
    });
    const broken = defineTransform<Record<string, never>>({
      name: 'broken',
      schema: { type: 'object' },
      create: () => {
        throw new Error('cannot start');
      },
    });
    const app = Fastify();
    apps.push(app);
    const caught = await app
      .register(proxyPlugin({ transforms: [use(first, {}), use(broken, {})] }))
      .ready()
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect((caught as Error).message).toBe('transforms[1] (broken): cannot start');
    expect(events).toEqual(['first closed']);
  });
});
