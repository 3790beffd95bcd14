/**
 * client_credentials and refresh_token against oidc-provider: every token is checked the way
 * a resource server checks it (jose, the provider's JWKS) and by an API that refuses anything
 * else; caching, expiry on a moved clock, single flight, refresh token rotation, a client
 * secret rotated mid-run, and a refresh long after the minting request ended.
 */
import { startOidcTestProvider, startProtectedApi, type OidcTestProvider, type ProtectedApi } from '@proxy/test-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXPIRY_SKEW_MS } from '../src/index.js';
import { bearerOf, FakeClock, startTransform, type LiveTransform } from './harness.js';

const SECRET_V1 = 'cc-secret-v1-8d7f6e5a4b3c';
const SECRET_V2 = 'cc-secret-v2-1a2b3c4d5e6f';
const API_HOST = 'api.example.test';

let provider: OidcTestProvider;
let api: ProtectedApi;
const live: LiveTransform[] = [];

beforeAll(async () => {
  provider = await startOidcTestProvider({ accessTokenTtlSeconds: 600 });
  api = await startProtectedApi((token) => provider.verify(token));
});
afterAll(async () => {
  await api?.close();
  await provider?.close();
});
afterEach(async () => {
  for (const t of live.splice(0)) await t.close();
  provider.calls.length = 0;
  provider.failWith(undefined);
});

async function start(config: unknown, options: Parameters<typeof startTransform>[1] = {}): Promise<LiveTransform> {
  const t = await startTransform(config, options);
  live.push(t);
  return t;
}

const clientCredentials = (extra: Record<string, unknown> = {}): unknown => ({
  tokens: [
    {
      grant: 'client_credentials',
      client_id: { type: 'env', var: 'CLIENT_ID' },
      client_secret: { type: 'env', var: 'CLIENT_SECRET' },
      token_endpoint: provider.tokenEndpoint,
      scopes: ['api:read'],
      rules: [{ host: API_HOST }],
      ...extra,
    },
  ],
});

/** Calls the protected API with the header the transform set. */
async function callApi(authorization: string | undefined): Promise<number> {
  const response = await fetch(`${api.url}/v1/items`, { headers: authorization === undefined ? {} : { authorization } });
  await response.arrayBuffer();
  return response.status;
}

