/**
 * `gcp_auth` end to end through the built binary, with an unmodified google-auth-library as the
 * workload (a child process with `HTTPS_PROXY` at the tunnel listener and `GCE_METADATA_HOST`
 * naming a metadata-server-shaped target): its token call to the metadata server gets the stub, its
 * API call leaves with a token the proxy minted at the fake Google token endpoint, which the API
 * verifies. A refused key ends in 403 `token_unavailable` with the API not contacted. Every
 * byte the proxy wrote is searched for the keys and tokens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_METADATA_ACCESS_TOKEN, startDnsServer, startFakeGceMetadata, startFakeGoogleOAuth, startProtectedApi, type DnsTestServer, type FakeGceMetadata, type FakeGoogleOAuth, type FakeServiceAccount, type ProtectedApi } from '@proxy/test-kit';
import { runCli, runCommand, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
let fake: FakeGoogleOAuth;
let api: ProtectedApi;
let dns: DnsTestServer;
let dir: string;
let proxy: ProxyProcess;
let real: FakeServiceAccount;
let revoked: FakeServiceAccount;
let metadata: FakeGceMetadata;

beforeAll(async () => {
  fake = await startFakeGoogleOAuth();
  real = fake.createServiceAccount('proxy-sa@fake-project.iam.gserviceaccount.com');
  revoked = fake.createServiceAccount('revoked-sa@fake-project.iam.gserviceaccount.com');
  fake.revoke(revoked.email);
  metadata = await startFakeGceMetadata();
  api = await startProtectedApi((token) => fake.verifyAccessToken(token));
  const local = { A: ['127.0.0.1'] };
  dns = await startDnsServer({ records: { 'storage.googleapis.com': local, 'bigquery.googleapis.com': local, 'oauth2.googleapis.com': local, 'metadata.google.internal': local } });
  dir = await mkdtemp(join(tmpdir(), 'proxy-gcp-e2e-'));
  const ca = await runCli(['ca', 'generate', '--out', dir]);
  expect(ca.code).toBe(0);
  proxy = await startProxyProcess(
    `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"   # test: the API names resolve to the local API
proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []                # test: the API and the token endpoint are on loopback
tls:
  mode: mitm
  ca_cert: "ca.crt"
  ca_key: "ca.key"
log:
  level: debug
transforms:
  - name: gcp_auth
    config:
      keyfile_path: "sa.json"
      scopes: ["${SCOPE}"]
      rules: [{ host: "storage.googleapis.com" }]
  - name: gcp_auth
    config:
      keyfile: { type: env, var: REVOKED_KEY }
      scopes: ["${SCOPE}"]
      rules: [{ host: "bigquery.googleapis.com" }]
`,
    { dir, env: { REVOKED_KEY: revoked.keyfile }, files: { 'sa.json': real.keyfile } },
  );
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([fake?.close(), api?.close(), dns?.close(), metadata?.close()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/**
 * Runs google-auth-library in a child process, one request to `url`, with Application Default
 * Credentials found on the metadata server (`GCE_METADATA_HOST`, reached through the proxy).
 */
async function workload(url: string): Promise<{ status: number; data: unknown }> {
  const script = `
const { GoogleAuth } = require(process.env.GAL_PATH);
(async () => {
  const auth = new GoogleAuth({ scopes: [process.env.SCOPE] });
  const client = await auth.getClient();
  const res = await client.request({ url: process.env.API_URL, validateStatus: () => true, retry: false });
  process.stdout.write(JSON.stringify({ status: res.status, data: res.data }));
})().catch((error) => { console.error(error); process.exit(1); });
`;
  const r = await runCommand(process.execPath, ['-e', script], {
    PATH: process.env.PATH ?? '',
    GAL_PATH: createRequire(import.meta.url).resolve('google-auth-library'),
    HOME: dir,
    GCE_METADATA_HOST: `metadata.google.internal:${new URL(metadata.url).port}`,
    HTTPS_PROXY: `http://127.0.0.1:${proxy.port('tunnel')}`,
    HTTP_PROXY: `http://127.0.0.1:${proxy.port('tunnel')}`,
    NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt'),
    SCOPE,
    API_URL: url,
  });
  if (r.code !== 0) throw new Error(`workload failed: ${r.stderr.slice(0, 300)}\n${proxy.stdout().split('\n').filter((l) => l.includes('oauth2')).join('\n')}`);
  return JSON.parse(r.stdout) as { status: number; data: unknown };
}

const gcpTrace = (record: LogLine): Record<string, unknown> | undefined =>
  (record.request_transforms as { name: string; annotations?: Record<string, unknown> }[] | undefined)?.find((t) => t.name === 'gcp_auth' && t.annotations !== undefined)?.annotations;

describe('gcp_auth through the proxy binary, google-auth-library as the workload', () => {
  it("stubs the workload's token call and swaps its placeholder for a token the API accepts", async () => {
    const out = await workload(`http://storage.googleapis.com:${api.port}/storage/v1/b`);
    expect(out.status).toBe(200);
    expect(out.data).toMatchObject({ claims: { email: real.email, scope: SCOPE } });
    const stub = await proxy.waitForAudit((l) => l.host === 'metadata.google.internal' && String(l.path).endsWith('/token'));
    expect(stub.action).toBe('stub');
    // The metadata target answered the SDK's probe, never a token request; its token never left it.
    expect(metadata.requests.some((r) => r.url.includes('/token'))).toBe(false);
    expect(JSON.stringify(api.requests)).not.toContain(FAKE_METADATA_ACCESS_TOKEN);
    const call = await proxy.waitForAudit((l) => l.path === '/storage/v1/b');
    expect(gcpTrace(call)).toEqual({ service_account: real.email, injected: ['header:Authorization'] });
    expect(fake.calls.filter((c) => c.error === undefined).map((c) => c.email)).toEqual([real.email]);
  });

  it('a key the token endpoint refuses: 403 token_unavailable, the API is not contacted', async () => {
    const before = api.requests.length;
    const out = await workload(`http://bigquery.googleapis.com:${api.port}/bigquery/v2/projects`);
    expect(out.status).toBe(403);
    expect(api.requests.length).toBe(before);
    const record = await proxy.waitForAudit((l) => l.path === '/bigquery/v2/projects');
    expect(record).toMatchObject({ action: 'reject', rejected_by: 'gcp_auth' });
    expect(gcpTrace(record)).toMatchObject({ error: 'invalid_grant', rejected: 'token_unavailable' });
  });

  it('no key, assertion or minted token appears in anything the proxy wrote', () => {
    const written = proxy.stdout() + proxy.stderr();
    const secrets = [real, revoked].map((a) => (JSON.parse(a.keyfile) as { private_key: string }).private_key.split('\n')[5]!);
    const tokens = api.requests.map((r) => r.authorization?.replace('Bearer ', '') ?? '').filter((t) => t.length > 0);
    expect(tokens.length).toBeGreaterThan(0);
    for (const value of [...secrets, ...tokens]) expect(written).not.toContain(value);
  });
});
