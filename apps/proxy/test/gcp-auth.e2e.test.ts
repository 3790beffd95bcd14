/**
 * `gcp_auth` and `gcp_id_token` end to end through the built binary, with an unmodified
 * google-auth-library as the workload (a child process with `HTTPS_PROXY` at the tunnel
 * listener). Its credentials are either the metadata server (`GCE_METADATA_HOST` naming a
 * metadata-server-shaped target) or a placeholder keyfile whose token calls go to the real
 * `https://oauth2.googleapis.com/token` through CONNECT + MITM, where nothing listens: the stub
 * answers them. Its API calls leave with tokens the proxy minted at the fake Google token
 * endpoint (from a keyfile, or from Application Default Credentials), which the APIs verify. A
 * refused key ends in 403 `token_unavailable` with the API not contacted. Every byte the proxy
 * wrote is searched for the keys and tokens.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_METADATA_ACCESS_TOKEN, startDnsServer, startFakeGceMetadata, startFakeGoogleOAuth, startProtectedApi, type DnsTestServer, type FakeGceMetadata, type FakeGoogleOAuth, type FakeServiceAccount, type ProtectedApi } from '@proxy/test-kit';
import { runCli, runCommand, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const AUDIENCE = 'https://service-abc.a.run.app';
let fake: FakeGoogleOAuth;
let api: ProtectedApi;
let idApi: ProtectedApi;
/** The API of the ADC case: it accepts only the token of the proxy's own metadata server. */
let adcApi: ProtectedApi;
/** The metadata server of the machine the proxy runs on (its Application Default Credentials). */
let proxyMetadata: FakeGceMetadata;
let invoker: FakeServiceAccount;
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
  invoker = fake.createServiceAccount('invoker-sa@fake-project.iam.gserviceaccount.com');
  metadata = await startFakeGceMetadata();
  api = await startProtectedApi((token) => fake.verifyAccessToken(token));
  idApi = await startProtectedApi((token) => fake.verifyIdToken(token, AUDIENCE));
  proxyMetadata = await startFakeGceMetadata({ email: 'node-sa@fake-project.iam.gserviceaccount.com' });
  adcApi = await startProtectedApi((token) => (token === FAKE_METADATA_ACCESS_TOKEN ? Promise.resolve({ sub: 'metadata' }) : Promise.reject(new Error('not the metadata token'))));
  const local = { A: ['127.0.0.1'] };
  // oauth2.googleapis.com is not in the records: the workload's token calls must be answered by the stubs.
  const names = ['storage.googleapis.com', 'bigquery.googleapis.com', 'pubsub.googleapis.com', 'service-abc.a.run.app', 'service-def.a.run.app', 'metadata.google.internal'];
  dns = await startDnsServer({ records: Object.fromEntries(names.map((name) => [name, local])) });
  dir = await mkdtemp(join(tmpdir(), 'proxy-gcp-e2e-'));
  const ca = await runCli(['ca', 'generate', '--out', dir]);
  expect(ca.code).toBe(0);
  await writeFile(join(dir, 'placeholder.json'), placeholderKeyfile());
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
  - name: gcp_auth
    config:
      credentials_provider: { type: workload_identity }
      scopes: ["${SCOPE}"]
      rules: [{ host: "pubsub.googleapis.com" }]
  - name: gcp_id_token
    config:
      keyfile_path: "invoker.json"
      audience: "${AUDIENCE}"
      rules: [{ host: "service-abc.a.run.app" }]
  - name: gcp_id_token
    config:
      keyfile: { type: env, var: REVOKED_KEY }
      audience: "https://service-def.a.run.app"
      rules: [{ host: "service-def.a.run.app" }]
