/**
 * password and RFC 7523 jwt_bearer against oauth2-mock-server, which checks the client secret,
 * the user's password, the API key header and the assertion's signature, `iss`, `aud` and
 * `kid`; every token is verified against the server's JWKS.
 */
import { generateKeyPairSync } from 'node:crypto';
import { startOAuthMockServer, type OAuthMockServer } from '@proxy/test-kit';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JWT_BEARER_GRANT_TYPE } from '../src/index.js';
import { bearerOf, startTransform, type LiveTransform } from './harness.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PKCS8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PKCS1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const OTHER_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

const ENV = {
  API_USERNAME: 'svc-reporting',
  API_PASSWORD: 'pw-5e4d3c2b1a09',
  API_CLIENT_ID: 'pw-client',
  API_CLIENT_SECRET: 'pw-client-secret-77aa66bb',
  API_KEY: 'apikey-0f1e2d3c4b5a',
  JWT_ISSUER: 'integration-key-1234',
  JWT_SUBJECT: 'user-guid-5678',
  JWT_KID: 'key-2024-01',
  PRIVATE_KEY: PKCS8,
};
const AUDIENCE = 'account.example.test';
const API_HOST = 'api.example.test';

let server: OAuthMockServer;
const live: LiveTransform[] = [];

beforeAll(async () => {
  server = await startOAuthMockServer({
    clients: new Map([[ENV.API_CLIENT_ID, ENV.API_CLIENT_SECRET]]),
    users: new Map([[ENV.API_USERNAME, ENV.API_PASSWORD]]),
    assertions: { publicKey, audience: AUDIENCE, issuer: ENV.JWT_ISSUER, kid: ENV.JWT_KID },
    requiredHeaders: new Map([['x-api-key', ENV.API_KEY]]),
  });
});
afterAll(async () => {
  await server?.close();
});
afterEach(async () => {
  for (const t of live.splice(0)) await t.close();
  server.calls.length = 0;
});

async function start(entry: Record<string, unknown>, env: Record<string, string> = ENV): Promise<LiveTransform> {
  const t = await startTransform(
    {
      tokens: [
        {
          token_endpoint: server.tokenEndpoint,
          token_endpoint_headers: { 'x-api-key': { type: 'env', var: 'API_KEY' } },
          rules: [{ host: API_HOST }],
          ...entry,
        },
      ],
    },
    { env },
  );
  live.push(t);
  return t;
}

const passwordEntry = {
  grant: 'password',
  username: { type: 'env', var: 'API_USERNAME' },
  password: { type: 'env', var: 'API_PASSWORD' },
  client_id: { type: 'env', var: 'API_CLIENT_ID' },
  client_secret: { type: 'env', var: 'API_CLIENT_SECRET' },
  scopes: ['read', 'write'],
};

const jwtEntry = {
  grant: 'jwt_bearer',
  issuer: { type: 'env', var: 'JWT_ISSUER' },
  subject: { type: 'env', var: 'JWT_SUBJECT' },
  private_key: { type: 'env', var: 'PRIVATE_KEY' },
  private_key_id: { type: 'env', var: 'JWT_KID' },
  audience: AUDIENCE,
  scopes: ['signature', 'impersonation'],
};

describe('password', () => {
  it('posts the user, the client and the API key header, and injects a token issued to that user', async () => {
    const t = await start(passwordEntry);
    const result = await t.run({ scheme: 'https', host: API_HOST });
    const claims = await server.verify(bearerOf(result.request));
    expect(claims).toMatchObject({ sub: ENV.API_USERNAME, scope: 'read write' });
    expect(result.annotations).toEqual({ grant: 'password', injected: ['header:Authorization'] });
    const call = server.calls[0]!;
    expect(call).toMatchObject({ grantType: 'password', error: undefined });
    expect(call.body).toMatchObject({ client_id: ENV.API_CLIENT_ID, client_secret: ENV.API_CLIENT_SECRET, scope: 'read write' });
    expect(call.headers['x-api-key']).toBe(ENV.API_KEY);
  });

  it('a wrong password is invalid_grant', async () => {
    const t = await start(passwordEntry, { ...ENV, API_PASSWORD: 'wrong-password-000' });
    const result = await t.run({ scheme: 'https', host: API_HOST });
    expect(result.annotations).toEqual({ grant: 'password', error: 'invalid_grant', skipped: 'token_unavailable' });
  });

  it('a missing API key header is refused by the server (invalid_client)', async () => {
    const t = await start({ ...passwordEntry, token_endpoint_headers: { 'x-api-key': { type: 'env', var: 'OTHER_KEY' } } }, { ...ENV, OTHER_KEY: 'not-the-api-key' });
    const result = await t.run({ scheme: 'https', host: API_HOST });
    expect(result.annotations).toMatchObject({ error: 'invalid_client' });
  });
});

