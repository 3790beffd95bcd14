import { describe, expect, it } from 'vitest';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import headerAllowlist, { headerAllowlistTransform } from '../src/index.js';

const config = { headers: ['Authorization', 'content-type', '/^X-Trace-.*$/'] };

const request = {
  method: 'POST',
  host: 'api.openai.com',
  headers: [
    ['Host', 'api.openai.com'],
    ['authorization', 'Bearer x'],
    ['Content-Type', 'application/json'],
    ['Cookie', 'session=1'],
    ['x-trace-id', 'abc'],
    ['X-TRACE-SPAN', 'def'],
    ['X-Debug', '1'],
    ['cookie', 'other=2'],
    ['User-Agent', 'curl/8'],
  ] as const,
  body: '{}',
};

describe('header_allowlist', () => {
  it('exports the definition as default and by name', () => {
    expect(headerAllowlist).toBe(headerAllowlistTransform);
    expect(headerAllowlist.name).toBe('header_allowlist');
  });

  it('keeps listed headers (literal and regex, any casing) and strips the rest', async () => {
    const result = await runTransform(headerAllowlist, config, request);
    expect(result.decision.action).toBe('continue');
    const kept = [...result.request.headers].map(([name]) => name);
    expect(kept).toEqual(['Host', 'authorization', 'Content-Type', 'x-trace-id', 'X-TRACE-SPAN', 'Content-Length']);
    expect(result.audit.request_transforms[0]).toMatchObject({
      name: 'header_allowlist',
      action: 'allow',
      annotations: { stripped_headers: ['Cookie', 'X-Debug', 'User-Agent'] },
    });
    expect(result.forwardedBody.toString()).toBe('{}');
  });

  it('with a list matching nothing strips everything but the engine-managed framing headers', async () => {
    const result = await runTransform(headerAllowlist, { headers: ['X-Not-Sent'] }, request);
    expect([...result.request.headers].map(([name]) => name.toLowerCase())).toEqual(['host', 'content-length']);
  });

  it('keeps Transfer-Encoding', async () => {
    const result = await runTransform(headerAllowlist, { headers: ['X-Not-Sent'] }, { headers: { 'Transfer-Encoding': 'chunked', 'X-Other': '1' } });
    expect(result.request.headers.get('transfer-encoding')).toBe('chunked');
    expect(result.request.headers.has('x-other')).toBe(false);
  });

  it('leaves requests outside its rules untouched', async () => {
    const scoped = { ...config, rules: [{ host: 'api.openai.com', methods: ['POST'] }] };
    const outside = await runTransform(headerAllowlist, scoped, { ...request, host: 'example.com' });
    expect(outside.request.headers.get('cookie')).toBe('session=1');
    expect(outside.audit.request_transforms[0]?.annotations).toBeUndefined();
    const inside = await runTransform(headerAllowlist, scoped, request);
    expect(inside.request.headers.has('cookie')).toBe(false);
  });

  it('annotates nothing when nothing was stripped', async () => {
    const result = await runTransform(headerAllowlist, config, { headers: { Authorization: 'x' } });
    expect(result.audit.request_transforms[0]?.annotations).toBeUndefined();
  });

  it.each([
    ['an unknown key', { header: ['a'] }],
    ['no headers (iron-proxy refuses it)', {}],
    ['an empty headers list', { headers: [] }],
    ['a regex that does not compile', { headers: ['/(unclosed/'] }],
    ['a rule with an unknown key', { rules: [{ host: 'a.com', extra: 1 }] }],
  ])('rejects a config with %s', (_, bad) => {
    expect(validateTransformConfig(headerAllowlist, bad).length).toBeGreaterThan(0);
  });
});
