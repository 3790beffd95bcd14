import { runTransform } from '@proxy/core/testing';
import { startFakeSts, type FakeSts } from '@proxy/test-kit';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsJwtTransform, TOKEN_UNAVAILABLE } from '../src/index.js';
import { bearerToken, TestMetrics, useFakeStsEnvironment, verifyAsRelyingParty } from './harness.js';

const credentials = { accessKeyId: 'AKIDAWSJWTTEST', secretAccessKey: 'aws-jwt-test-secret' };
let sts: FakeSts;

beforeAll(async () => {
  sts = await startFakeSts({ credentials });
  useFakeStsEnvironment(sts, credentials);
});
afterAll(async () => {
  await sts.close();
});
beforeEach(() => {
  sts.failWith(undefined);
  sts.calls.length = 0;
});

describe('aws_jwt: minting and injecting', () => {
  it('replaces the inbound Authorization with a bearer JWT that verifies against the issuer', async () => {
    const result = await runTransform(
      awsJwtTransform,
      { audience: ['https://example.test'] },
      {
        scheme: 'https',
        host: 'api.example.test',
        headers: [
          ['Authorization', 'Bearer workload-supplied'],
          ['authorization', 'Basic d29ya2xvYWQ6c2VjcmV0'],
        ],
      },
    );
    expect(result.decision).toEqual({ action: 'continue' });
    expect(result.request.headers.getAll('authorization')).toHaveLength(1);
    const token = bearerToken(result.request);
    const { payload, protectedHeader } = await verifyAsRelyingParty(token, sts, 'https://example.test');
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.iss).toBe(sts.issuer);
    expect(payload.aud).toBe('https://example.test');
    // The default duration is 1h.
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(sts.calls).toEqual([{ audience: ['https://example.test'], signingAlgorithm: 'RS256', durationSeconds: 3600, accessKeyId: credentials.accessKeyId }]);

    const trace = result.audit.request_transforms[0]!;
    expect(trace).toMatchObject({ name: 'aws_jwt', action: 'allow' });
    expect(trace.annotations).toEqual({ audience: ['https://example.test'], cache: 'miss', injected: ['header:Authorization'], token_result: 'ok' });
    expect(JSON.stringify(result.audit)).not.toContain(token);
    expect(JSON.stringify(result.logs)).not.toContain(token);
    const debug = result.logs.find((l) => l.level === 'debug' && /replaced the inbound Authorization/.test(l.msg ?? ''));
    expect(debug).toBeDefined();
  });

  it('says it set (not replaced) Authorization when the workload sent none', async () => {
    const result = await runTransform(awsJwtTransform, { audience: ['https://example.test'] }, { host: 'api.example.test' });
    expect(bearerToken(result.request)).toBeTruthy();
    expect(result.logs.some((l) => l.level === 'debug' && /^set Authorization/.test(l.msg ?? ''))).toBe(true);
  });

  it('mints ES384 tokens with the requested duration; the algorithm is case-insensitive', async () => {
    const result = await runTransform(awsJwtTransform, { audience: ['https://example.test'], signing_algorithm: 'es384', duration: '15m', refresh_skew: '1m' });
    const token = bearerToken(result.request);
    expect(decodeProtectedHeader(token).alg).toBe('ES384');
    const { payload } = await verifyAsRelyingParty(token, sts, 'https://example.test');
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(sts.calls[0]).toMatchObject({ signingAlgorithm: 'ES384', durationSeconds: 900 });
  });

  it('mints one multi-audience token for a static list, de-duplicated and sorted', async () => {
    const result = await runTransform(awsJwtTransform, { audience: ['https://b.test', 'https://a.test', 'https://b.test'] });
    const { payload } = await verifyAsRelyingParty(bearerToken(result.request), sts, 'https://a.test');
    expect(payload.aud).toEqual(['https://a.test', 'https://b.test']);
    expect(sts.calls[0]?.audience).toEqual(['https://a.test', 'https://b.test']);
    expect(result.audit.request_transforms[0]?.annotations?.audience).toEqual(['https://a.test', 'https://b.test']);
  });

  it('derives the audience from the destination when none is configured', async () => {
    const cases = [
      { request: { scheme: 'https' as const, host: 'API.Example.com', port: 8443 }, audience: 'https://api.example.com' },
      { request: { scheme: 'http' as const, host: '127.0.0.1', port: 8080 }, audience: 'http://127.0.0.1' },
      { request: { scheme: 'https' as const, host: '::1', port: 443 }, audience: 'https://[::1]' },
    ];
    for (const { request, audience } of cases) {
      const result = await runTransform(awsJwtTransform, {}, request);
      const { payload } = await verifyAsRelyingParty(bearerToken(result.request), sts, audience);
      expect(payload.aud).toBe(audience);
      expect(result.audit.request_transforms[0]?.annotations?.audience).toEqual([audience]);
    }
  });

  it('leaves requests outside its rules alone', async () => {
    const config = { audience: ['https://example.test'], rules: [{ host: '*.example.test', methods: ['GET'] }] };
    const outside = await runTransform(awsJwtTransform, config, { host: 'other.test', headers: { Authorization: 'Basic keep' } });
    expect(outside.request.headers.get('authorization')).toBe('Basic keep');
    const wrongMethod = await runTransform(awsJwtTransform, config, { host: 'api.example.test', method: 'POST' });
    expect(wrongMethod.request.headers.has('authorization')).toBe(false);
    expect(sts.calls).toHaveLength(0);
    const inside = await runTransform(awsJwtTransform, config, { host: 'api.example.test' });
    expect(bearerToken(inside.request)).toBeTruthy();
  });

  it('mints nothing for a tunnel being opened or TLS passed through unread', async () => {
    for (const mode of ['tunnel', 'sni-only'] as const) {
      const result = await runTransform(awsJwtTransform, { audience: ['https://example.test'] }, { scheme: 'https', host: 'api.example.test', mode });
      expect(result.decision.action).toBe('continue');
      expect(result.request.headers.has('authorization')).toBe(false);
    }
    expect(sts.calls).toHaveLength(0);
  });
});