describe('jwt_bearer', () => {
  it('signs an RS256 assertion with kid, iss, sub, aud and scope, and trades it for a token', async () => {
    const t = await start(jwtEntry);
    const result = await t.run({ scheme: 'https', host: API_HOST });
    expect(await server.verify(bearerOf(result.request))).toMatchObject({ sub: ENV.JWT_SUBJECT });
    expect(result.annotations).toEqual({ grant: 'jwt_bearer', injected: ['header:Authorization'] });

    const call = server.calls[0]!;
    expect(call.grantType).toBe(JWT_BEARER_GRANT_TYPE);
    // RFC 7523 §2.1: the assertion is the whole authentication.
    expect(Object.keys(call.body).sort()).toEqual(['assertion', 'grant_type']);
    const assertion = String(call.body.assertion);
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', typ: 'JWT', kid: ENV.JWT_KID });
    const claims = decodeJwt(assertion);
    expect(claims).toMatchObject({ iss: ENV.JWT_ISSUER, sub: ENV.JWT_SUBJECT, aud: AUDIENCE, scope: 'signature impersonation' });
    expect(claims.exp! - claims.iat!).toBe(3600);
    // The assertion is a credential for its hour: it is registered for redaction.
    expect(t.redactor.redact(assertion)).not.toContain(assertion);
  });

  it('accepts a PKCS#1 key and leaves out kid when private_key_id is not set', async () => {
    const { private_key_id: _kid, ...withoutKid } = jwtEntry;
    // The server here wants the kid: a second server without that check.
    const relaxed = await startOAuthMockServer({ assertions: { publicKey, audience: AUDIENCE, issuer: ENV.JWT_ISSUER } });
    try {
      const t = await startTransform(
        { tokens: [{ ...withoutKid, token_endpoint: relaxed.tokenEndpoint, rules: [{ host: API_HOST }] }] },
        { env: { ...ENV, PRIVATE_KEY: PKCS1 } },
      );
      live.push(t);
      const result = await t.run({ scheme: 'https', host: API_HOST });
      await relaxed.verify(bearerOf(result.request));
      expect(decodeProtectedHeader(String(relaxed.calls[0]!.body.assertion))).toEqual({ alg: 'RS256', typ: 'JWT' });
    } finally {
      await relaxed.close();
    }
  });

  it('an assertion signed by another key is invalid_grant; a non-RSA key fails before any call', async () => {
    const wrong = await start(jwtEntry, { ...ENV, PRIVATE_KEY: OTHER_KEY });
    expect((await wrong.run({ scheme: 'https', host: API_HOST })).annotations).toMatchObject({ error: 'invalid_grant' });
    const ec = await start(jwtEntry, { ...ENV, PRIVATE_KEY: EC_KEY });
    expect((await ec.run({ scheme: 'https', host: API_HOST })).annotations).toMatchObject({ error: 'mint_failed' });
    expect(ec.logs.some((l) => /must be an RSA key/.test(String(l.fields.detail)))).toBe(true);
    const garbage = await start(jwtEntry, { ...ENV, PRIVATE_KEY: 'not a pem key at all' });
    expect((await garbage.run({ scheme: 'https', host: API_HOST })).annotations).toMatchObject({ error: 'mint_failed' });
    expect(JSON.stringify(garbage.logs)).not.toContain('not a pem key at all');
    expect(server.calls.map((c) => c.error)).toEqual(['invalid_grant']);
  });
});
