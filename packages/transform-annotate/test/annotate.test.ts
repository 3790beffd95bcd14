import { describe, expect, it } from 'vitest';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import annotate, { annotateTransform } from '../src/index.js';

const config = {
  annotations: [
    { rules: [{ host: 'api.openai.com', methods: ['POST'], paths: ['/v1/*'] }], headers: ['x-request-id', 'authorization'] },
    { rules: [{ host: '*' }], headers: ['X-Team'] },
  ],
};

describe('annotate', () => {
  it('exports the definition as default and by name', () => {
    expect(annotate).toBe(annotateTransform);
    expect(annotate.name).toBe('annotate');
  });

  it('records the chosen headers of a matching request under canonical names', async () => {
    const result = await runTransform(annotate, config, {
      method: 'POST',
      host: 'api.openai.com',
      path: '/v1/chat',
      headers: { 'X-Request-ID': 'req-abc123', Authorization: 'Bearer pk-proxy-1', 'x-team': 'infra', 'X-Other': 'no' },
    });
    expect(result.decision.action).toBe('continue');
    expect(result.audit.request_transforms[0]).toMatchObject({
      name: 'annotate',
      action: 'allow',
      annotations: { 'header:X-Request-Id': 'req-abc123', 'header:Authorization': 'Bearer pk-proxy-1', 'header:X-Team': 'infra' },
    });
    expect(Object.keys(result.audit.request_transforms[0]!.annotations!)).toHaveLength(3);
    expect(result.request.headers.get('x-request-id')).toBe('req-abc123');
  });

  it('skips groups whose rules do not match and headers that are absent', async () => {
    const result = await runTransform(annotate, config, {
      method: 'GET',
      host: 'api.openai.com',
      path: '/v1/chat',
      headers: { 'X-Request-Id': 'req-1' },
    });
    expect(result.audit.request_transforms[0]?.annotations).toBeUndefined();
  });

  it('joins repeated header fields', async () => {
    const result = await runTransform(annotate, { annotations: [{ rules: [{ host: '*' }], headers: ['x-tag'] }] }, { headers: [['X-Tag', 'a'], ['x-tag', 'b']] });
    expect(result.audit.request_transforms[0]?.annotations).toEqual({ 'header:X-Tag': 'a, b' });
  });

  it('never rejects', async () => {
    const result = await runTransform(annotate, {}, { host: 'anything.example' });
    expect(result.decision.action).toBe('continue');
  });

  it.each([
    ['an unknown key', { annotation: [] }],
    ['a group without headers', { annotations: [{ rules: [{ host: 'a.com' }] }] }],
    ['a group without rules (iron-proxy refuses it)', { annotations: [{ headers: ['a'] }] }],
    ['a group with empty rules', { annotations: [{ rules: [], headers: ['a'] }] }],
    ['a group with an unknown key', { annotations: [{ rules: [{ host: '*' }], headers: ['a'], when: 1 }] }],
    ['an invalid header name', { annotations: [{ rules: [{ host: '*' }], headers: ['bad header'] }] }],
  ])('rejects a config with %s', (_, bad) => {
    expect(validateTransformConfig(annotate, bad).length).toBeGreaterThan(0);
  });
});
