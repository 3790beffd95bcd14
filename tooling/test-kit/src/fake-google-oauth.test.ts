import { gaxios, JWT } from 'google-auth-library';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeGoogleOAuth, type FakeGoogleOAuth } from './fake-google-oauth.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/** A google-auth-library JWT client for a keyfile, its token calls sent to the keyfile's `token_uri`. */
function client(keyfile: string, extra: { subject?: string } = {}): JWT {
  const json = JSON.parse(keyfile) as { client_email: string; private_key: string; token_uri: string };
  const transporter = new gaxios.Gaxios({
    fetchImplementation: (url: string | URL | Request, init?: RequestInit) => fetch(String(url) === 'https://oauth2.googleapis.com/token' ? json.token_uri : url, init),
    retry: false,
  });
  return new JWT({ email: json.client_email, key: json.private_key, scopes: [SCOPE], ...extra, transporter });
}

describe('fake Google OAuth2 token endpoint, driven by google-auth-library', () => {
  let fake: FakeGoogleOAuth;
  beforeEach(async () => {
    fake = await startFakeGoogleOAuth({ expiresInSeconds: 600 });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('issues an access token for a service-account assertion, with its scope and subject', async () => {
    const account = fake.createServiceAccount('sa-one@fake-project.iam.gserviceaccount.com');
    expect(JSON.parse(account.keyfile)).toMatchObject({ type: 'service_account', client_email: account.email, token_uri: fake.tokenUri });
    const { token } = await client(account.keyfile, { subject: 'user@example.com' }).getAccessToken();
    expect(fake.accessToken(token!)).toMatchObject({ email: account.email, scope: SCOPE, subject: 'user@example.com' });
    await expect(fake.verifyAccessToken(token!)).resolves.toMatchObject({ email: account.email, scope: SCOPE, sub: 'user@example.com' });
    await expect(fake.verifyAccessToken('ya29.forged')).rejects.toThrow(/not an access token/);
    expect(fake.calls).toEqual([{ grantType: 'urn:ietf:params:oauth:grant-type:jwt-bearer', email: account.email, kind: 'access_token', error: undefined }]);
  });

  it('issues an ID token for target_audience, verifiable against its JWKS', async () => {
    const account = fake.createServiceAccount('sa-id@fake-project.iam.gserviceaccount.com');
    const idToken = await client(account.keyfile).fetchIdToken('https://run.example.test');
    const claims = await fake.verifyIdToken(idToken, 'https://run.example.test');
    expect(claims).toMatchObject({ iss: 'https://accounts.google.com', aud: 'https://run.example.test', email: account.email });
    await expect(fake.verifyIdToken(idToken, 'https://other.example.test')).rejects.toThrow();
    const jwks = (await (await fetch(fake.jwksUri)).json()) as { keys: unknown[] };
    expect(jwks.keys).toHaveLength(1);
  });

  it('refuses an assertion signed by an unknown or revoked key (invalid_grant), and injected failures', async () => {
    const account = fake.createServiceAccount('sa-two@fake-project.iam.gserviceaccount.com');
    const stranger = JSON.parse(fake.createServiceAccount('other@fake-project.iam.gserviceaccount.com').keyfile) as Record<string, string>;
    const forged = JSON.stringify({ ...(JSON.parse(account.keyfile) as object), private_key: stranger.private_key });
    await expect(client(forged).getAccessToken()).rejects.toThrow(/invalid_grant/);
    fake.revoke(account.email);
    await expect(client(account.keyfile).getAccessToken()).rejects.toThrow(/invalid_grant/);
    const other = fake.createServiceAccount('sa-three@fake-project.iam.gserviceaccount.com');
    fake.failWith({ status: 503, error: 'backend_error' });
    await expect(client(other.keyfile).getAccessToken()).rejects.toThrow(/backend_error/);
    // google-auth-library retries a 5xx token answer: every call after the two refusals got the injected failure.
    const errors = fake.calls.map((c) => c.error);
    expect(errors.slice(0, 3)).toEqual(['invalid_grant', 'invalid_grant', 'backend_error']);
    expect(new Set(errors.slice(2))).toEqual(new Set(['backend_error']));
  });

  it('holds answers while a hold is on', async () => {
    const account = fake.createServiceAccount('sa-hold@fake-project.iam.gserviceaccount.com');
    const release = fake.hold();
    let settled = false;
    const pending = client(account.keyfile).getAccessToken().then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false);
    release();
    await pending;
    expect(settled).toBe(true);
  });
});
