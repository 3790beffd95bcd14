/**
 * iron-proxy's documented `oauth_token` configs (the configuration reference, the OAuth2 token
 * page's grant sections and vendor recipes, the AlphaSense recipe with its sibling `secrets`
 * transform) load with `proxy validate` (also with `--check-secrets`, no value shown) and run:
 * the proxy starts on them, and a workload's own token call to each documented token endpoint
 * gets the stub. Changes for the test are marked "test:": listen address, and `aws_sm` sources
 * read from env vars until the AWS secret sources ship.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, runCli, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

const STUB_BODY = '{"access_token":"iron-proxy-stub-token","expires_in":3600,"token_type":"Bearer"}';
const PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

// test: each aws_sm secret becomes an env var holding the same JSON document.
const GSUITE = { refresh_token: 'docs-gsuite-refresh-token-1', client_id: 'docs-gsuite-client-id', client_secret: 'docs-gsuite-client-secret' };
const ENV: Record<string, string> = {
  GSUITE_OAUTH: JSON.stringify(GSUITE),
  OAUTH_SECRET: JSON.stringify({ client_id: 'docs-cc-client-id', client_secret: 'docs-cc-client-secret' }),
  DOCUSIGN_INTEGRATION_KEY: 'docs-docusign-integration-key',
  DOCUSIGN_USER_GUID: 'docs-docusign-user-guid',
  DOCUSIGN_KEY_ID: 'docs-docusign-key-id',
  DOCUSIGN_PRIVATE_KEY: PEM,
  SALESFORCE_CONSUMER_KEY: 'docs-salesforce-consumer-key',
  SALESFORCE_USERNAME: 'docs-salesforce-user@example.com',
  SALESFORCE_PRIVATE_KEY: PEM,
  BOX_CLIENT_ID: 'docs-box-client-id',
  BOX_ENTERPRISE_ID: 'docs-box-enterprise-id',
  BOX_PRIVATE_KEY: PEM,
  ZOOM_ACCOUNT_ID: 'docs-zoom-account-id',
  ZOOM_CLIENT_ID: 'docs-zoom-client-id',
  ZOOM_PRIVATE_KEY: PEM,
  API_CLIENT_ID: 'docs-api-client-id',
  API_CLIENT_SECRET: 'docs-api-client-secret',
  API_USERNAME: 'docs-api-username',
  API_PASSWORD: 'docs-api-password-123',
  API_KEY: 'docs-api-key-456789',
  ALPHASENSE_USERNAME: 'docs-alphasense-user',
  ALPHASENSE_PASSWORD: 'docs-alphasense-password',
  ALPHASENSE_CLIENT_ID: 'docs-alphasense-client-id',
  ALPHASENSE_CLIENT_SECRET: 'docs-alphasense-client-secret',
  ALPHASENSE_API_KEY: 'docs-alphasense-api-key',
};

const gsuite = (key: string): string => `{ type: env, var: GSUITE_OAUTH, json_key: "${key}" }   # test: was aws_sm gsuite-oauth`;

const DOCUMENTED = `
proxy:
  http_listen: "127.0.0.1:0"   # test: was the default listen address
transforms:
  - name: oauth_token
    config:
      tokens:
        # The configuration reference's example, which is also the Gmail recipe.
        - grant: refresh_token
          refresh_token: ${gsuite('refresh_token')}
          client_id: ${gsuite('client_id')}
          client_secret: ${gsuite('client_secret')}
          token_endpoint: "https://oauth2.googleapis.com/token"
          scopes:
            - "https://www.googleapis.com/auth/gmail.readonly"
          rules:
            - host: "gmail.googleapis.com"
        - grant: jwt_bearer
          issuer: {type: env, var: DOCUSIGN_INTEGRATION_KEY}
          subject: {type: env, var: DOCUSIGN_USER_GUID}
          private_key: { type: env, var: DOCUSIGN_PRIVATE_KEY }   # test: was aws_sm docusign-private-key
          private_key_id: {type: env, var: DOCUSIGN_KEY_ID}
          audience: "account.docusign.com"
          token_endpoint: "https://account.docusign.com/oauth/token"
          scopes: ["signature", "impersonation"]
          rules:
            - host: "*.docusign.net"
        # The OAuth2 token page: its opening example and the client_credentials section.
        - grant: client_credentials
          client_id: {type: env, var: API_CLIENT_ID}
          client_secret: {type: env, var: API_CLIENT_SECRET}
          token_endpoint: "https://login.example.com/oauth2/token"
          rules:
            - host: "api.example.com"
        - grant: client_credentials
          client_id: { type: env, var: OAUTH_SECRET, json_key: "client_id" }           # test: was aws_sm oauth
          client_secret: { type: env, var: OAUTH_SECRET, json_key: "client_secret" }   # test: was aws_sm oauth
          token_endpoint: "https://login.example.com/oauth2/token"
          rules:
            - host: "api.example.com"
        # The password section, and the token endpoint headers section.
        - grant: password
          username: {type: env, var: API_USERNAME}
          password: {type: env, var: API_PASSWORD}
          client_id: {type: env, var: API_CLIENT_ID}
          client_secret: {type: env, var: API_CLIENT_SECRET}
          token_endpoint: "https://api.example.com/token"
          rules:
            - host: "api.example.com"
        - grant: password
          username: {type: env, var: API_USERNAME}
          password: {type: env, var: API_PASSWORD}
          client_id: {type: env, var: API_CLIENT_ID}
          token_endpoint: "https://api.example.com/token"
          token_endpoint_headers:
            x-api-key: {type: env, var: API_KEY}
          rules:
            - host: "api.example.com"
        # Vendor recipes: Salesforce, Box, Zoom Server-to-Server.
        - grant: jwt_bearer
          issuer: {type: env, var: SALESFORCE_CONSUMER_KEY}
          subject: {type: env, var: SALESFORCE_USERNAME}
          private_key: { type: env, var: SALESFORCE_PRIVATE_KEY }   # test: was aws_sm salesforce-private-key
          audience: "https://login.salesforce.com"
          token_endpoint: "https://login.salesforce.com/services/oauth2/token"
          rules:
            - host: "*.my.salesforce.com"
            - host: "*.salesforce.com"
        - grant: jwt_bearer
          issuer: {type: env, var: BOX_CLIENT_ID}
          subject: {type: env, var: BOX_ENTERPRISE_ID}
          private_key: { type: env, var: BOX_PRIVATE_KEY }   # test: was aws_sm box-private-key
          audience: "https://api.box.com/oauth2/token"
          token_endpoint: "https://api.box.com/oauth2/token"
          rules:
            - host: "api.box.com"
            - host: "upload.box.com"
        - grant: jwt_bearer
          issuer: {type: env, var: ZOOM_ACCOUNT_ID}
          subject: {type: env, var: ZOOM_CLIENT_ID}
          private_key: { type: env, var: ZOOM_PRIVATE_KEY }   # test: was aws_sm zoom-private-key
          audience: "zoom.us"
          token_endpoint: "https://zoom.us/oauth/token"
          rules:
            - host: "api.zoom.us"
  # The AlphaSense recipe, as written.
  - name: oauth_token
    config:
      tokens:
        - grant: password
          username: {type: env, var: ALPHASENSE_USERNAME}
          password: {type: env, var: ALPHASENSE_PASSWORD}
          client_id: {type: env, var: ALPHASENSE_CLIENT_ID}
          client_secret: {type: env, var: ALPHASENSE_CLIENT_SECRET}
          token_endpoint: "https://api.alpha-sense.com/token"
          token_endpoint_headers:
            x-api-key: {type: env, var: ALPHASENSE_API_KEY}
          rules:
            - host: "api.alpha-sense.com"
              paths: ["/gql", "/gql/*"]
  - name: secrets
    config:
      secrets:
        - source: {type: env, var: ALPHASENSE_API_KEY}
          inject: {header: "x-api-key"}
          rules:
            - host: "api.alpha-sense.com"
              paths: ["/gql", "/gql/*"]
        - source: {type: env, var: ALPHASENSE_CLIENT_ID}
          inject: {header: "clientId"}
          rules:
            - host: "api.alpha-sense.com"
              paths: ["/gql", "/gql/*"]
`;

const ENDPOINTS = [
  'oauth2.googleapis.com/token',
  'account.docusign.com/oauth/token',
  'login.example.com/oauth2/token',
  'api.example.com/token',
  'login.salesforce.com/services/oauth2/token',
  'api.box.com/oauth2/token',
  'zoom.us/oauth/token',
  'api.alpha-sense.com/token',
];

let dir: string;
let proxy: ProxyProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proxy-oauth-docs-'));
  await writeFile(join(dir, 'documented.yaml'), DOCUMENTED);
  proxy = await startProxyProcess(DOCUMENTED, { env: ENV });
});

afterAll(async () => {
  await proxy?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The credential values, the key line by line, and the JSON fields inside the documents. */
