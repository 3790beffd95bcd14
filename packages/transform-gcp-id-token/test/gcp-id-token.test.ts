import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateTransformConfig } from '@proxy/core/testing';
import { startFakeGoogleOAuth, type FakeGoogleOAuth, type FakeServiceAccount } from '@proxy/test-kit';
import { gcpIdTokenTransform } from '../src/index.js';
import { bearerOf, startTransform, type LiveTransform } from './harness.js';

const AUDIENCE = 'https://service-abc.a.run.app';
const API = { scheme: 'https', host: 'service-abc.a.run.app', path: '/hello' } as const;
let fake: FakeGoogleOAuth;
let account: FakeServiceAccount;
const live: LiveTransform[] = [];

beforeAll(async () => {
  fake = await startFakeGoogleOAuth();
  account = fake.createServiceAccount('invoker@fake-project.iam.gserviceaccount.com');
});
afterAll(() => fake.close());
afterEach(async () => {
  await Promise.all(live.splice(0).map((t) => t.close()));
});

async function start(config: Record<string, unknown> = {}, env: Record<string, string> = { GCP_KEY: account.keyfile }): Promise<LiveTransform> {
  const t = await startTransform(gcpIdTokenTransform, { keyfile: { type: 'env', var: 'GCP_KEY' }, audience: AUDIENCE, rules: [{ host: '*.run.app' }], ...config }, { env });
  live.push(t);
  return t;
}

describe('gcp_id_token', () => {
  it('config: one keyfile, an audience, at least one rule, a known header', () => {
    expect(validateTransformConfig(gcpIdTokenTransform, { keyfile_path: 'k.json', audience: AUDIENCE, rules: [{ host: 'a' }] })).toEqual([]);
    expect(validateTransformConfig(gcpIdTokenTransform, { keyfile_path: 'k.json', audience: AUDIENCE, rules: [] })).not.toEqual([]);
    expect(validateTransformConfig(gcpIdTokenTransform, { audience: AUDIENCE, rules: [{ host: 'a' }] })).not.toEqual([]);
    expect(validateTransformConfig(gcpIdTokenTransform, { keyfile_path: 'k.json', audience: AUDIENCE, header: 'x-other', rules: [{ host: 'a' }] })).not.toEqual([]);
  });

  it('mints an ID token for the audience (verified with jose) and injects it, cached', async () => {
    const t = await start();
    const before = fake.calls.length;
    const r = await t.run({ ...API, headers: { authorization: 'Bearer placeholder' } });
    const claims = await fake.verifyIdToken(bearerOf(r.request), AUDIENCE);
    expect(claims).toMatchObject({ aud: AUDIENCE, email: account.email });
    expect(r.annotations).toEqual({ audience: AUDIENCE, service_account: account.email, injected: ['header:Authorization'] });
    await t.run(API);
    expect(fake.calls.length - before).toBe(1);
    expect(JSON.stringify(t.logs)).not.toContain(bearerOf(r.request));
  });

  it('x-serverless-authorization: sent as X-Serverless-Authorization, Authorization left alone', async () => {
    const t = await start({ header: 'x-serverless-authorization' });
    const r = await t.run({ ...API, headers: { authorization: 'Bearer app-own' } });
    expect(r.request.headers.get('authorization')).toBe('Bearer app-own');
    await fake.verifyIdToken(bearerOf(r.request, 'x-serverless-authorization'), AUDIENCE);
    expect(r.annotations.injected).toEqual(['header:X-Serverless-Authorization']);
  });

  it('stubs the metadata identity path and a target_audience token request with a body (answered, no panic)', async () => {
    const t = await start();
    const before = fake.calls.length;
    const md = await t.run({ host: 'metadata.google.internal', path: '/computeMetadata/v1/instance/service-accounts/default/identity', query: `audience=${encodeURIComponent(AUDIENCE)}` });
    expect(md.decision).toMatchObject({ action: 'respond', status: 200, headers: { 'metadata-flavor': 'Google' } });
    expect(md.annotations).toEqual({ audience: AUDIENCE, stubbed: 'gcp_metadata_identity_endpoint' });
    const payload = Buffer.from(JSON.stringify({ iss: 'x', target_audience: AUDIENCE })).toString('base64url');
    const post = await t.run({
      method: 'POST',
      scheme: 'https',
      host: 'oauth2.googleapis.com',
      path: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=h.${payload}.s`,
    });
    expect(post.decision).toMatchObject({ action: 'respond', status: 200 });
    const body = JSON.parse(String((post.decision as { body: string }).body)) as { id_token: string; expires_in: number };
    expect(body.expires_in).toBe(3600);
    expect(JSON.parse(Buffer.from(body.id_token.split('.')[1]!, 'base64url').toString())).toMatchObject({ aud: AUDIENCE });
    expect(post.annotations).toEqual({ audience: AUDIENCE, stubbed: 'gcp_oauth2_id_token_endpoint' });
    expect(fake.calls.length).toBe(before);
  });

  it('failures: 403 token_unavailable with the reason, nothing injected', async () => {
    const revoked = fake.createServiceAccount('gone@fake-project.iam.gserviceaccount.com');
    fake.revoke(revoked.email);
    const t = await start({}, { GCP_KEY: revoked.keyfile });
    const r = await t.run(API);
    expect(r.decision).toMatchObject({ action: 'reject', status: 403, reason: 'token_unavailable' });
    expect(r.annotations).toMatchObject({ error: 'invalid_grant', rejected: 'token_unavailable' });
    const missing = await start({}, {});
    const m = await missing.run(API);
    expect(m.annotations).toMatchObject({ error: 'keyfile_unavailable', rejected: 'token_unavailable' });
  });
});
