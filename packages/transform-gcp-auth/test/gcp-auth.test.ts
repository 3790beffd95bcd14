import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateTransformConfig } from '@proxy/core/testing';
import { startFakeGoogleOAuth, type FakeGoogleOAuth, type FakeServiceAccount } from '@proxy/test-kit';
import { gcpAuthTransform, STUB_BODY } from '../src/index.js';
import { bearerOf, FakeClock, startTransform, type LiveTransform } from './harness.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const API = { scheme: 'https', host: 'storage.googleapis.com', path: '/storage/v1/b' } as const;

let fake: FakeGoogleOAuth;
let account: FakeServiceAccount;
let dir: string;
const live: LiveTransform[] = [];

beforeAll(async () => {
  fake = await startFakeGoogleOAuth();
  account = fake.createServiceAccount('proxy-sa@fake-project.iam.gserviceaccount.com');
  dir = await mkdtemp(join(tmpdir(), 'gcp-auth-'));
});
afterAll(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(live.splice(0).map((t) => t.close()));
});

async function start(config: Record<string, unknown>, options: Parameters<typeof startTransform>[2] = {}): Promise<LiveTransform> {
  const t = await startTransform(gcpAuthTransform, { scopes: [SCOPE], ...config }, options);
  live.push(t);
  return t;
}

