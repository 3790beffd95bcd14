import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runTransform, validateTransformConfig, type TestRequestInit, type TransformRunResult } from '@proxy/core/testing';
import { awsAuthTransform } from '../src/index.js';
import { checkForwarded, forwardedText, headerSigned, PLACEHOLDER, presigned } from './harness.js';

const REAL = { accessKeyId: 'AKIAREALKEYFORTESTS1', secretAccessKey: 'real-secret-access-key-for-unit-tests-0001' };
const REAL_SESSION = { ...REAL, sessionToken: 'real-session-token-for-unit-tests-0001' };
const ENV = { AWS_KEY_ID: REAL.accessKeyId, AWS_SECRET: REAL.secretAccessKey, AWS_TOKEN: REAL_SESSION.sessionToken };

function config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    access_key_id: { type: 'env', var: 'AWS_KEY_ID' },
    secret_access_key: { type: 'env', var: 'AWS_SECRET' },
    rules: [{ host: '*.amazonaws.com' }],
    ...overrides,
  };
}

const run = (cfg: Record<string, unknown>, request: TestRequestInit, env: Record<string, string> = ENV): Promise<TransformRunResult> =>
  runTransform(awsAuthTransform, cfg, request, { env });

const annotations = (result: TransformRunResult) => result.audit.request_transforms[0]?.annotations;

/** The decision of a refusal: status, reason and iron-proxy's JSON body. */
const refusal = (status: number, reason: string) => ({
  action: 'reject',
  status,
  reason,
  contentType: 'application/json; charset=utf-8',
  message: JSON.stringify({ error: 'aws_auth', reason }),
});

/** Asserts that nothing the workload's placeholder signature held is in the forwarded request. */
function expectNoPlaceholder(result: TransformRunResult): void {
  const text = forwardedText(result);
  expect(text).not.toContain(PLACEHOLDER.accessKeyId);
  expect(text).not.toContain(PLACEHOLDER.sessionToken);
}

/** Asserts that no log call holds a real credential. */
function expectNoSecretLogged(result: TransformRunResult): void {
  const logged = JSON.stringify(result.logs);
  for (const value of Object.values(ENV)) expect(logged).not.toContain(value);
}

const S3_GET = { method: 'GET', host: 'my-bucket.s3.us-east-1.amazonaws.com', path: '/reports/q1%20final.csv', query: { 'x-id': 'GetObject' } };
const DYNAMO = {
  method: 'POST',
  host: 'dynamodb.eu-west-1.amazonaws.com',
  path: '/',
  region: 'eu-west-1',
  service: 'dynamodb',
  headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.GetItem' },
  body: '{"TableName":"orders","Key":{"id":{"S":"42"}}}',
};