`,
    {
      dir,
      // Application Default Credentials of the proxy itself: the metadata server of "its" machine.
      // (A keyfile in GOOGLE_APPLICATION_CREDENTIALS would do too, but google-auth-library sends
      // its assertions to the real oauth2.googleapis.com whatever the keyfile's token_uri says.)
      env: { REVOKED_KEY: revoked.keyfile, GCE_METADATA_HOST: proxyMetadata.host, HOME: dir },
      files: { 'sa.json': real.keyfile, 'invoker.json': invoker.keyfile },
    },
  );
}, 60_000);

/** A keyfile as a workload would hold it: a key Google never saw, the real token endpoint. */
function placeholderKeyfile(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return JSON.stringify({
    type: 'service_account',
    project_id: 'placeholder-project',
    private_key_id: 'placeholder',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: 'workload@placeholder-project.iam.gserviceaccount.com',
    client_id: '1',
    token_uri: 'https://oauth2.googleapis.com/token',
  });
}

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([fake?.close(), api?.close(), idApi?.close(), adcApi?.close(), dns?.close(), metadata?.close(), proxyMetadata?.close()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** How the workload's google-auth-library finds its credentials, and what it asks for. */
type WorkloadCredentials = 'metadata' | 'placeholder-keyfile' | 'placeholder-keyfile-id-token';

/**
 * Runs google-auth-library in a child process, one request to `url`, with Application Default
 * Credentials found on the metadata server (`GCE_METADATA_HOST`, reached through the proxy) or in
 * the placeholder keyfile (`GOOGLE_APPLICATION_CREDENTIALS`); with `placeholder-keyfile-id-token`
 * it asks for an ID token for {@link AUDIENCE} instead of an access token.
 */
async function workload(url: string, credentials: WorkloadCredentials = 'metadata'): Promise<{ status: number; data: unknown }> {
  const script = `
const { GoogleAuth } = require(process.env.GAL_PATH);
(async () => {
  const auth = new GoogleAuth({ scopes: [process.env.SCOPE] });
  const client = process.env.ID_AUDIENCE ? await auth.getIdTokenClient(process.env.ID_AUDIENCE) : await auth.getClient();
  const res = await client.request({ url: process.env.API_URL, validateStatus: () => true, retry: false });
  process.stdout.write(JSON.stringify({ status: res.status, data: res.data }));
})().catch((error) => { console.error(error); process.exit(1); });
`;
  const proxyUrl = `http://127.0.0.1:${proxy.port('tunnel')}`;
  const r = await runCommand(process.execPath, ['-e', script], {
    PATH: process.env.PATH ?? '',
    GAL_PATH: createRequire(import.meta.url).resolve('google-auth-library'),
    HOME: dir,
    ...(credentials === 'metadata'
      ? { GCE_METADATA_HOST: `metadata.google.internal:${new URL(metadata.url).port}` }
      : { GOOGLE_APPLICATION_CREDENTIALS: join(dir, 'placeholder.json'), NO_GCE_CHECK: 'true' }),
    ...(credentials === 'placeholder-keyfile-id-token' ? { ID_AUDIENCE: AUDIENCE } : {}),
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt'),
    SCOPE,
    API_URL: url,
  });
  if (r.code !== 0) throw new Error(`workload failed: ${r.stderr.slice(0, 300)}\n${proxy.stdout().split('\n').filter((l) => l.includes('oauth2')).join('\n')}`);
  return JSON.parse(r.stdout) as { status: number; data: unknown };
}

const traceOf = (name: string) => (record: LogLine): Record<string, unknown> | undefined =>
  (record.request_transforms as { name: string; annotations?: Record<string, unknown> }[] | undefined)?.find((t) => t.name === name && t.annotations !== undefined)?.annotations;