/** No minted token, assertion or key appears in any log line. */
function expectNoSecretsIn(t: LiveTransform, secrets: readonly string[]): void {
  const text = JSON.stringify(t.logs);
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('gcp_auth config', () => {
  it('wants exactly one credential, at least one scope, and no subject with credentials_provider', () => {
    expect(validateTransformConfig(gcpAuthTransform, { scopes: [SCOPE] })).not.toEqual([]);
    expect(validateTransformConfig(gcpAuthTransform, { keyfile_path: 'a.json', keyfile: { type: 'env', var: 'K' }, scopes: [SCOPE] })).not.toEqual([]);
    expect(validateTransformConfig(gcpAuthTransform, { keyfile_path: 'a.json', scopes: [] })).not.toEqual([]);
    expect(validateTransformConfig(gcpAuthTransform, { credentials_provider: { type: 'workload_identity' }, subject: 'u@example.com', scopes: [SCOPE] })).not.toEqual([]);
    expect(validateTransformConfig(gcpAuthTransform, { credentials_provider: { type: 'workload_identity' }, scopes: [SCOPE] })).toEqual([]);
    expect(validateTransformConfig(gcpAuthTransform, { keyfile_path: 'a.json', subject: 'u@example.com', scopes: [SCOPE], rules: [{ host: '*.googleapis.com' }] })).toEqual([]);
  });

  it('refuses to start on a keyfile_path that is missing or not a service-account keyfile', async () => {
    await expect(start({ keyfile_path: join(dir, 'missing.json') })).rejects.toThrow(/keyfile_path: cannot read/);
    await writeFile(join(dir, 'user.json'), JSON.stringify({ type: 'authorized_user', client_id: 'x' }));
    await expect(start({ keyfile_path: join(dir, 'user.json') })).rejects.toThrow(/type must be "service_account"/);
  });
});

describe('gcp_auth minting', () => {
  it('keyfile from a source: the token the fake issued is injected, cached, and never logged', async () => {
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY' }, rules: [{ host: '*.googleapis.com' }] }, { env: { GCP_KEY: account.keyfile } });
    const before = fake.calls.length;
    const first = await t.run({ ...API, headers: { authorization: 'Bearer iron-proxy-stub-token' } });
    expect(first.decision.action).toBe('continue');
    const token = bearerOf(first.request);
    expect(fake.accessToken(token)).toMatchObject({ email: account.email, scope: SCOPE });
    expect(first.annotations).toEqual({ service_account: account.email, injected: ['header:Authorization'] });
    const second = await t.run(API);
    expect(bearerOf(second.request)).toBe(token);
    expect(fake.calls.length - before).toBe(1);
    // Out of scope: untouched.
    const other = await t.run({ host: 'example.com', headers: { authorization: 'Bearer mine' } });
    expect(other.request.headers.get('authorization')).toBe('Bearer mine');
    expect(t.redactor.redact(`x ${token} y`)).not.toContain(token);
    expectNoSecretsIn(t, [token, JSON.parse(account.keyfile).private_key as string]);
  });

  it('keyfile_path with subject (domain-wide delegation); empty rules cover every request', async () => {
    const path = join(dir, 'sa.json');
    await writeFile(path, account.keyfile);
    const t = await start({ keyfile_path: path, subject: 'admin@example.com' });
    const r = await t.run({ host: 'admin.googleapis.com', scheme: 'https', path: '/admin/directory/v1/users' });
    expect(fake.accessToken(bearerOf(r.request))).toMatchObject({ subject: 'admin@example.com' });
  });

  it('concurrent requests share one mint; a token near expiry is replaced', async () => {
    const clock = new FakeClock();
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY' } }, { env: { GCP_KEY: account.keyfile }, clock });
    const before = fake.calls.length;
    const [a, b, c] = await Promise.all([t.run(API), t.run(API), t.run(API)]);
    expect(new Set([a, b, c].map((r) => bearerOf(r.request))).size).toBe(1);
    expect(fake.calls.length - before).toBe(1);
    clock.advance(3600_000 - 4 * 60_000); // within five minutes of expiry
    const later = await t.run(API);
    expect(bearerOf(later.request)).not.toBe(bearerOf(a.request));
    expect(fake.calls.length - before).toBe(2);
  });

  it('a rotated keyfile (source value changed) mints with the new key without restart', async () => {
    const env: Record<string, string> = { GCP_KEY: account.keyfile };
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY', ttl: '1s' } }, { env });
    const first = await t.run(API);
    expect(first.annotations.service_account).toBe(account.email);
    const rotated = fake.createServiceAccount('rotated@fake-project.iam.gserviceaccount.com');
    env.GCP_KEY = rotated.keyfile;
    await new Promise((r) => setTimeout(r, 1500));
    const second = await t.run(API);
    expect(second.annotations.service_account).toBe(rotated.email);
    expect(fake.accessToken(bearerOf(second.request))?.email).toBe(rotated.email);
  });
});

describe('gcp_auth failures: 403 token_unavailable, nothing forwarded', () => {
  it('the token endpoint refuses the key (invalid_grant)', async () => {
    const revoked = fake.createServiceAccount('revoked@fake-project.iam.gserviceaccount.com');
    fake.revoke(revoked.email);
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY' } }, { env: { GCP_KEY: revoked.keyfile } });
    const r = await t.run(API);
    expect(r.decision).toMatchObject({ action: 'reject', status: 403, reason: 'token_unavailable' });
    expect(r.annotations).toMatchObject({ error: 'invalid_grant', rejected: 'token_unavailable' });
    expect(r.request.headers.get('authorization')).toBeUndefined();
    expectNoSecretsIn(t, [JSON.parse(revoked.keyfile).private_key as string]);
  });

  it('the keyfile source has no value, or holds no keyfile', async () => {
    const missing = await start({ keyfile: { type: 'env', var: 'NOT_SET' } });
    const r1 = await missing.run(API);
    expect(r1.decision).toMatchObject({ action: 'reject', status: 403, reason: 'token_unavailable' });
    expect(r1.annotations).toMatchObject({ error: 'keyfile_unavailable', credential_unavailable: 'NOT_SET' });
    const junk = await start({ keyfile: { type: 'env', var: 'GCP_KEY' } }, { env: { GCP_KEY: '{"type":"service_account"}' } });
    const r2 = await junk.run(API);
    expect(r2.annotations).toMatchObject({ error: 'keyfile_invalid', rejected: 'token_unavailable' });
  });

  it('the token endpoint is down', async () => {
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY' } }, { env: { GCP_KEY: account.keyfile }, http: () => Promise.reject(new TypeError('fetch failed')) });
    const r = await t.run(API);
    expect(r.decision).toMatchObject({ status: 403, reason: 'token_unavailable' });
    expect(r.annotations.error).toBe('mint_failed');
  });

  it('TLS passed through unread cannot carry the token: refused', async () => {
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY' } }, { env: { GCP_KEY: account.keyfile } });
    const r = await t.run({ ...API, mode: 'sni-only' });
    expect(r.decision).toMatchObject({ status: 403, reason: 'token_unavailable' });
    expect(r.annotations.error).toBe('tls_passthrough');
  });
});

describe('gcp_auth stubs (before rules)', () => {
  it("answers the token endpoint, a POST with a body included, and the metadata server's token path", async () => {
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY' }, rules: [{ host: 'storage.googleapis.com' }] }, { env: { GCP_KEY: account.keyfile } });
    const before = fake.calls.length;
    const post = await t.run({
      method: 'POST',
      scheme: 'https',
      host: 'oauth2.googleapis.com',
      path: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.eyJzY29wZSI6IngifQ.c',
    });
    expect(post.decision).toMatchObject({ action: 'respond', status: 200, body: STUB_BODY });
    expect(post.audit.action).toBe('stub');
    expect(post.annotations).toEqual({ stubbed: 'oauth2_token_endpoint' });
    for (const host of ['metadata.google.internal', '169.254.169.254']) {
      const md = await t.run({ host, path: '/computeMetadata/v1/instance/service-accounts/default/token', query: 'scopes=x', headers: { 'metadata-flavor': 'Google' } });
      expect(md.decision).toMatchObject({ action: 'respond', status: 200, body: STUB_BODY, headers: { 'metadata-flavor': 'Google' } });
    }
    const probe = await t.run({ host: 'metadata.google.internal', path: '/computeMetadata/v1/instance' });
    expect(probe.decision.action).toBe('continue');
    expect(fake.calls.length).toBe(before);
  });

  it('leaves an ID-token request (a target_audience assertion) for gcp_id_token', async () => {
    const t = await start({ keyfile: { type: 'env', var: 'GCP_KEY' }, rules: [{ host: 'storage.googleapis.com' }] }, { env: { GCP_KEY: account.keyfile } });
    const payload = Buffer.from(JSON.stringify({ target_audience: 'https://run.example.test' })).toString('base64url');
    const r = await t.run({
      method: 'POST',
      scheme: 'https',
      host: 'oauth2.googleapis.com',
      path: '/token',
      body: `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.${payload}.c`,
    });
    expect(r.decision.action).toBe('continue');
  });
});
