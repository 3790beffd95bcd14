import Fastify, { type FastifyInstance } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretResolver, defineTransform, envSource, reject, type AuditRecord, type Logger, type SecretResolver } from '@proxy/core';
import { proxyPlugin, transformPlugin, use } from '@proxy/core/fastify';
import { startEchoServer, type EchoRequestRecord, type EchoServer } from '@proxy/test-kit';
import { secretsTransform, type SecretsConfig } from '../src/index.js';

// Standalone use: the secrets transform in front of @fastify/http-proxy in a plain Fastify
// server, through core's adapter, with the echo server as the upstream.
const REAL_TOKEN = 'real-standalone-token-5e6f';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

let echo: EchoServer;
let app: FastifyInstance;
let secrets: SecretResolver;
let base: string;
const audits: AuditRecord[] = [];
const stopSecrets = new AbortController();

const config: SecretsConfig = {
  secrets: [
    {
      source: { type: 'env', var: 'REAL_TOKEN' },
      replace: { proxy_value: 'proxy-tok-standalone', match_headers: ['Authorization'], match_query: true, require: true },
      rules: [{ host: '127.0.0.1', paths: ['/v1/*'] }],
    },
  ],
};

beforeAll(async () => {
  echo = await startEchoServer();
  secrets = createSecretResolver({
    sources: [envSource],
    logger: silent,
    clock: { now: () => Date.now() },
    http: fetch,
    signal: stopSecrets.signal,
    env: { REAL_TOKEN },
  });
  app = Fastify();
  await app.register(
    transformPlugin(secretsTransform, {
      destination: () => ({ scheme: 'http', host: '127.0.0.1', port: echo.port }),
      env: { secrets, logger: silent },
      onAudit: (record) => audits.push(record),
    }),
    config,
  );
  await app.register(httpProxy, { upstream: echo.url });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  stopSecrets.abort();
  await echo?.close();
});

describe('secrets as a Fastify plugin in front of @fastify/http-proxy', () => {
  it('swaps the placeholder before the request reaches the upstream', async () => {
    const res = await fetch(`${base}/v1/models?key=proxy-tok-standalone`, { headers: { Authorization: 'Bearer proxy-tok-standalone' } });
    expect(res.status).toBe(200);
    const seen = (await res.json()) as EchoRequestRecord;
    expect(seen.headers.authorization).toBe(`Bearer ${REAL_TOKEN}`);
    expect(seen.query).toBe(`key=${REAL_TOKEN}`);
    expect(seen.path).toBe('/v1/models');
  });

  it('answers 403 itself when the required placeholder is missing', async () => {
    const before = echo.requests.length;
    const res = await fetch(`${base}/v1/models`, { headers: { Authorization: 'Bearer my-own-key' } });
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain(REAL_TOKEN);
    expect(echo.requests.length).toBe(before);
  });

  it('reports audit records that name the secret but never hold its value', () => {
    expect(audits.length).toBeGreaterThanOrEqual(2);
    const text = JSON.stringify(audits);
    expect(text).toContain('REAL_TOKEN');
    expect(text).not.toContain(REAL_TOKEN);
    expect(audits.some((a) => a.rejected_by === 'secrets' && a.reason === 'proxy_token_missing')).toBe(true);
  });
});

describe('secrets in a proxyPlugin pipeline', () => {
  /** A policy stage before the secrets: refuses `/admin/*`. */
  const noAdmin = defineTransform<Record<string, never>>({
    name: 'no_admin',
    schema: { type: 'object', additionalProperties: false },
    create: () => ({ onRequest: (request) => (request.path.startsWith('/scoped/admin') ? reject(403, 'admin_refused') : undefined) }),
  });

  it('injects in its scope only, with one audit record per request, from a config without defaulted fields', async () => {
    const records: AuditRecord[] = [];
    const scoped = Fastify();
    try {
      await scoped.register(
        async (scope) => {
          await scope.register(
            proxyPlugin({
              // No `rules` on the entry: the schema defaults it to every destination.
              transforms: [use(noAdmin, {}), use(secretsTransform, { secrets: [{ source: { type: 'env', var: 'REAL_TOKEN' }, inject: { header: 'X-Api-Key' } }] })],
              env: { secrets, logger: silent },
              onAudit: (record) => records.push(record),
            }),
          );
          scope.get('/*', async (request) => ({ key: request.headers['x-api-key'] === REAL_TOKEN }));
        },
        { prefix: '/scoped' },
      );
      scoped.get('/open', async (request) => ({ key: request.headers['x-api-key'] ?? null }));

      expect((await scoped.inject('/scoped/v1')).json()).toEqual({ key: true });
      expect((await scoped.inject('/open')).json()).toEqual({ key: null });
      const refused = await scoped.inject('/scoped/admin/x');
      expect(refused.statusCode).toBe(403);
      expect(refused.body).not.toContain(REAL_TOKEN);
      expect(records.map((r) => [r.path, r.request_transforms.map((t) => t.name)])).toEqual([
        ['/scoped/v1', ['no_admin', 'secrets']],
        ['/scoped/admin/x', ['no_admin']],
      ]);
      expect(records[0]!.request_transforms[1]!.annotations).toEqual({ injected: [{ secret: 'REAL_TOKEN', locations: ['header:X-Api-Key'] }] });
      expect(JSON.stringify(records)).not.toContain(REAL_TOKEN);
    } finally {
      await scoped.close();
    }
  });
});