describe('client_credentials', () => {
  it('mints a token the resource server accepts, injects it, and serves later requests from the cache', async () => {
    await provider.setClient('cc-client', SECRET_V1);
    const t = await start(clientCredentials(), { env: { CLIENT_ID: 'cc-client', CLIENT_SECRET: SECRET_V1 } });
    const first = await t.run({ scheme: 'https', host: API_HOST, headers: { Authorization: 'Bearer iron-proxy-stub-token' } });
    expect(first.decision).toEqual({ action: 'continue' });
    expect(first.request.headers.getAll('authorization')).toHaveLength(1);
    const token = bearerOf(first.request);
    const claims = await provider.verify(token);
    expect(claims).toMatchObject({ client_id: 'cc-client', aud: provider.resource, scope: 'api:read' });
    expect(await callApi(first.request.headers.get('authorization'))).toBe(200);
    expect(first.annotations).toEqual({ grant: 'client_credentials', injected: ['header:Authorization'] });

    const second = await t.run({ scheme: 'https', host: API_HOST });
    expect(bearerOf(second.request)).toBe(token);
    expect(provider.calls).toEqual([{ grantType: 'client_credentials', clientId: 'cc-client', error: undefined }]);

    // The token and the secret are registered for redaction and never logged.
    expect(t.redactor.redact(`x ${token} y`)).not.toContain(token);
    expect(JSON.stringify(t.logs)).not.toContain(token);
    expect(JSON.stringify(t.logs)).not.toContain(SECRET_V1);
    expect(JSON.stringify(first.audit)).not.toContain(token);
  });

  it('leaves requests outside the rules alone', async () => {
    await provider.setClient('cc-client', SECRET_V1);
    const t = await start(clientCredentials(), { env: { CLIENT_ID: 'cc-client', CLIENT_SECRET: SECRET_V1 } });
    const result = await t.run({ scheme: 'https', host: 'other.example.test', headers: { Authorization: 'Bearer mine' } });
    expect(result.decision).toEqual({ action: 'continue' });
    expect(result.request.headers.get('authorization')).toBe('Bearer mine');
    expect(result.annotations).toEqual({});
    expect(provider.calls).toHaveLength(0);
  });

  it('mints again once the token is within the skew of its expiry (moved clock)', async () => {
    await provider.setClient('cc-client', SECRET_V1);
    const clock = new FakeClock();
    const t = await start(clientCredentials(), { clock, env: { CLIENT_ID: 'cc-client', CLIENT_SECRET: SECRET_V1 } });
    const first = bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request);
    clock.advance(600_000 - EXPIRY_SKEW_MS - 1000);
    expect(bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request)).toBe(first);
    expect(provider.calls).toHaveLength(1);
    clock.advance(2000);
    const second = bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request);
    expect(second).not.toBe(first);
    await provider.verify(second);
    expect(provider.calls).toHaveLength(2);
  });

  it('shares one token call among concurrent requests (single flight)', async () => {
    await provider.setClient('cc-client', SECRET_V1);
    const t = await start(clientCredentials(), { env: { CLIENT_ID: 'cc-client', CLIENT_SECRET: SECRET_V1 } });
    const release = provider.hold();
    const runs = Array.from({ length: 12 }, () => t.run({ scheme: 'https', host: API_HOST }));
    await new Promise((r) => setTimeout(r, 100));
    release();
    const results = await Promise.all(runs);
    const tokens = new Set(results.map((r) => bearerOf(r.request)));
    expect(tokens.size).toBe(1);
    expect(provider.calls).toHaveLength(1);
  });

  it('drops the cached token when the client secret rotates and mints with the new one', async () => {
    await provider.setClient('cc-rotating', SECRET_V1);
    const env: Record<string, string | undefined> = { CLIENT_ID: 'cc-rotating', CLIENT_SECRET: SECRET_V1 };
    const config = {
      tokens: [
        {
          grant: 'client_credentials',
          client_id: { type: 'env', var: 'CLIENT_ID' },
          client_secret: { type: 'env', var: 'CLIENT_SECRET', ttl: '100ms' },
          token_endpoint: provider.tokenEndpoint,
          rules: [{ host: API_HOST }],
        },
      ],
    };
    const t = await start(config, { env });
    const before = bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request);

    // The authorization server now knows only the new secret; so does the secret store.
    await provider.setClient('cc-rotating', SECRET_V2);
    env.CLIENT_SECRET = SECRET_V2;
    await new Promise((r) => setTimeout(r, 400));
    const after = await t.run({ scheme: 'https', host: API_HOST });
    const token = bearerOf(after.request);
    expect(token).not.toBe(before);
    await provider.verify(token);
    expect(provider.calls.map((c) => c.error)).toEqual([undefined, undefined]);
    expect(t.logs.some((l) => /changed; its cached token is dropped/.test(l.msg ?? ''))).toBe(true);
    expect(JSON.stringify(t.logs)).not.toContain(SECRET_V2);
  });

  it('reports the OAuth error of a refused client and forwards the request untouched', async () => {
    await provider.setClient('cc-client', SECRET_V1);
    const t = await start(clientCredentials(), { env: { CLIENT_ID: 'cc-client', CLIENT_SECRET: 'not-the-secret-123' } });
    const result = await t.run({ scheme: 'https', host: API_HOST, headers: { Authorization: 'Bearer workload' } });
    expect(result.decision).toEqual({ action: 'continue' });
    expect(result.request.headers.get('authorization')).toBe('Bearer workload');
    expect(result.annotations).toEqual({ grant: 'client_credentials', error: 'invalid_client', skipped: 'token_unavailable' });
    expect(result.audit.action).toBe('allow');
    expect(t.logs.some((l) => l.level === 'warn' && l.fields.error === 'invalid_client')).toBe(true);
  });

  it('with require: refuses with 502 and a JSON body naming the grant; the endpoint failing gives token_endpoint_http_<n>', async () => {
    await provider.setClient('cc-client', SECRET_V1);
    provider.failWith(503);
    const t = await start(clientCredentials({ require: true }), { env: { CLIENT_ID: 'cc-client', CLIENT_SECRET: SECRET_V1 } });
    const result = await t.run({ scheme: 'https', host: API_HOST });
    expect(result.decision).toEqual({
      action: 'reject',
      status: 502,
      reason: 'token_unavailable',
      message: '{"error":"oauth_token failed to mint an access token","grant":"client_credentials"}',
      contentType: 'application/json; charset=utf-8',
    });
    expect(result.annotations).toEqual({ grant: 'client_credentials', error: 'token_endpoint_http_503', rejected: 'token_unavailable' });
    expect(result.audit).toMatchObject({ action: 'reject', status_code: 502, rejected_by: 'oauth_token' });

    // The endpoint recovers: the next request mints.
    provider.failWith(undefined);
    const next = await t.run({ scheme: 'https', host: API_HOST });
    await provider.verify(bearerOf(next.request));
  });
});

