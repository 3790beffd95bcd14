import { describe, expect, it } from 'vitest';
import { AuditBuilder, SecretRedactor, createPipeline, createTransformEnv, systemClock, type TransformDefinition } from '@proxy/core';
import { recordingLogger, runTransform, testRequest, validateTransformConfig, type LogEntry } from '@proxy/core/testing';
import secretsTransform from '@proxy/transform-secrets';
import headerCapture, { DEFAULT_MAX_HEADERS, REDACTED, headerCaptureTransform } from '../src/index.js';

type Result = Awaited<ReturnType<typeof runTransform>>;
const annotationsOf = (result: Result) => result.audit.request_transforms[0]?.annotations;

describe('header_capture', () => {
  it('exports the definition as default and by name', () => {
    expect(headerCapture).toBe(headerCaptureTransform);
    expect(headerCapture.name).toBe('header_capture');
  });

  it('records the chosen headers under their canonical names and leaves the request alone', async () => {
    const headers = { 'x-request-id': 'req-1', 'User-Agent': 'agent/1.0', Accept: 'text/plain' };
    const result = await runTransform(headerCapture, { headers: ['X-Request-Id', 'user-agent'] }, { headers });
    expect(result.decision.action).toBe('continue');
    expect(annotationsOf(result)).toEqual({ headers: { 'X-Request-Id': 'req-1', 'User-Agent': 'agent/1.0' } });
    expect(result.request.headers.get('x-request-id')).toBe('req-1');
    expect(result.request.headers.get('accept')).toBe('text/plain');
  });

  it('records every value of a repeated header, in order', async () => {
    const result = await runTransform(headerCapture, { headers: ['X-Trace'] }, { headers: [['X-Trace', 'a'], ['x-trace', 'b']] });
    expect(annotationsOf(result)).toEqual({ headers: { 'X-Trace': ['a', 'b'] } });
  });

  it('matches /regex/ patterns against the canonical name', async () => {
    const result = await runTransform(
      headerCapture,
      { headers: ['/^X-Ci-/'] },
      { headers: { 'x-ci-job': '42', 'X-CI-Runner': 'r7', 'X-Other': 'no' } },
    );
    expect(annotationsOf(result)).toEqual({ headers: { 'X-Ci-Job': '42', 'X-Ci-Runner': 'r7' } });
  });

  it('records credential headers as present, never their value', async () => {
    const headers = {
      Authorization: 'Bearer sk-live-0123456789',
      'Proxy-Authorization': 'Basic dXNlcjpwYXNzd29yZA==',
      Cookie: 'session=abcdef123456',
      'X-Api-Key': 'key-0123456789',
      'X-Auth-Token': 'tok-0123456789',
      'X-Amz-Security-Token': 'FwoGZXIvYXdzEJr',
      'Private-Token': 'glpat-0123456789',
      'X-Request-Id': 'req-2',
    };
    const result = await runTransform(headerCapture, { headers: Object.keys(headers) }, { headers });
    const recorded = annotationsOf(result)?.['headers'];
    expect(recorded).toEqual({
      Authorization: REDACTED,
      'Proxy-Authorization': REDACTED,
      Cookie: REDACTED,
      'X-Api-Key': REDACTED,
      'X-Auth-Token': REDACTED,
      'X-Amz-Security-Token': REDACTED,
      'Private-Token': REDACTED,
      'X-Request-Id': 'req-2',
    });
    const text = JSON.stringify(result.audit);
    for (const [name, value] of Object.entries(headers)) {
      if (name !== 'X-Request-Id') expect(text).not.toContain(value);
    }
  });

  it('redacts credential headers a regex pattern pulls in, and a repeated one once', async () => {
    const result = await runTransform(
      headerCapture,
      { headers: ['/.*/'] },
      { headers: [['Authorization', 'Bearer one-secret-value'], ['authorization', 'Bearer two-secret-value'], ['X-Request-Id', 'r']] },
    );
    expect(annotationsOf(result)?.['headers']).toEqual({ Host: 'example.com', Authorization: REDACTED, 'X-Request-Id': 'r' });
    expect(JSON.stringify(result.audit)).not.toMatch(/secret-value/);
  });

  it('adds redact_headers to the built-in list and cannot take a built-in away', async () => {
    const config = { headers: ['X-Tenant', 'Authorization'], redact_headers: ['X-Tenant'] };
    const result = await runTransform(headerCapture, config, { headers: { 'X-Tenant': 'acme-internal', Authorization: 'Bearer abcdefgh' } });
    expect(annotationsOf(result)?.['headers']).toEqual({ 'X-Tenant': REDACTED, Authorization: REDACTED });
  });

  it('replaces a known secret value in a header that is not on the redaction list', async () => {
    const redactor = new SecretRedactor();
    redactor.add('real-secret-value-42', 'UPSTREAM_TOKEN');
    const result = await runTransform(
      headerCapture,
      { headers: ['X-Upstream'] },
      { headers: { 'X-Upstream': 'prefix real-secret-value-42 suffix' } },
      { transformEnv: { redactor } },
    );
    expect(annotationsOf(result)?.['headers']).toEqual({ 'X-Upstream': 'prefix [redacted:UPSTREAM_TOKEN] suffix' });
  });

  it('cuts an oversized value at max_value_bytes on a character boundary and says so', async () => {
    const result = await runTransform(
      headerCapture,
      { headers: ['X-Big', 'X-Small', 'X-Euro'], max_value_bytes: 8 },
      { headers: { 'X-Big': 'a'.repeat(10_000), 'X-Small': 'abc', 'X-Euro': 'abcdef€g' } },
    );
    expect(annotationsOf(result)).toEqual({
      headers: { 'X-Big': 'a'.repeat(8), 'X-Small': 'abc', 'X-Euro': 'abcdef' },
      headers_truncated: ['X-Big', 'X-Euro'],
    });
  });

  it('cuts after replacing a known secret, so no part of it is left at the cut', async () => {
    const redactor = new SecretRedactor();
    redactor.add('0123456789abcdef', 'LONG_SECRET');
    const result = await runTransform(
      headerCapture,
      { headers: ['X-Value'], max_value_bytes: 12 },
      { headers: { 'X-Value': 'xx0123456789abcdef' } },
      { transformEnv: { redactor } },
    );
    const recorded = (annotationsOf(result)?.['headers'] as Record<string, string>)['X-Value']!;
    expect(recorded).toBe('xx[redacted:');
    expect(recorded).not.toContain('0123');
  });

  it('defaults the value cap to 512 bytes', async () => {
    const result = await runTransform(headerCapture, { headers: ['X-Big'] }, { headers: { 'X-Big': 'b'.repeat(2000) } });
    expect(annotationsOf(result)).toEqual({ headers: { 'X-Big': 'b'.repeat(512) }, headers_truncated: ['X-Big'] });
  });

  it('records at most max_headers values and counts the rest', async () => {
    const headers = Array.from({ length: 10 }, (_, i) => [`X-H${i}`, `v${i}`] as const);
    const result = await runTransform(headerCapture, { headers: ['/^X-H/'], max_headers: 3 }, { headers });
    expect(annotationsOf(result)).toEqual({ headers: { 'X-H0': 'v0', 'X-H1': 'v1', 'X-H2': 'v2' }, headers_dropped: 7 });
  });

  it('bounds a request with many headers by the default of 32 values', async () => {
    const headers = Array.from({ length: 500 }, (_, i) => ['X-Many', `value-${i}`] as const);
    const result = await runTransform(headerCapture, { headers: ['X-Many'] }, { headers });
    const recorded = (annotationsOf(result)?.['headers'] as Record<string, string[]>)['X-Many']!;
    expect(recorded).toHaveLength(DEFAULT_MAX_HEADERS);
    expect(recorded[31]).toBe('value-31');
    expect(annotationsOf(result)?.['headers_dropped']).toBe(500 - DEFAULT_MAX_HEADERS);
  });

  it('records nothing when no chosen header is present', async () => {
    const result = await runTransform(headerCapture, { headers: ['X-Missing'] }, { headers: { 'X-Other': '1' } });
    expect(annotationsOf(result)).toBeUndefined();
  });

  it('only captures requests matching its rules', async () => {
    const config = { headers: ['X-Request-Id'], rules: [{ host: 'api.example.com', methods: ['POST'] }] };
    const headers = { 'X-Request-Id': 'r1' };
    const outside = await runTransform(headerCapture, config, { method: 'GET', host: 'api.example.com', headers });
    expect(annotationsOf(outside)).toBeUndefined();
    const inside = await runTransform(headerCapture, config, { method: 'POST', host: 'api.example.com', headers });
    expect(annotationsOf(inside)).toEqual({ headers: { 'X-Request-Id': 'r1' } });
  });

  it('rejects configs an operator might get wrong', () => {
    const paths = (config: unknown) => validateTransformConfig(headerCapture, config).map((i) => i.path);
    expect(paths({})).toEqual(['headers']);
    expect(paths({ headers: [] }).join()).toMatch(/headers/);
    expect(paths({ headers: ['/[unclosed/'] }).join()).toMatch(/headers\/0|headers\[0\]/);
    expect(paths({ headers: ['X-A'], max_value_bytes: 0 }).join()).toMatch(/max_value_bytes/);
    expect(paths({ headers: ['X-A'], max_headers: 0 }).join()).toMatch(/max_headers/);
    expect(paths({ headers: ['X-A'], redact: ['X-B'] }).join()).toMatch(/redact/);
    expect(validateTransformConfig(headerCapture, { headers: ['X-A'] })).toEqual([]);
  });
});

