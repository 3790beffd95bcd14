/**
 * `oauth_token` end to end through the built binary: each grant against a real authorization
 * server (oidc-provider for client_credentials and refresh_token, oauth2-mock-server with
 * credential checks for password and jwt_bearer), the token checked by an API that verifies it
 * with jose against the server's JWKS; the stub answering curl's and an SDK's own token call;
 * a token endpoint that is down (502 JSON with require, forwarded untouched without); a refresh
 * after the minting request ended, and a mint whose client went away; then every byte the
 * proxy wrote is searched for every secret and every minted token.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startEchoServer,
  requireCommand,
  startOAuthMockServer,
  startOidcTestProvider,
  startProtectedApi,
  type EchoServer,
  type OAuthMockServer,
  type OidcTestProvider,
  type ProtectedApi,
} from '@proxy/test-kit';
import { curl, type LogLine, type ProxyProcess, startProxyProcess } from './support/proxy-process.js';

const STUB_BODY = '{"access_token":"iron-proxy-stub-token","expires_in":3600,"token_type":"Bearer"}';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

const SECRETS: Record<string, string> = {
  CC_CLIENT_ID: 'e2e-cc-client',
  CC_CLIENT_SECRET: 'e2e-cc-secret-9f8e7d6c5b4a',
  RT_CLIENT_ID: 'e2e-rt-client',
  RT_CLIENT_SECRET: 'e2e-rt-secret-1a2b3c4d5e6f',
  RT_REFRESH_TOKEN: '', // issued in beforeAll
  PW_USERNAME: 'e2e-service-user',
  PW_PASSWORD: 'e2e-password-0a9b8c7d6e',
  PW_CLIENT_ID: 'e2e-pw-client',
  PW_CLIENT_SECRET: 'e2e-pw-secret-5f4e3d2c1b',
  PW_API_KEY: 'e2e-api-key-77ee66dd55',
  JWT_ISSUER: 'e2e-integration-key',
  JWT_SUBJECT: 'e2e-user-guid',
  JWT_PRIVATE_KEY: PEM,
  DOWN_CLIENT_ID: 'e2e-down-client',
  DOWN_CLIENT_SECRET: 'e2e-down-secret-3c2b1a',
};
const JWT_AUDIENCE = 'account.e2e.test';

let provider: OidcTestProvider;
let mock: OAuthMockServer;
let oidcApi: ProtectedApi;
let mockApi: ProtectedApi;
let echo: EchoServer;
let downEndpoint: string;
let proxy: ProxyProcess;
let via: string[];

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const configYaml = (): string => `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
log:
  level: debug
transforms:
  - name: oauth_token
    config:
      tokens:
        - grant: client_credentials
          client_id: { type: env, var: CC_CLIENT_ID }
          client_secret: { type: env, var: CC_CLIENT_SECRET }
          token_endpoint: "${provider.tokenEndpoint}"
          scopes: ["api:read"]
          rules: [{ host: "127.0.0.1:${oidcApi.port}", paths: ["/cc/*"] }]
        - grant: refresh_token
          refresh_token: { type: env, var: RT_REFRESH_TOKEN }
          client_id: { type: env, var: RT_CLIENT_ID }
          client_secret: { type: env, var: RT_CLIENT_SECRET }
          token_endpoint: "${provider.tokenEndpoint}"
          rules: [{ host: "127.0.0.1:${oidcApi.port}", paths: ["/rt/*"] }]
        - grant: password
          username: { type: env, var: PW_USERNAME }
          password: { type: env, var: PW_PASSWORD }
          client_id: { type: env, var: PW_CLIENT_ID }
          client_secret: { type: env, var: PW_CLIENT_SECRET }
          token_endpoint: "${mock.tokenEndpoint}"
          token_endpoint_headers:
            x-api-key: { type: env, var: PW_API_KEY }
          rules: [{ host: "127.0.0.1:${mockApi.port}", paths: ["/pw/*"] }]
        - grant: jwt_bearer
          issuer: { type: env, var: JWT_ISSUER }
          subject: { type: env, var: JWT_SUBJECT }
          private_key: { type: env, var: JWT_PRIVATE_KEY }
          audience: "${JWT_AUDIENCE}"
          token_endpoint: "${mock.tokenEndpoint}"
          token_endpoint_headers:
            x-api-key: { type: env, var: PW_API_KEY }
          rules: [{ host: "127.0.0.1:${mockApi.port}", paths: ["/jwt/*"] }]
        - grant: client_credentials
          client_id: { type: env, var: DOWN_CLIENT_ID }
          client_secret: { type: env, var: DOWN_CLIENT_SECRET }
          token_endpoint: "${downEndpoint}"
          require: true
          rules: [{ host: "127.0.0.1:${echo.port}", paths: ["/strict/*"] }]
        - grant: client_credentials
          client_id: { type: env, var: DOWN_CLIENT_ID }
          client_secret: { type: env, var: DOWN_CLIENT_SECRET }
          token_endpoint: "${downEndpoint}"
          rules: [{ host: "127.0.0.1:${echo.port}" }]
`;

beforeAll(async () => {
  provider = await startOidcTestProvider({ accessTokenTtlSeconds: 4 });
  await provider.setClient(SECRETS.CC_CLIENT_ID!, SECRETS.CC_CLIENT_SECRET);
  await provider.setClient(SECRETS.RT_CLIENT_ID!, SECRETS.RT_CLIENT_SECRET);
  SECRETS.RT_REFRESH_TOKEN = await provider.issueRefreshToken(SECRETS.RT_CLIENT_ID!);
  mock = await startOAuthMockServer({
    clients: new Map([[SECRETS.PW_CLIENT_ID!, SECRETS.PW_CLIENT_SECRET!]]),
    users: new Map([[SECRETS.PW_USERNAME!, SECRETS.PW_PASSWORD!]]),
    assertions: { publicKey, audience: JWT_AUDIENCE, issuer: SECRETS.JWT_ISSUER! },
    requiredHeaders: new Map([['x-api-key', SECRETS.PW_API_KEY!]]),
  });
  oidcApi = await startProtectedApi((token) => provider.verify(token));
  mockApi = await startProtectedApi((token) => mock.verify(token));
  echo = await startEchoServer();
  downEndpoint = `http://127.0.0.1:${await closedPort()}/oauth/token`;
  proxy = await startProxyProcess(configYaml(), { env: SECRETS });
  via = ['-x', `http://127.0.0.1:${proxy.port()}`];
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([provider?.close(), mock?.close(), oidcApi?.close(), mockApi?.close(), echo?.close()]);
});

/** GET through the proxy; the status and the parsed body. */
async function get(url: string, headers: string[] = []): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await curl([...via, ...headers.flatMap((h) => ['-H', h]), '-w', '\n%{http_code}', url]);
  const lines = r.stdout.split('\n');
  const status = Number(lines.pop());
  const text = lines.join('\n');
  return { status, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

const oauthTrace = (record: LogLine): Record<string, unknown> | undefined =>
  (record.request_transforms as { name: string; annotations?: Record<string, unknown> }[] | undefined)?.find((t) => t.name === 'oauth_token')?.annotations;

describe('oauth_token through the proxy binary', () => {
  it('refresh_token: a mint whose client went away still completes and serves the next request', async () => {
    const release = provider.hold();
    const gone = await curl([...via, '--max-time', '1', `${oidcApi.url}/rt/items`]);
    expect(gone.code).not.toBe(0);
    release();
    const next = await get(`${oidcApi.url}/rt/items`);
    expect(next.status).toBe(200);
    expect(next.body.claims).toMatchObject({ sub: 'user-1', aud: provider.resource });
    expect(provider.calls.filter((c) => c.grantType === 'refresh_token')).toEqual([{ grantType: 'refresh_token', clientId: SECRETS.RT_CLIENT_ID, error: undefined }]);
  });

  it('client_credentials: the API accepts the injected token; after the minting request ended and the token neared expiry, a new one is minted', async () => {
    const first = await get(`${oidcApi.url}/cc/items`, ['Authorization: Bearer iron-proxy-stub-token']);
    expect(first.status).toBe(200);
    expect(first.body.claims).toMatchObject({ client_id: SECRETS.CC_CLIENT_ID, scope: 'api:read' });
    const record = await proxy.waitForAudit((l) => l.path === '/cc/items');
    expect(oauthTrace(record)).toEqual({ grant: 'client_credentials', injected: ['header:Authorization'] });

    // Tokens live 4 s and are replaced 2 s before expiry.
    await new Promise((r) => setTimeout(r, 2300));
    const second = await get(`${oidcApi.url}/cc/items`);
    expect(second.status).toBe(200);
    expect((second.body.claims as { jti: string }).jti).not.toBe((first.body.claims as { jti: string }).jti);
    expect(provider.calls.filter((c) => c.grantType === 'client_credentials' && c.error === undefined)).toHaveLength(2);
  });

  it('password and jwt_bearer (the server wants an API key header on token calls): the API accepts the tokens', async () => {
    const pw = await get(`${mockApi.url}/pw/items`);
    expect(pw.status).toBe(200);
    expect(pw.body.claims).toMatchObject({ sub: SECRETS.PW_USERNAME });
    const jwt = await get(`${mockApi.url}/jwt/items`);
    expect(jwt.status).toBe(200);
    expect(jwt.body.claims).toMatchObject({ sub: SECRETS.JWT_SUBJECT });
    expect(mock.calls.map((c) => [c.grantType, c.error])).toEqual([
      ['password', undefined],
      ['urn:ietf:params:oauth:grant-type:jwt-bearer', undefined],
    ]);
  });

  it("the stub answers curl's and an SDK's own token call; the server sees neither; the stub token is swapped on the API call", async () => {
    const before = provider.calls.length;
    const viaCurl = await curl([...via, '-X', 'POST', '-d', 'grant_type=client_credentials&client_id=workload&client_secret=placeholder', provider.tokenEndpoint]);
    expect(viaCurl.stdout).toBe(STUB_BODY);
    const record = await proxy.waitForAudit((l) => l.path === '/token' && l.method === 'POST');
    expect(record).toMatchObject({ action: 'stub', status_code: 200, stubbed_by: 'oauth_token' });
    expect(oauthTrace(record)).toEqual({ stubbed: 'oauth2_token_endpoint' });

    // An OAuth client library doing its own client_credentials call through the proxy.
    const agent = new ProxyAgent(`http://127.0.0.1:${proxy.port()}`);
    try {
      const as = { issuer: provider.issuer, token_endpoint: provider.tokenEndpoint };
      const client = { client_id: 'workload' };
      const options = {
        [oauth.customFetch]: (url: string, init: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>,
        [oauth.allowInsecureRequests]: true,
      };
      const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost('placeholder-secret'), new URLSearchParams(), options);
      const tokens = await oauth.processClientCredentialsResponse(as, client, response);
      expect(tokens.access_token).toBe('iron-proxy-stub-token');
      const api = await undiciFetch(`${oidcApi.url}/cc/sdk`, { dispatcher: agent, headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(api.status).toBe(200);
      await api.arrayBuffer();
    } finally {
      await agent.close();
    }
    expect(provider.calls.filter((c) => c.clientId === 'workload')).toEqual([]);
    expect(provider.calls.length - before).toBeLessThanOrEqual(1);
  });

  it('token endpoint down: require gives 502 JSON and the upstream is not contacted; otherwise the request goes untouched', async () => {
    const strict = await get(`${echo.url}/strict/x`, ['Authorization: Bearer workload-own']);
    expect(strict.status).toBe(502);
    expect(strict.body).toEqual({ error: 'oauth_token failed to mint an access token', grant: 'client_credentials' });
    const strictRecord = await proxy.waitForAudit((l) => l.path === '/strict/x');
    expect(strictRecord).toMatchObject({ action: 'reject', status_code: 502, rejected_by: 'oauth_token' });
    expect(oauthTrace(strictRecord)).toEqual({ grant: 'client_credentials', error: 'mint_failed', rejected: 'token_unavailable' });
    expect(echo.requests.filter((r) => r.path === '/strict/x')).toEqual([]);

    const lenient = await get(`${echo.url}/lenient/x`, ['Authorization: Bearer workload-own']);
    expect(lenient.status).toBe(200);
    expect((lenient.body.headers as Record<string, string>).authorization).toBe('Bearer workload-own');
    const lenientRecord = await proxy.waitForAudit((l) => l.path === '/lenient/x');
    expect(lenientRecord).toMatchObject({ action: 'allow', status_code: 200 });
    expect(oauthTrace(lenientRecord)).toEqual({ grant: 'client_credentials', error: 'mint_failed', skipped: 'token_unavailable' });
  });

  it('no secret and no minted token appears in anything the proxy wrote', async () => {
    // What it greps was made by the curl requests above, skipped where curl is missing.
    requireCommand('curl');
    const minted = [...oidcApi.requests, ...mockApi.requests]
      .map((r) => /^Bearer (\S+)$/.exec(r.authorization ?? '')?.[1])
      .filter((t): t is string => t !== undefined && t !== 'iron-proxy-stub-token');
    expect(minted.length).toBeGreaterThanOrEqual(5);
    const output = proxy.stdout() + proxy.stderr();
    expect(output).toContain('"msg":"request"');
    const pemBody = PEM.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
    // Every credential value (identifiers included: the proxy redacts every value it fetches), the key line by line, every token.
    const values = [...Object.entries(SECRETS).filter(([name]) => name !== 'JWT_PRIVATE_KEY').map(([, v]) => v), ...pemBody, ...minted];
    for (const value of values) expect(output.includes(value), `a secret (${value.slice(0, 6)}...) in the proxy's output`).toBe(false);
  });
});