describe('aws_auth: header signatures', () => {
  it('re-signs an S3 request with the real credentials: the upstream check passes, the placeholder is gone', async () => {
    const request = await headerSigned({ ...S3_GET, headers: { 'x-amz-security-token': PLACEHOLDER.sessionToken } });
    const result = await run(config(), request);
    expect(result.decision).toEqual({ action: 'continue' });
    await expect(checkForwarded(result, REAL)).resolves.toMatchObject({ kind: 'header', accessKeyId: REAL.accessKeyId, region: 'us-east-1', service: 's3' });
    expect(result.request.headers.has('x-amz-security-token')).toBe(false);
    expectNoPlaceholder(result);
    expect(annotations(result)).toEqual({ service: 's3', region: 'us-east-1', injected: ['header:Authorization', 'header:X-Amz-Date', 'header:X-Amz-Content-Sha256'] });
    expectNoSecretLogged(result);
  });

  it('adds the real session token when one is configured', async () => {
    const result = await run(config({ session_token: { type: 'env', var: 'AWS_TOKEN' } }), await headerSigned(S3_GET));
    expect(result.request.headers.get('x-amz-security-token')).toBe(REAL_SESSION.sessionToken);
    const check = await checkForwarded(result, REAL_SESSION);
    expect(check.error).toBeUndefined();
    expect(annotations(result)?.injected).toContain('header:X-Amz-Security-Token');
  });

  it('hashes the body it forwards (a JSON-protocol request) and signs that hash', async () => {
    const result = await run(config(), await headerSigned(DYNAMO));
    expect(result.request.headers.get('x-amz-content-sha256')).toBe(createHash('sha256').update(DYNAMO.body).digest('hex'));
    await expect(checkForwarded(result, REAL)).resolves.toMatchObject({ service: 'dynamodb', region: 'eu-west-1' });
    expect((await checkForwarded(result, REAL)).error).toBeUndefined();
    expect(result.forwardedBody.toString()).toBe(DYNAMO.body);
  });

  it('signs a non-S3 path with its encoding doubled, as the SDK does (Lambda)', async () => {
    const lambda = { method: 'POST', host: 'lambda.us-east-1.amazonaws.com', path: '/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations', service: 'lambda', body: '{}' };
    const result = await run(config(), await headerSigned(lambda));
    expect(result.request.path).toBe(lambda.path);
    await expect(checkForwarded(result, REAL)).resolves.toMatchObject({ service: 'lambda' });
    expect((await checkForwarded(result, REAL)).error).toBeUndefined();
  });

  it('signs with the current time, not the workload\'s', async () => {
    const old = await headerSigned(DYNAMO, new Date(Date.now() - 3_600_000));
    const result = await run(config(), old);
    expect((await checkForwarded(result, REAL)).error).toBeUndefined();
  });

  it('a re-signed request fails the upstream check when altered afterwards, and with other credentials', async () => {
    const result = await run(config(), await headerSigned(DYNAMO));
    result.request.headers.set('x-amz-target', 'DynamoDB_20120810.DeleteTable');
    await expect(checkForwarded(result, REAL)).resolves.toMatchObject({ error: 'SignatureDoesNotMatch' });
    const again = await run(config(), await headerSigned(DYNAMO));
    await expect(checkForwarded(again, { ...REAL, secretAccessKey: 'another-secret-key-000000000000000000000' })).resolves.toMatchObject({ error: 'SignatureDoesNotMatch' });
  });
});