function secretValues(): string[] {
  const pem = PEM.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
  const fields = [...Object.values(GSUITE), 'docs-cc-client-id', 'docs-cc-client-secret'];
  return [...Object.entries(ENV).filter(([name]) => !name.endsWith('_PRIVATE_KEY')).map(([, v]) => v), ...pem, ...fields];
}

describe("iron-proxy's documented oauth_token configs", () => {
  it('pass proxy validate, with --check-secrets too, and the output shows no secret', async () => {
    const plain = await runCli(['validate', '--config', join(dir, 'documented.yaml')], { PATH: process.env.PATH ?? '' });
    expect(plain.stderr).not.toMatch(/error/i);
    expect(plain.stdout).toContain('documented.yaml: valid (3 transforms)');
    const checked = await runCli(['validate', '--config', join(dir, 'documented.yaml'), '--check-secrets'], { PATH: process.env.PATH ?? '', ...ENV });
    expect(checked.code).toBe(0);
    for (const value of secretValues()) expect((plain.stdout + plain.stderr + checked.stdout + checked.stderr).includes(value)).toBe(false);
  });

  it('run: every documented token endpoint answers a workload token call with the stub', async () => {
    for (const endpoint of ENDPOINTS) {
      const r = await curl(['-x', `http://127.0.0.1:${proxy.port()}`, '-X', 'POST', '-d', 'grant_type=client_credentials', `http://${endpoint}`]);
      expect(r.stdout, endpoint).toBe(STUB_BODY);
    }
    await proxy.waitForLine(() => proxy.audits().filter((a) => a.action === 'stub').length === ENDPOINTS.length);
    expect(proxy.audits().every((a) => a.stubbed_by === 'oauth_token')).toBe(true);
    const output = proxy.stdout() + proxy.stderr();
    for (const value of secretValues()) expect(output.includes(value)).toBe(false);
  });
});