describe('header_capture after secrets', () => {
  /** Runs `secrets` then `header_capture` through the pipeline runner, sharing one redactor as the app does. */
  async function runAfterSecrets(headers: Record<string, string>): Promise<{ audit: string; forwarded: string | undefined; logs: LogEntry[] }> {
    const redactor = new SecretRedactor();
    const logs: LogEntry[] = [];
    const logger = recordingLogger(logs);
    const controller = new AbortController();
    const env = { CAPTURE_TEST_TOKEN: 'real-token-value-0123456789' };
    const specs = [
      {
        definition: secretsTransform as TransformDefinition,
        config: { secrets: [{ source: { type: 'env', var: 'CAPTURE_TEST_TOKEN' }, rules: [], replace: { proxy_value: 'proxy-placeholder', match_headers: ['X-Upstream-Key', 'X-Custom'] } }] },
        index: 0,
      },
      {
        definition: headerCapture as TransformDefinition,
        config: { headers: ['X-Upstream-Key', 'X-Custom'], redact_headers: [], max_value_bytes: 512, max_headers: 32, rules: [] },
        index: 1,
      },
    ];
    const pipeline = await createPipeline(
      specs,
      (_spec, instanceId) => createTransformEnv({ instanceId, logger, http: () => Promise.reject(new Error('offline')), signal: controller.signal, env, redactor }),
      { logger, clock: systemClock },
    );
    const request = testRequest({ headers });
    const audit = new AuditBuilder(request);
    await pipeline.runRequest(request, audit);
    await pipeline.close();
    controller.abort();
    return { audit: JSON.stringify(audit.finish(200, Date.now())), forwarded: request.headers.get('x-custom'), logs };
  }

  it('never records the secret that secrets swapped in, on or off the redaction list', async () => {
    const result = await runAfterSecrets({ 'X-Upstream-Key': 'proxy-placeholder', 'X-Custom': 'v=proxy-placeholder' });
    // The swap happened: the secret is what would be forwarded...
    expect(result.forwarded).toBe('v=real-token-value-0123456789');
    // ...and the record holds neither it nor any part of it.
    expect(result.audit).not.toContain('real-token-value');
    expect(result.audit).toContain('"X-Upstream-Key":"[redacted]"');
    expect(result.audit).toContain('"X-Custom":"v=[redacted:CAPTURE_TEST_TOKEN]"');
    expect(JSON.stringify(result.logs)).not.toContain('real-token-value');
  });
});
