import { describe, expect, it } from 'vitest';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import bodyCapture, { bodyCaptureTransform } from '../src/index.js';

const annotationsOf = (result: Awaited<ReturnType<typeof runTransform>>) => result.audit.request_transforms[0]?.annotations;

describe('body_capture', () => {
  it('exports the definition as default and by name', () => {
    expect(bodyCapture).toBe(bodyCaptureTransform);
    expect(bodyCapture.name).toBe('body_capture');
  });

  it('records a body under the cap and still forwards it whole', async () => {
    const body = '{"model":"m","prompt":"hello"}';
    const result = await runTransform(bodyCapture, {}, { method: 'POST', body });
    expect(result.decision.action).toBe('continue');
    expect(annotationsOf(result)).toEqual({ request_body: body });
    expect(result.forwardedBody.toString()).toBe(body);
  });

  it('truncates a body over the cap and says so', async () => {
    const body = 'a'.repeat(100);
    const result = await runTransform(bodyCapture, { max_request_body_bytes: 10 }, { method: 'POST', body });
    expect(annotationsOf(result)).toEqual({ request_body: 'a'.repeat(10), request_body_truncated: true });
    expect(result.forwardedBody.toString()).toBe(body);
  });

  it('defaults the cap to 16 KiB', async () => {
    const result = await runTransform(bodyCapture, {}, { method: 'POST', body: 'b'.repeat(20000) });
    expect(annotationsOf(result)).toEqual({ request_body: 'b'.repeat(16384), request_body_truncated: true });
  });

  it('does not split a UTF-8 character at the cap', async () => {
    const result = await runTransform(bodyCapture, { max_request_body_bytes: 4 }, { method: 'POST', body: 'abc€def' });
    expect(annotationsOf(result)).toEqual({ request_body: 'abc', request_body_truncated: true });
  });

  it('records nothing for a request without a body', async () => {
    const result = await runTransform(bodyCapture, {}, { method: 'GET' });
    expect(annotationsOf(result)).toBeUndefined();
  });

  it('only captures requests matching its rules', async () => {
    const config = { rules: [{ host: 'api.anthropic.com', methods: ['POST'], paths: ['/v1/messages'] }] };
    const outside = await runTransform(bodyCapture, config, { method: 'POST', host: 'api.anthropic.com', path: '/v1/other', body: 'x' });
    expect(annotationsOf(outside)).toBeUndefined();
    const inside = await runTransform(bodyCapture, config, { method: 'POST', host: 'api.anthropic.com', path: '/v1/messages', body: 'x' });
    expect(annotationsOf(inside)).toEqual({ request_body: 'x' });
  });

  it('annotates a read error instead of rejecting', async () => {
    const result = await runTransform(bodyCapture, {}, { method: 'POST', body: 'c'.repeat(64), maxBodyBytes: 16 });
    expect(result.decision.action).toBe('continue');
    expect(result.audit.request_transforms[0]).toMatchObject({ action: 'allow', annotations: { request_body_error: 'body_too_large' } });
  });

  it.each([
    ['an unknown key', { max_body: 1 }],
    ['a non-integer cap', { max_request_body_bytes: 1.5 }],
    ['a zero cap', { max_request_body_bytes: 0 }],
    ['a bad rule', { rules: [{ methods: ['GET'] }] }],
  ])('rejects a config with %s', (_, bad) => {
    expect(validateTransformConfig(bodyCapture, bad).length).toBeGreaterThan(0);
  });
});
