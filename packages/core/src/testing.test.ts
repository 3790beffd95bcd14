import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { secretSourceRef, type SecretSourceConfig } from './secrets.js';
import { runTransform, testRequest, validateTransformConfig } from './testing.js';
import { defineTransform, reject, respond } from './transform.js';

/** Injects a secret from config into a header, for requests to one host. */
const injectHeader = defineTransform<{ header: string; host: string; source: SecretSourceConfig; prefix: string }>({
  name: 'inject-header',
  schema: {
    type: 'object',
    properties: {
      header: { type: 'string', minLength: 1 },
      host: { type: 'string', format: 'host-glob' },
      source: secretSourceRef,
      prefix: { type: 'string', default: 'Bearer ' },
    },
    required: ['header', 'host', 'source'],
    additionalProperties: false,
  },
  async create(config, env) {
    const secret = await env.secrets.open(config.source);
    let closed = false;
    env.signal.addEventListener('abort', () => env.logger.info('signal aborted'));
    return {
      onRequest(request, trace) {
        if (closed) throw new Error('used after close');
        if (request.host !== config.host) return reject(403, 'wrong_host');
        request.headers.set(config.header, `${config.prefix}${secret.value()}`);
        trace.annotate('secret', secret.label);
        env.logger.info({ secret: secret.label }, 'injected');
        return undefined;
      },
      close() {
        closed = true;
        secret.close();
        env.logger.info('closed');
      },
    };
  },
});

const config = { header: 'Authorization', host: 'api.example.com', source: { type: 'env', var: 'API_TOKEN' } };

describe('testRequest', () => {
  it('defaults to GET http://example.com/ with a Host header', () => {
    const r = testRequest();
    expect([r.method, r.scheme, r.host, r.port, r.path, r.query, r.mode]).toEqual(['GET', 'http', 'example.com', 80, '/', '', 'http']);
    expect(r.headers.get('host')).toBe('example.com');
    expect(r.body.present).toBe(false);
  });

  it('builds https requests with a body', async () => {
    const r = testRequest({ scheme: 'https', host: '::1', port: 8443, method: 'POST', body: '{"a":1}', headers: [['X-A', '1']] });
    expect(r.mode).toBe('mitm');
    expect(r.headers.get('host')).toBe('[::1]:8443');
    expect(r.headers.get('content-length')).toBe('7');
    expect((await r.body.read()).toString()).toBe('{"a":1}');
  });
});

describe('validateTransformConfig', () => {
  it('returns no issues for a valid config', () => {
    expect(validateTransformConfig(injectHeader, config)).toEqual([]);
  });

  it('returns every issue with field paths', () => {
    expect(validateTransformConfig(injectHeader, { header: '', host: 'a b', source: { type: 'env' }, extra: true })).toEqual([
      { path: 'extra', message: 'is not a known field' },
      { path: 'header', message: 'must NOT have fewer than 1 characters' },
      { path: 'host', message: 'must be a valid host-glob' },
      { path: 'source.var', message: 'is required' },
    ]);
  });

  it('does not modify the config it is given', () => {
    const given = structuredClone(config);
    validateTransformConfig(injectHeader, given);
    expect(given).toEqual(config);
  });
});