describe('aws_auth: body handling', () => {
  it('with unsigned_payload signs UNSIGNED-PAYLOAD without reading the body', async () => {
    const result = await run(config({ unsigned_payload: true }), await headerSigned({ ...DYNAMO, service: 's3', host: 's3.us-east-1.amazonaws.com', region: 'us-east-1' }));
    expect(result.request.headers.get('x-amz-content-sha256')).toBe('UNSIGNED-PAYLOAD');
    expect(result.request.body.buffered).toBe(false);
    expect((await checkForwarded(result, REAL)).error).toBeUndefined();
  });

  it('keeps an aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER upload with unsigned_payload, refuses it without', async () => {
    const streaming = await headerSigned({
      method: 'PUT',
      path: '/bucket/key',
      headers: { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': '5' },
      body: '5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n',
    });
    const allowed = await run(config({ unsigned_payload: true }), streaming);
    expect(allowed.decision).toEqual({ action: 'continue' });
    expect(allowed.request.headers.get('x-amz-content-sha256')).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect((await checkForwarded(allowed, REAL)).error).toBeUndefined();

    const refused = await run(config(), streaming);
    expect(refused.decision).toEqual(refusal(400, 'streaming_payload_not_allowed'));
    expect(annotations(refused)).toMatchObject({ payload: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', rejected: 'streaming_payload_not_allowed' });
  });

  it('refuses chunk-signed streaming uploads: their chunk signatures chain from the placeholder', async () => {
    const result = await run(
      config({ unsigned_payload: true }),
      await headerSigned({ method: 'PUT', path: '/bucket/key', headers: { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' }, body: 'x' }),
    );
    expect(result.decision).toEqual(refusal(400, 'signed_chunks_unsupported'));
  });

  it('refuses a chunked body with 400 unless allow_chunked_body; allowed, signs it and forwards it with a Content-Length', async () => {
    const chunked = { ...(await headerSigned(DYNAMO)), headers: { ...(await headerSigned(DYNAMO)).headers, 'Transfer-Encoding': 'chunked' } };
    delete (chunked.headers as Record<string, string>)['content-length'];
    const refused = await run(config(), chunked);
    expect(refused.decision).toEqual(refusal(400, 'chunked_body_not_allowed'));
    expect(annotations(refused)).toMatchObject({ service: 'dynamodb', rejected: 'chunked_body_not_allowed' });

    const allowed = await run(config({ allow_chunked_body: true }), chunked);
    expect(allowed.decision).toEqual({ action: 'continue' });
    expect(allowed.request.headers.get('content-length')).toBe(String(DYNAMO.body.length));
    expect((await checkForwarded(allowed, REAL)).error).toBeUndefined();
    expect(allowed.logs.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([expect.stringContaining('chunked')]);
  });

  it('refuses a body over max_request_body_bytes with 413 body_truncated', async () => {
    const result = await run(config(), { ...(await headerSigned(DYNAMO)), maxBodyBytes: 10 });
    expect(result.decision).toEqual(refusal(413, 'body_truncated'));
    expect(annotations(result)).toMatchObject({ max_request_body_bytes: 10, content_length: DYNAMO.body.length });
  });

  it('refuses a body shorter than its Content-Length with 413', async () => {
    const signed = await headerSigned(DYNAMO);
    const result = await run(config(), { ...signed, headers: { ...signed.headers, 'content-length': '500' } });
    expect(result.decision).toEqual(refusal(413, 'body_truncated'));
  });
});

describe('aws_auth: presigned URLs', () => {
  it('replaces the placeholder signature parameters, keeps the others as sent and the signing window', async () => {
    const at = new Date(Date.now() - 60_000);
    const request = await presigned({ ...S3_GET, query: { 'x-id': 'GetObject', 'X-Amz-Security-Token': PLACEHOLDER.sessionToken } }, { at, expiresIn: 600 });
    const result = await run(config(), request);
    expect(result.decision).toEqual({ action: 'continue' });
    await expect(checkForwarded(result, REAL)).resolves.toMatchObject({ kind: 'query', accessKeyId: REAL.accessKeyId, service: 's3' });
    expect((await checkForwarded(result, REAL)).error).toBeUndefined();
    expectNoPlaceholder(result);
    const params = new URLSearchParams(result.request.query);
    expect(params.get('x-id')).toBe('GetObject');
    expect(params.getAll('X-Amz-Credential')).toHaveLength(1);
    expect(params.get('X-Amz-Expires')).toBe('600');
    expect(params.get('X-Amz-Date')).toBe(at.toISOString().replace(/[-:]|\.\d{3}/g, ''));
    expect(params.has('X-Amz-Security-Token')).toBe(false);
    // The window is the workload's: after it, AWS refuses the URL.
    await expect(checkForwarded(result, REAL, at.getTime() + 601_000)).resolves.toMatchObject({ error: 'RequestExpired' });
    expect(annotations(result)).toMatchObject({ service: 's3', region: 'us-east-1' });
    expect(annotations(result)?.injected).toEqual(expect.arrayContaining(['query:X-Amz-Signature', 'query:X-Amz-Credential']));
  });

  it('gates the presigned scope like a header one', async () => {
    const result = await run(config({ allowed_regions: ['eu-west-1'] }), await presigned(S3_GET));
    expect(result.decision).toEqual(refusal(403, 'region_not_allowed'));
  });
});

describe('aws_auth: refusals', () => {
  it('refuses a request without a SigV4 signature with 400 missing_sigv4', async () => {
    for (const headers of [{}, { Authorization: 'Bearer abc' }, { Authorization: 'AWS4-HMAC-SHA256 Credential=broken' }]) {
      const result = await run(config(), { scheme: 'https', host: 's3.amazonaws.com', headers });
      expect(result.decision).toEqual(refusal(400, 'missing_sigv4'));
      expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'aws_auth', reason: 'missing_sigv4' });
    }
  });

  it('refuses two Authorization headers', async () => {
    const signed = await headerSigned(S3_GET);
    const auth = (signed.headers as Record<string, string>).authorization!;
    const result = await run(config(), { ...signed, headers: { ...signed.headers, authorization: [auth, auth] } });
    expect(result.decision).toEqual(refusal(400, 'missing_sigv4'));
  });

  it('refuses a region or a service outside the allowed sets with 403, naming it', async () => {
    const region = await run(config({ allowed_regions: ['us-east-1'] }), await headerSigned(DYNAMO));
    expect(region.decision).toEqual(refusal(403, 'region_not_allowed'));
    expect(annotations(region)).toEqual({ service: 'dynamodb', region: 'eu-west-1', rejected: 'region_not_allowed' });
    const service = await run(config({ allowed_services: ['s3', 'sts'] }), await headerSigned(DYNAMO));
    expect(service.decision).toEqual(refusal(403, 'service_not_allowed'));
    expect(annotations(service)).toEqual({ service: 'dynamodb', region: 'eu-west-1', rejected: 'service_not_allowed' });
    const both = await run(config({ allowed_regions: ['eu-west-1'], allowed_services: ['dynamodb'] }), await headerSigned(DYNAMO));
    expect(both.decision).toEqual({ action: 'continue' });
  });

  it('answers 502 credential_unavailable when a source has no value, naming the field, never a value', async () => {
    const result = await run(config(), await headerSigned(S3_GET), { AWS_KEY_ID: REAL.accessKeyId });
    expect(result.decision).toEqual(refusal(502, 'credential_unavailable'));
    expect(annotations(result)).toMatchObject({ credential: 'static', error: expect.stringContaining('secret_access_key'), rejected: 'credential_unavailable' });
    expect(JSON.stringify(result.audit)).not.toContain(REAL.accessKeyId);
  });

  it('leaves requests outside its rules, TLS passthrough and tunnel openings untouched', async () => {
    const outside = await run(config({ rules: [{ host: 's3.amazonaws.com' }] }), await headerSigned(DYNAMO));
    expect(outside.decision).toEqual({ action: 'continue' });
    expect(outside.request.headers.get('authorization')).toContain(PLACEHOLDER.accessKeyId);
    const passthrough = await run(config(), { scheme: 'https', host: 's3.amazonaws.com', mode: 'sni-only', path: '', method: '' });
    expect(passthrough.decision).toEqual({ action: 'continue' });
    const tunnel = await run(config(), { method: 'CONNECT', host: 's3.amazonaws.com', port: 443, mode: 'tunnel' });
    expect(tunnel.decision).toEqual({ action: 'continue' });
    expect(tunnel.audit.request_transforms).toEqual([]);
  });
});

describe('aws_auth: config', () => {
  it('accepts the documented forms', () => {
    expect(validateTransformConfig(awsAuthTransform, config())).toEqual([]);
    expect(validateTransformConfig(awsAuthTransform, config({ session_token: { type: 'env', var: 'T' }, allowed_regions: ['us-east-1'], allowed_services: ['s3'] }))).toEqual([]);
    expect(validateTransformConfig(awsAuthTransform, { credentials_provider: { type: 'workload_identity', region: 'us-east-1' }, rules: [{ host: '*' }] })).toEqual([]);
  });

  it('refuses both credential forms, neither, half a pair, no rules, a bad region and a typo, naming the field', () => {
    const provider = { credentials_provider: { type: 'workload_identity' } };
    const rules = [{ host: '*' }];
    const paths = (cfg: Record<string, unknown>) => validateTransformConfig(awsAuthTransform, cfg).map((i) => i.path);
    expect(paths(config(provider))).toEqual(expect.arrayContaining(['access_key_id', 'secret_access_key']));
    expect(paths({ rules })).not.toEqual([]);
    expect(paths({ access_key_id: { type: 'env', var: 'A' }, rules })).not.toEqual([]);
    expect(paths({ ...provider, session_token: { type: 'env', var: 'T' }, rules })).toContain('session_token');
    expect(paths(config({ rules: [] }))).toEqual(['rules']);
    expect(paths(config({ unsigned_paylod: true }))).toEqual([expect.stringContaining('unsigned_paylod')]);
    expect(paths(config({ allowed_regions: ['US-EAST-1'] }))).toEqual(['allowed_regions[0]']);
    expect(paths({ credentials_provider: { type: 'static' }, rules })).toEqual(['credentials_provider.type']);
  });
});
