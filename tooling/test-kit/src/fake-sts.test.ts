import { GetWebIdentityTokenCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeSts, type FakeSts } from './fake-sts.js';

const credentials = { accessKeyId: 'AKIDFAKESTS', secretAccessKey: 'fake-sts-secret' };

function client(sts: FakeSts, creds = credentials): STSClient {
  return new STSClient({ region: 'us-east-1', endpoint: sts.url, credentials: creds, maxAttempts: 1 });
}

describe('fake STS: GetWebIdentityToken through the real SDK client', () => {
  let sts: FakeSts;
  beforeEach(async () => {
    sts = await startFakeSts({ credentials });
  });
  afterEach(async () => {
    await sts.close();
  });

  it('issues an RS256 token that verifies against its discovery document and JWKS', async () => {
    const before = Math.floor(Date.now() / 1000);
    const out = await client(sts).send(
      new GetWebIdentityTokenCommand({ Audience: ['https://api.example.test'], SigningAlgorithm: 'RS256', DurationSeconds: 900 }),
    );
    expect(out.WebIdentityToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(out.Expiration).toBeInstanceOf(Date);

    const discovery = (await (await fetch(`${sts.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    expect(discovery.issuer).toBe(sts.issuer);
    const { payload, protectedHeader } = await jwtVerify(out.WebIdentityToken!, createRemoteJWKSet(new URL(discovery.jwks_uri)), {
      issuer: sts.issuer,
      audience: 'https://api.example.test',
      algorithms: ['RS256'],
    });
    expect(payload.aud).toBe('https://api.example.test');
    expect(payload.sub).toMatch(/^arn:aws:iam::/);
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(out.Expiration!.getTime()).toBe(payload.exp! * 1000);
    expect(protectedHeader.kid).toBe(sts.jwks.keys.find((k) => k.alg === 'RS256')?.kid);
    expect(sts.calls).toEqual([{ audience: ['https://api.example.test'], signingAlgorithm: 'RS256', durationSeconds: 900, accessKeyId: credentials.accessKeyId }]);
  });

  it('issues ES384 tokens with a P-384 key, and lists several audiences in order', async () => {
    const out = await client(sts).send(new GetWebIdentityTokenCommand({ Audience: ['b', 'a'], SigningAlgorithm: 'ES384' }));
    expect(decodeProtectedHeader(out.WebIdentityToken!).alg).toBe('ES384');
    const { payload } = await jwtVerify(out.WebIdentityToken!, createLocalJWKSet(sts.jwks), { issuer: sts.issuer, algorithms: ['ES384'] });
    expect(payload.aud).toEqual(['b', 'a']);
    // STS's own default lifetime when DurationSeconds is not sent.
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(sts.calls[0]).toMatchObject({ audience: ['b', 'a'], signingAlgorithm: 'ES384', durationSeconds: undefined });
    expect(sts.jwks.keys.find((k) => k.alg === 'ES384')).toMatchObject({ kty: 'EC', crv: 'P-384' });
  });

  it('answers AccessDenied as an STS Sender error with status 403', async () => {
    sts.failWith('AccessDenied');
    const err = await client(sts)
      .send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(STSServiceException);
    expect(err).toMatchObject({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 } });
    expect(sts.calls).toHaveLength(1);
  });

  it('answers OutboundWebIdentityFederationDisabled with the modelled exception', async () => {
    sts.failWith('OutboundWebIdentityFederationDisabled');
    const err = await client(sts)
      .send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'OutboundWebIdentityFederationDisabledException', $metadata: { httpStatusCode: 403 } });
  });

  it('drops the connection, then recovers when told to', async () => {
    sts.failWith('drop');
    const err = await client(sts)
      .send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(STSServiceException);
    sts.failWith(undefined);
    const out = await client(sts).send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }));
    expect(out.WebIdentityToken).toBeDefined();
  });

  it('answers without Expiration when told to, the token still valid, then with it again', async () => {
    sts.failWith('no-expiration');
    const bare = await client(sts).send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256', DurationSeconds: 60 }));
    expect(bare.WebIdentityToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(bare.Expiration).toBeUndefined();
    await jwtVerify(bare.WebIdentityToken!, createLocalJWKSet(sts.jwks), { issuer: sts.issuer, audience: 'x' });
    sts.failWith(undefined);
    const full = await client(sts).send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }));
    expect(full.Expiration).toBeInstanceOf(Date);
  });

  it('verifies SigV4: a wrong secret is SignatureDoesNotMatch, an unknown key InvalidClientTokenId', async () => {
    const badSecret = await client(sts, { ...credentials, secretAccessKey: 'wrong' })
      .send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }))
      .catch((e: unknown) => e);
    expect(badSecret).toMatchObject({ name: 'SignatureDoesNotMatch' });
    const badKey = await client(sts, { accessKeyId: 'AKIDOTHER', secretAccessKey: credentials.secretAccessKey })
      .send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }))
      .catch((e: unknown) => e);
    expect(badKey).toMatchObject({ name: 'InvalidClientTokenId' });
  });

  it('rejects an unsigned request and a bad algorithm or duration like STS does', async () => {
    const unsigned = await fetch(sts.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=GetWebIdentityToken&Version=2011-06-15&Audience.member.1=x&SigningAlgorithm=RS256',
    });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain('<Code>MissingAuthenticationToken</Code>');
    expect(sts.calls).toHaveLength(0);

    for (const input of [
      { Audience: ['x'], SigningAlgorithm: 'HS256' },
      { Audience: ['x'], SigningAlgorithm: 'RS256', DurationSeconds: 30 },
    ]) {
      const err = await client(sts)
        .send(new GetWebIdentityTokenCommand(input))
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'ValidationError', $metadata: { httpStatusCode: 400 } });
    }
  });

  it('holds answers until released', async () => {
    const release = sts.hold();
    const pending = client(sts).send(new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256' }));
    let settled = false;
    void pending.finally(() => (settled = true));
    await expect.poll(() => sts.calls.length).toBe(1);
    expect(settled).toBe(false);
    release();
    expect((await pending).WebIdentityToken).toBeDefined();
  });
});

describe('fake STS options', () => {
  it('takes its time from the given clock and accepts any key without credentials configured', async () => {
    const now = Date.UTC(2030, 0, 1);
    const sts = await startFakeSts({ clock: () => now, subject: 'arn:aws:iam::111122223333:role/test' });
    try {
      const out = await client(sts, { accessKeyId: 'ANYKEY', secretAccessKey: 'any' }).send(
        new GetWebIdentityTokenCommand({ Audience: ['x'], SigningAlgorithm: 'RS256', DurationSeconds: 60 }),
      );
      expect(out.Expiration!.getTime()).toBe(now + 60_000);
      const { payload } = await jwtVerify(out.WebIdentityToken!, createLocalJWKSet(sts.jwks), { currentDate: new Date(now) });
      expect(payload.sub).toBe('arn:aws:iam::111122223333:role/test');
      expect(sts.calls[0]?.accessKeyId).toBe('ANYKEY');
    } finally {
      await sts.close();
    }
  });
});