describe('runTransform', () => {
  it('runs the transform with defaults applied and real secrets', async () => {
    const result = await runTransform(injectHeader, config, { host: 'api.example.com' }, { env: { API_TOKEN: 'tok-xyz' } });
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.get('authorization')).toBe('Bearer tok-xyz');
    expect(result.audit).toMatchObject({ action: 'allow', host: 'api.example.com', status_code: 0 });
    expect(result.audit.request_transforms).toEqual([
      expect.objectContaining({ name: 'inject-header', action: 'allow', annotations: { secret: 'API_TOKEN' } }),
    ]);
    expect(JSON.stringify(result.audit)).not.toContain('tok-xyz');
    expect(JSON.stringify(result.logs)).not.toContain('tok-xyz');
    expect(result.logs.map((l) => l.msg)).toEqual(['injected', 'closed', 'signal aborted']);
    expect(result.logs[0]!.fields).toMatchObject({ transform: 'inject-header#0', secret: 'API_TOKEN' });
  });

  it('reports a reject decision and the audit record', async () => {
    const result = await runTransform(injectHeader, config, { host: 'other.example.com' }, { env: { API_TOKEN: 't' } });
    expect(result.decision).toEqual({ action: 'reject', status: 403, reason: 'wrong_host' });
    expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'inject-header', reason: 'wrong_host', status_code: 403 });
  });

  it('throws a ConfigError listing the issues', async () => {
    let caught: unknown;
    try {
      await runTransform(injectHeader, { host: 'x' }, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues.map((i) => i.path)).toEqual(['header', 'source']);
  });

  it('creates the transform without a missing secret; a request needing it fails closed (502 secret_unavailable)', async () => {
    const result = await runTransform(injectHeader, config, { host: 'api.example.com' }, { env: {} });
    expect(result.decision).toMatchObject({ action: 'reject', status: 502, reason: 'secret_unavailable' });
    expect(result.audit).toMatchObject({ action: 'error', rejected_by: 'inject-header', reason: 'secret_unavailable' });
    expect(result.request.headers.get('authorization')).toBeUndefined();
  });

  it('gives transforms an http client that refuses the network unless one is passed', async () => {
    const caller = defineTransform<Record<string, never>>({
      name: 'caller',
      schema: { type: 'object', additionalProperties: false },
      create: (_config, env) => ({
        async onRequest(request) {
          const res = await env.http('https://token.example.com/');
          request.headers.set('x-token', await res.text());
        },
      }),
    });
    const offline = await runTransform(caller, {});
    expect(offline.decision).toEqual({ action: 'reject', status: 502, reason: 'upstream_unreachable' });
    const online = await runTransform(caller, {}, {}, { transformEnv: { http: () => Promise.resolve(new Response('minted')) } });
    expect(online.request.headers.get('x-token')).toBe('minted');
  });

  it('reports the forwarded body: replaced, read, or original', async () => {
    const bodyTransform = (mode: 'replace' | 'read' | 'none') =>
      defineTransform<Record<string, never>>({
        name: `body-${mode}`,
        schema: { type: 'object' },
        create: () => ({
          async onRequest(request) {
            if (mode === 'read') await request.body.read();
            if (mode === 'replace') request.body.replace((await request.body.read()).toString().toUpperCase());
          },
        }),
      });
    const req = { method: 'POST', body: 'hello' };
    const replaced = await runTransform(bodyTransform('replace'), {}, req);
    expect(replaced.forwardedBody.toString()).toBe('HELLO');
    expect(replaced.request.headers.get('content-length')).toBe('5');
    expect((await runTransform(bodyTransform('read'), {}, req)).forwardedBody.toString()).toBe('hello');
    expect((await runTransform(bodyTransform('none'), {}, req)).forwardedBody.toString()).toBe('hello');
  });

  it('rejects a body over maxBodyBytes with 413', async () => {
    const reader = defineTransform<Record<string, never>>({
      name: 'reader',
      schema: { type: 'object' },
      create: () => ({
        async onRequest(request) {
          await request.body.read();
        },
      }),
    });
    const result = await runTransform(reader, {}, { method: 'POST', body: 'x'.repeat(20), maxBodyBytes: 10 });
    expect(result.decision).toEqual({ action: 'reject', status: 413, reason: 'body_too_large' });
  });

  it('runs response hooks on a given response', async () => {
    const stamp = defineTransform<Record<string, never>>({
      name: 'stamp',
      schema: { type: 'object' },
      create: () => ({
        async onResponse(_request, response) {
          if ((await response.body.read()).toString() === 'deny') return respond(451, 'blocked');
          response.headers.set('x-stamped', 'yes');
          return undefined;
        },
      }),
    });
    const ok = await runTransform(stamp, {}, {}, { response: { status: 201, body: 'fine' } });
    expect(ok.response?.headers.get('x-stamped')).toBe('yes');
    expect(ok.responseDecision?.action).toBe('continue');
    expect(ok.audit.status_code).toBe(201);
    const denied = await runTransform(stamp, {}, {}, { response: { body: 'deny' } });
    expect(denied.responseDecision).toMatchObject({ action: 'respond', status: 451 });
    expect(denied.audit).toMatchObject({ action: 'stub', stubbed_by: 'stamp', status_code: 451 });
  });
});