describe('refresh_token', () => {
  const refreshConfig = (extra: Record<string, unknown> = {}): unknown => ({
    tokens: [
      {
        grant: 'refresh_token',
        refresh_token: { type: 'env', var: 'REFRESH_TOKEN' },
        client_id: { type: 'env', var: 'CLIENT_ID' },
        token_endpoint: provider.tokenEndpoint,
        rules: [{ host: API_HOST }],
        ...extra,
      },
    ],
  });

  it('trades the refresh token, follows its rotation, and refreshes after the minting request ended', async () => {
    await provider.setClient('rt-client', SECRET_V1);
    const refreshToken = await provider.issueRefreshToken('rt-client');
    const clock = new FakeClock();
    const t = await start(refreshConfig({ client_secret: { type: 'env', var: 'CLIENT_SECRET' }, scopes: ['api:read'] }), {
      clock,
      env: { CLIENT_ID: 'rt-client', CLIENT_SECRET: SECRET_V1, REFRESH_TOKEN: refreshToken },
    });
    const first = await t.run({ scheme: 'https', host: API_HOST });
    const token = bearerOf(first.request);
    expect(await provider.verify(token)).toMatchObject({ sub: 'user-1', aud: provider.resource });
    expect(await callApi(first.request.headers.get('authorization'))).toBe(200);

    // Long after that request ended, the token expires: the next request refreshes, with the
    // rotated refresh token (the provider refuses reuse of the first one and revokes the grant).
    clock.advance(600_000);
    const second = await t.run({ scheme: 'https', host: API_HOST });
    const renewed = bearerOf(second.request);
    expect(renewed).not.toBe(token);
    await provider.verify(renewed);
    clock.advance(600_000);
    await provider.verify(bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request));
    expect(provider.calls).toEqual([
      { grantType: 'refresh_token', clientId: 'rt-client', error: undefined },
      { grantType: 'refresh_token', clientId: 'rt-client', error: undefined },
      { grantType: 'refresh_token', clientId: 'rt-client', error: undefined },
    ]);
    expect(JSON.stringify(t.logs)).not.toContain(refreshToken);
  });

  it('keeps the rotated refresh token when the client secret rotates; a new refresh token in the store replaces it', async () => {
    await provider.setClient('rt-rotating', SECRET_V1);
    const original = await provider.issueRefreshToken('rt-rotating', 'user-3');
    const clock = new FakeClock();
    const env: Record<string, string | undefined> = { CLIENT_ID: 'rt-rotating', CLIENT_SECRET: SECRET_V1, REFRESH_TOKEN: original };
    const t = await start(
      refreshConfig({ client_secret: { type: 'env', var: 'CLIENT_SECRET', ttl: '100ms' }, refresh_token: { type: 'env', var: 'REFRESH_TOKEN', ttl: '100ms' } }),
      { clock, env },
    );
    await provider.verify(bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request));

    // The secret rotates: the next token comes from the rotated refresh token (the original is spent).
    await provider.setClient('rt-rotating', SECRET_V2);
    env.CLIENT_SECRET = SECRET_V2;
    await new Promise((r) => setTimeout(r, 400));
    await provider.verify(bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request));

    // A person seeds a fresh refresh token: it is used from then on.
    const seeded = await provider.issueRefreshToken('rt-rotating', 'user-4');
    env.REFRESH_TOKEN = seeded;
    await new Promise((r) => setTimeout(r, 400));
    expect(await provider.verify(bearerOf((await t.run({ scheme: 'https', host: API_HOST })).request))).toMatchObject({ sub: 'user-4' });
    expect(provider.calls.map((c) => c.error)).toEqual([undefined, undefined, undefined]);
  });

  it('works for a public client (no client_secret)', async () => {
    await provider.setClient('rt-public');
    const refreshToken = await provider.issueRefreshToken('rt-public', 'user-2');
    const t = await start(refreshConfig(), { env: { CLIENT_ID: 'rt-public', REFRESH_TOKEN: refreshToken } });
    const result = await t.run({ scheme: 'https', host: API_HOST });
    expect(await provider.verify(bearerOf(result.request))).toMatchObject({ sub: 'user-2' });
  });

  it('a refresh token the server does not know is invalid_grant, logged as an error', async () => {
    await provider.setClient('rt-public');
    const t = await start(refreshConfig({ require: true }), { env: { CLIENT_ID: 'rt-public', REFRESH_TOKEN: 'revoked-refresh-token-0001' } });
    const result = await t.run({ scheme: 'https', host: API_HOST });
    expect(result.decision).toMatchObject({ action: 'reject', status: 502, reason: 'token_unavailable' });
    expect(result.annotations).toMatchObject({ grant: 'refresh_token', error: 'invalid_grant' });
    expect(t.logs.some((l) => l.level === 'error' && l.fields.error === 'invalid_grant')).toBe(true);
  });
});
