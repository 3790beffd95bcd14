/**
 * The transform's own behaviour with a scripted token endpoint: the stub, each failure reason,
 * unavailable credentials, TLS passthrough, entry order, the header settings, and the bounds
 * on what the endpoint may answer.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runTransform } from '@proxy/core/testing';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TOKEN_RESPONSE_BYTES, oauthTokenTransform, STUB_BODY } from '../src/index.js';
import { startTransform, type LiveTransform } from './harness.js';

/** What the scripted endpoint answers next. */
let answer: (req: IncomingMessage, res: ServerResponse) => void;
const received: { method: string; path: string; body: string }[] = [];
let endpoint: string;
let server: ReturnType<typeof createServer>;
const live: LiveTransform[] = [];

const ENV = { CLIENT_ID: 'scripted-client', CLIENT_SECRET: 'scripted-secret-4c3b2a19' };

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', body });
      answer(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/token`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
afterEach(async () => {
  for (const t of live.splice(0)) await t.close();
  received.length = 0;
});

const json = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

function entry(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    grant: 'client_credentials',
    client_id: { type: 'env', var: 'CLIENT_ID' },
    client_secret: { type: 'env', var: 'CLIENT_SECRET' },
    token_endpoint: endpoint,
    rules: [{ host: 'api.example.test' }],
    ...extra,
  };
}

async function start(entries: Record<string, unknown>[], env: Record<string, string> = ENV): Promise<LiveTransform> {
  const t = await startTransform({ tokens: entries }, { env });
  live.push(t);
  return t;
}

describe('token endpoint stub', () => {
  it('answers a token request to the endpoint itself, any method, before the rules, without calling it', async () => {
    const t = await start([entry()]);
    for (const method of ['POST', 'GET', 'PUT']) {
      const result = await t.run({ method, host: '127.0.0.1', port: Number(new URL(endpoint).port), path: '/oauth2/token', body: 'grant_type=client_credentials' });
      expect(result.decision).toEqual({
        action: 'respond',
        status: 200,
        body: STUB_BODY,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
        reason: 'oauth2_token_endpoint',
      });
      expect(result.audit).toMatchObject({ action: 'stub', stubbed_by: 'oauth_token' });
      expect(result.annotations).toEqual({ stubbed: 'oauth2_token_endpoint' });
    }
    expect(STUB_BODY).toBe('{"access_token":"iron-proxy-stub-token","expires_in":3600,"token_type":"Bearer"}');
    // Any port of that host, but only that exact path.
    expect((await t.run({ scheme: 'https', host: '127.0.0.1', path: '/oauth2/token' })).decision.action).toBe('respond');
    expect((await t.run({ host: '127.0.0.1', path: '/oauth2/token/' })).decision.action).toBe('continue');
    expect((await t.run({ host: '127.0.0.2', path: '/oauth2/token' })).decision.action).toBe('continue');
    expect(received).toHaveLength(0);
  });
});

describe('failures', () => {
  it.each([
    ['a 4xx OAuth error body gives its error code', json(400, { error: 'invalid_scope', error_description: 'no such scope' }), 'invalid_scope'],
    ['a 5xx gives token_endpoint_http_<n>', json(500, { error: 'server_error' }), 'token_endpoint_http_500'],
    ['a redirect is not followed', (_q: IncomingMessage, s: ServerResponse) => s.writeHead(302, { location: 'https://elsewhere.test/' }).end(), 'token_endpoint_http_302'],
    ['a 200 without an access token gives token_endpoint_error', json(200, { token_type: 'Bearer' }), 'token_endpoint_error'],
    ['a 200 that is not JSON gives token_endpoint_error', (_q: IncomingMessage, s: ServerResponse) => s.writeHead(200, { 'content-type': 'text/html' }).end('<html>'), 'token_endpoint_error'],
    [
      'an answer beyond the size bound gives token_endpoint_error',
      (_q: IncomingMessage, s: ServerResponse) => s.writeHead(200, { 'content-type': 'application/json' }).end(`{"access_token":"${'a'.repeat(MAX_TOKEN_RESPONSE_BYTES)}","token_type":"Bearer"}`),
      'token_endpoint_error',
    ],
  ])('%s', async (_name, handler, reason) => {
    answer = handler;
    const t = await start([entry()]);
    const result = await t.run({ scheme: 'https', host: 'api.example.test' });
    expect(result.annotations).toEqual({ grant: 'client_credentials', error: reason, skipped: 'token_unavailable' });
    expect(result.request.headers.has('authorization')).toBe(false);
    expect(received).toHaveLength(1);
  });

  it('an unreachable endpoint is mint_failed; with require, 502 and the upstream is not contacted', async () => {
    const t = await start([entry({ token_endpoint: 'http://127.0.0.1:1/token', require: true })]);
    const result = await t.run({ scheme: 'https', host: 'api.example.test' });
    expect(result.decision).toMatchObject({ action: 'reject', status: 502, contentType: 'application/json; charset=utf-8' });
    expect(JSON.parse((result.decision as { message: string }).message)).toEqual({ error: 'oauth_token failed to mint an access token', grant: 'client_credentials' });
    expect(result.annotations).toEqual({ grant: 'client_credentials', error: 'mint_failed', rejected: 'token_unavailable' });
  });

  it('a credential whose source is unavailable is mint_failed and names the source; no call is made', async () => {
    const t = await start([entry()], { CLIENT_ID: ENV.CLIENT_ID });
    const result = await t.run({ scheme: 'https', host: 'api.example.test' });
    expect(result.annotations).toEqual({ grant: 'client_credentials', credential_unavailable: 'CLIENT_SECRET', error: 'mint_failed', skipped: 'token_unavailable' });
    expect(received).toHaveLength(0);
  });

  it('a request passed through as TLS cannot carry a token: skipped, or refused with require', async () => {
    const t = await start([entry(), entry({ require: true, rules: [{ host: 'strict.example.test' }] })]);
    const open = await t.run({ scheme: 'https', host: 'api.example.test', mode: 'sni-only', method: '', path: '' });
    expect(open.annotations).toEqual({ grant: 'client_credentials', error: 'tls_passthrough', skipped: 'token_unavailable' });
    const strict = await t.run({ scheme: 'https', host: 'strict.example.test', mode: 'sni-only', method: '', path: '' });
    expect(strict.decision).toMatchObject({ action: 'reject', status: 502 });
    expect(received).toHaveLength(0);
  });
});

describe('injection', () => {
  it('the first entry whose rules match is used; header and value_prefix are honoured (canonical casing)', async () => {
    answer = json(200, { access_token: 'scripted-access-token-1', token_type: 'Bearer', expires_in: 300 });
    const t = await start([
      entry({ header: 'x-api-token', value_prefix: '', rules: [{ host: 'api.example.test', paths: ['/v2/*'] }] }),
      entry({ grant: 'client_credentials', rules: [{ host: 'api.example.test' }], value_prefix: 'Token ' }),
    ]);
    const v2 = await t.run({ scheme: 'https', host: 'api.example.test', path: '/v2/items', headers: { 'X-API-TOKEN': 'workload' } });
    expect(v2.request.headers.getAll('x-api-token')).toEqual(['scripted-access-token-1']);
    expect([...v2.request.headers].find(([name]) => name.toLowerCase() === 'x-api-token')?.[0]).toBe('X-Api-Token');
    expect(v2.annotations).toEqual({ grant: 'client_credentials', injected: ['header:X-Api-Token'] });
    const v1 = await t.run({ scheme: 'https', host: 'api.example.test', path: '/v1/items' });
    expect(v1.request.headers.get('authorization')).toBe('Token scripted-access-token-1');
    expect(received.map((r) => new URLSearchParams(r.body).get('client_secret'))).toEqual([ENV.CLIENT_SECRET, ENV.CLIENT_SECRET]);
  });

  it('a token without expires_in is kept; an ID token from another issuer is ignored', async () => {
    const { privateKey } = await import('node:crypto').then((c) => c.generateKeyPairSync('rsa', { modulusLength: 2048 }));
    const idToken = await new SignJWT({ sub: 'someone' })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer('https://accounts.other-issuer.test')
      .setAudience('scripted-client')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(privateKey);
    answer = json(200, { access_token: 'scripted-access-token-2', token_type: 'bearer', id_token: idToken, scope: 'a b' });
    const t = await start([entry({ audience: 'https://api.example.test/', scopes: ['a', 'b'] })]);
    for (let i = 0; i < 3; i++) expect((await t.run({ scheme: 'https', host: 'api.example.test' })).request.headers.get('authorization')).toBe('Bearer scripted-access-token-2');
    expect(received).toHaveLength(1);
    const form = new URLSearchParams(received[0]!.body);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'client_credentials',
      client_id: ENV.CLIENT_ID,
      client_secret: ENV.CLIENT_SECRET,
      scope: 'a b',
      audience: 'https://api.example.test/',
    });
  });

  it('runs through runTransform as any transform does', async () => {
    answer = json(200, { access_token: 'scripted-access-token-3', token_type: 'Bearer', expires_in: 60 });
    const result = await runTransform(oauthTokenTransform, { tokens: [entry()] }, { scheme: 'https', host: 'api.example.test' }, {
      env: ENV,
      transformEnv: { http: (input, init) => fetch(input, init) },
    });
    expect(result.request.headers.get('authorization')).toBe('Bearer scripted-access-token-3');
  });
});