const gcpTrace = traceOf('gcp_auth');
const idTokenTrace = traceOf('gcp_id_token');

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

  it("a placeholder keyfile: the workload's token call to oauth2.googleapis.com through CONNECT + MITM gets the stub, nothing is dialled for it", async () => {
    const before = fake.calls.length;
    const out = await workload(`http://storage.googleapis.com:${api.port}/storage/v1/b/placeholder`, 'placeholder-keyfile');
    expect(out.status).toBe(200);
    expect(out.data).toMatchObject({ claims: { email: real.email, scope: SCOPE } });
    const stub = await proxy.waitForAudit((l) => l.host === 'oauth2.googleapis.com' && l.path === '/token');
    expect(stub).toMatchObject({ action: 'stub', status_code: 200, mode: 'mitm' });
    expect(stub.upstream_addr).toBeUndefined();
    // The fake endpoint saw only the proxy's own assertions, signed with the real key.
    expect(fake.calls.slice(before).every((c) => c.email === real.email)).toBe(true);
    const call = await proxy.waitForAudit((l) => l.path === '/storage/v1/b/placeholder');
    expect(gcpTrace(call)).toEqual({ service_account: real.email, injected: ['header:Authorization'] });
  });

  it("Application Default Credentials of the proxy (credentials_provider: workload_identity): its machine's metadata server supplies the token", async () => {
    const out = await workload(`http://pubsub.googleapis.com:${adcApi.port}/v1/projects/p/topics`, 'placeholder-keyfile');
    expect(out.status).toBe(200);
    expect(out.data).toMatchObject({ claims: { sub: 'metadata' } });
    expect(proxyMetadata.requests.filter((r) => r.url.includes('/token')).every((r) => r.flavor === 'Google')).toBe(true);
    expect(proxyMetadata.requests.some((r) => r.url.includes('/token'))).toBe(true);
    const call = await proxy.waitForAudit((l) => l.path === '/v1/projects/p/topics');
    expect(call.action).toBe('allow');
    expect(gcpTrace(call)).toMatchObject({ injected: ['header:Authorization'] });
  });

  it("gcp_id_token: the workload's ID-token call is stubbed, its request leaves with a Google-signed ID token for the audience", async () => {
    const out = await workload(`http://service-abc.a.run.app:${idApi.port}/invoke`, 'placeholder-keyfile-id-token');
    expect(out.status).toBe(200);
    expect(out.data).toMatchObject({ claims: { aud: AUDIENCE, email: invoker.email } });
    const stub = await proxy.waitForAudit((l) => l.host === 'oauth2.googleapis.com' && (l.request_transforms as { name: string }[] | undefined)?.some((t) => t.name === 'gcp_id_token') === true && l.action === 'stub');
    expect(idTokenTrace(stub)).toMatchObject({ stubbed: 'gcp_oauth2_id_token_endpoint', audience: AUDIENCE });
    const call = await proxy.waitForAudit((l) => l.path === '/invoke');
    expect(idTokenTrace(call)).toMatchObject({ audience: AUDIENCE, service_account: invoker.email, injected: ['header:Authorization'] });
    expect(idApi.requests.at(-1)?.verified).toBe(true);
  });

  it('gcp_id_token with a key the token endpoint refuses: 403 token_unavailable, the service is not contacted', async () => {
    const before = idApi.requests.length;
    const out = await workload(`http://service-def.a.run.app:${idApi.port}/invoke-refused`, 'placeholder-keyfile-id-token');
    expect(out.status).toBe(403);
    expect(idApi.requests.length).toBe(before);
    const record = await proxy.waitForAudit((l) => l.path === '/invoke-refused');
    expect(record).toMatchObject({ action: 'reject', rejected_by: 'gcp_id_token', reason: 'token_unavailable', status_code: 403 });
    expect(idTokenTrace(record)).toMatchObject({ error: 'invalid_grant', rejected: 'token_unavailable' });
  });

  it('no key, assertion or minted token appears in anything the proxy wrote', () => {
    const written = proxy.stdout() + proxy.stderr();
    const secrets = [real, revoked, invoker].map((a) => (JSON.parse(a.keyfile) as { private_key: string }).private_key.split('\n')[5]!);
    const tokens = [...api.requests, ...idApi.requests, ...adcApi.requests].map((r) => r.authorization?.replace('Bearer ', '') ?? '').filter((t) => t.length > 0);
    expect(tokens.length).toBeGreaterThan(0);
    for (const value of [...secrets, ...tokens]) expect(written).not.toContain(value);
  });
});