describe('aws_jwt: no token, no request', () => {
  it('refuses with 502 token unavailable on AccessDenied, logging and auditing the error class only', async () => {
    sts.failWith('AccessDenied');
    const metrics = new TestMetrics();
    const result = await runTransform(
      awsJwtTransform,
      { audience: ['https://example.test'] },
      { headers: { Authorization: 'Bearer workload' } },
      { transformEnv: { meter: metrics.meter } },
    );
    expect(result.decision).toEqual({ action: 'reject', status: 502, reason: TOKEN_UNAVAILABLE, message: 'token unavailable' });
    expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'aws_jwt', reason: 'token_unavailable', status_code: 502 });
    expect(result.audit.request_transforms[0]?.annotations).toMatchObject({ audience: ['https://example.test'], error_class: 'AccessDenied', token_result: 'fetch_error' });
    const errors = result.logs.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.fields).toMatchObject({ error_class: 'AccessDenied', audience: ['https://example.test'], trigger: 'miss' });
    // The AWS message and request id are for the operator's log, never the client's body.
    expect(errors[0]?.fields.detail).toMatch(/not authorized/);
    expect(errors[0]?.fields.aws_request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.decision.action === 'reject' && result.decision.message).not.toMatch(/authorized|AccessDenied/);
    expect(await metrics.value('token_fetch_count', { result: 'error', error_class: 'AccessDenied', audience: 'https://example.test' })).toBe(1);
    expect(await metrics.value('token_fetch_count', { result: 'ok' })).toBe(0);
  });

  it('reports OutboundWebIdentityFederationDisabled by its AWS error code', async () => {
    sts.failWith('OutboundWebIdentityFederationDisabled');
    const result = await runTransform(awsJwtTransform, { audience: ['https://example.test'] });
    expect(result.decision).toMatchObject({ action: 'reject', status: 502, message: 'token unavailable' });
    expect(result.audit.request_transforms[0]?.annotations?.error_class).toBe('OutboundWebIdentityFederationDisabledException');
  });

  it('calls a dropped connection a transport error', async () => {
    sts.failWith('drop');
    const metrics = new TestMetrics();
    const result = await runTransform(awsJwtTransform, { audience: ['https://example.test'] }, {}, { transformEnv: { meter: metrics.meter } });
    expect(result.decision).toMatchObject({ action: 'reject', status: 502, reason: 'token_unavailable', message: 'token unavailable' });
    expect(result.audit.request_transforms[0]?.annotations?.error_class).toBe('transport');
    expect(result.logs.find((l) => l.level === 'error')?.fields.error_class).toBe('transport');
    expect(await metrics.value('token_fetch_count', { result: 'error', error_class: 'transport' })).toBe(1);
    expect(sts.calls.length).toBeGreaterThanOrEqual(1);
  });

  it('calls an unreachable STS a transport error', async () => {
    const closed = await startFakeSts();
    await closed.close();
    process.env.AWS_ENDPOINT_URL_STS = closed.url;
    try {
      const result = await runTransform(awsJwtTransform, { audience: ['https://example.test'] });
      expect(result.decision).toMatchObject({ action: 'reject', status: 502, reason: 'token_unavailable' });
      expect(result.audit.request_transforms[0]?.annotations?.error_class).toBe('transport');
    } finally {
      process.env.AWS_ENDPOINT_URL_STS = sts.url;
    }
  });

  it('does not start without an AWS region', async () => {
    const region = process.env.AWS_REGION;
    delete process.env.AWS_REGION;
    try {
      const err = await runTransform(awsJwtTransform, {}).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PROXY_ERR_TRANSFORM_CREATE_FAILED', cause: { code: 'PROXY_ERR_CONFIG_INVALID' } });
      expect(String((err as Error).message)).toMatch(/AWS_REGION/);
    } finally {
      process.env.AWS_REGION = region;
    }
  });
});

describe('aws_jwt: allowed_audiences', () => {
  const config = { allowed_audiences: ['*.example.test', 'https://api.partner.test'] };

  it('mints for destinations that match a host glob or scheme://host-glob', async () => {
    for (const request of [
      { scheme: 'http' as const, host: 'a.example.test' },
      { scheme: 'https' as const, host: 'example.test' },
      { scheme: 'https' as const, host: 'API.partner.test', port: 8443 },
    ]) {
      const result = await runTransform(awsJwtTransform, config, request);
      expect(result.decision.action).toBe('continue');
      expect(bearerToken(result.request)).toBeTruthy();
    }
    expect(sts.calls).toHaveLength(3);
  });

  it('refuses any other derived audience with 403 and no STS call', async () => {
    for (const request of [
      { scheme: 'https' as const, host: 'evil.test' },
      { scheme: 'http' as const, host: 'api.partner.test' },
      { scheme: 'https' as const, host: 'example.test.evil.test' },
    ]) {
      const result = await runTransform(awsJwtTransform, config, { ...request, headers: { Authorization: 'Bearer x' } });
      const audience = `${request.scheme}://${request.host}`;
      expect(result.decision).toEqual({ action: 'reject', status: 403, reason: 'audience_not_allowed', message: `audience not allowed: ${audience}` });
      expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'aws_jwt', reason: 'audience_not_allowed' });
      expect(result.audit.request_transforms[0]?.annotations?.audience).toEqual([audience]);
    }
    expect(sts.calls).toHaveLength(0);
  });
});
