import { readFileSync } from 'node:fs';
import { ConfigError, ErrorCodes, isTransformDefinition } from '@proxy/core';
import type { TransformEnv } from '@proxy/core';
import { runTransform, validateTransformConfig } from '@proxy/core/testing';
import { describe, expect, it } from 'vitest';
import requestGuardDefault, { requestGuard } from './index.js';

const packageName = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string }).name;

const config = {
  deny_user_agents: ['^curl/', 'python-requests'],
  require_headers: ['X-Team'],
};

describe('package exports', () => {
  it('exports one valid definition, as default and by name, named after the package', () => {
    expect(requestGuardDefault).toBe(requestGuard);
    expect(isTransformDefinition(requestGuard)).toBe(true);
    expect(requestGuard.name).toBe(packageName);
  });
});

describe('allow', () => {
  it('lets a request with an allowed user agent and the required header through, untouched', async () => {
    const result = await runTransform(requestGuard, config, {
      host: 'api.example.com',
      headers: { 'User-Agent': 'acme-ci/2.1', 'X-Team': 'payments' },
    });
    expect(result.decision.action).toBe('continue');
    expect(result.audit.action).toBe('allow');
    expect(result.audit.request_transforms).toEqual([expect.objectContaining({ name: packageName, action: 'allow' })]);
    expect(result.request.headers.get('x-team')).toBe('payments');
  });

  it('finds a required header whatever its casing', async () => {
    const result = await runTransform(requestGuard, { require_headers: ['X-Team'] }, { headers: { 'x-team': 'a' } });
    expect(result.decision.action).toBe('continue');
  });
});

describe('reject', () => {
  it('refuses a denied user agent with 403 and names the pattern in the audit record', async () => {
    const result = await runTransform(requestGuard, config, { headers: { 'User-Agent': 'curl/8.5.0', 'X-Team': 'payments' } });
    expect(result.decision).toMatchObject({ action: 'reject', status: 403, reason: 'user_agent_denied' });
    expect(result.audit).toMatchObject({ action: 'reject', rejected_by: packageName, reason: 'user_agent_denied' });
    expect(result.audit.request_transforms[0]?.annotations).toMatchObject({ user_agent_pattern: '^curl/' });
  });

  it('matches user-agent patterns case-insensitively and against every User-Agent field', async () => {
    const result = await runTransform(requestGuard, config, {
      headers: [
        ['User-Agent', 'acme-ci/2.1'],
        ['User-Agent', 'Python-Requests/2.32'],
        ['X-Team', 'payments'],
      ],
    });
    expect(result.decision).toMatchObject({ action: 'reject', reason: 'user_agent_denied' });
    expect(result.audit.request_transforms[0]?.annotations).toMatchObject({ user_agent_pattern: 'python-requests' });
  });

  it('refuses a request without a required header, or with an empty one', async () => {
    for (const headers of [{ 'User-Agent': 'acme-ci/2.1' }, { 'User-Agent': 'acme-ci/2.1', 'X-Team': '  ' }]) {
      const result = await runTransform(requestGuard, config, { headers });
      expect(result.decision).toMatchObject({ action: 'reject', status: 403, reason: 'header_missing' });
      expect(result.audit.request_transforms[0]?.annotations).toMatchObject({ missing_header: 'X-Team' });
    }
  });

  it('answers with the configured status', async () => {
    const result = await runTransform(requestGuard, { ...config, reject_status: 429 }, { headers: { 'User-Agent': 'curl/8.5.0' } });
    expect(result.decision).toMatchObject({ action: 'reject', status: 429 });
  });

  it('fails closed on a TLS passthrough request, whose headers it cannot see', async () => {
    const result = await runTransform(requestGuard, config, { scheme: 'https', host: 'api.example.com', port: 443, mode: 'sni-only' });
    expect(result.decision).toMatchObject({ action: 'reject', reason: 'headers_uninspectable' });
  });
});

describe('rules scoping', () => {
  const scoped = { ...config, rules: [{ host: '*.example.com', methods: ['POST'], paths: ['/v1/*'] }] };
  const curl = { 'User-Agent': 'curl/8.5.0' };

  it('applies the policy to requests its rules match', async () => {
    const result = await runTransform(requestGuard, scoped, { method: 'POST', host: 'api.example.com', path: '/v1/charges', headers: curl });
    expect(result.decision).toMatchObject({ action: 'reject', reason: 'header_missing' });
  });

  it('leaves requests outside its rules alone', async () => {
    for (const request of [
      { method: 'POST', host: 'api.example.org', path: '/v1/charges' },
      { method: 'GET', host: 'api.example.com', path: '/v1/charges' },
      { method: 'POST', host: 'api.example.com', path: '/v2/charges' },
    ]) {
      const result = await runTransform(requestGuard, scoped, { ...request, headers: curl });
      expect(result.decision.action, `${request.method} ${request.host}${request.path}`).toBe('continue');
    }
  });

  it('does not refuse a TLS passthrough request to a destination outside its rules', async () => {
    const result = await runTransform(requestGuard, { ...config, rules: [{ host: 'api.example.com' }] }, {
      scheme: 'https',
      host: 'other.example.net',
      port: 443,
      mode: 'sni-only',
    });
    expect(result.decision.action).toBe('continue');
  });
});

describe('metrics', () => {
  it('counts rejections by reason on the meter it is given', async () => {
    const added: { value: number; attributes: unknown }[] = [];
    const meter = {
      createCounter: () => ({ add: (value: number, attributes?: unknown) => added.push({ value, attributes }) }),
    } as unknown as TransformEnv['meter'];
    await runTransform(requestGuard, config, { headers: { 'User-Agent': 'curl/8.5.0', 'X-Team': 'a' } }, { transformEnv: { meter } });
    await runTransform(requestGuard, config, { headers: { 'User-Agent': 'acme-ci/2.1', 'X-Team': 'a' } }, { transformEnv: { meter } });
    expect(added).toEqual([{ value: 1, attributes: { reason: 'user_agent_denied' } }]);
  });
});

describe('config schema', () => {
  it('accepts a valid config', () => {
    expect(validateTransformConfig(requestGuard, config)).toEqual([]);
  });

  it.each([
    ['an unknown key', { ...config, deny_user_agent: ['curl'] }, 'deny_user_agent'],
    ['a config that checks nothing', { rules: [{ host: 'api.example.com' }] }, ''],
    ['a status that is not a client error', { ...config, reject_status: 500 }, 'reject_status'],
    ['a header name with a space', { require_headers: ['X Team'] }, 'require_headers[0]'],
    ['an empty rules list', { ...config, rules: [] }, 'rules'],
    ['a rule with an unknown key', { ...config, rules: [{ host: 'api.example.com', port: 443 }] }, 'rules[0].port'],
    ['a malformed host glob', { ...config, rules: [{ host: 'api example com' }] }, 'rules[0].host'],
  ])('reports %s at its field', (_label, bad, path) => {
    expect(validateTransformConfig(requestGuard, bad)).toContainEqual(expect.objectContaining({ path }));
  });

  it('makes runTransform throw a ConfigError for an invalid config', async () => {
    await expect(runTransform(requestGuard, { reject_status: 403 })).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses to create a guard from a pattern that is not a regular expression, naming the field', async () => {
    await expect(runTransform(requestGuard, { deny_user_agents: ['^curl/', 'python-(requests'] })).rejects.toMatchObject({
      code: ErrorCodes.TRANSFORM_CREATE_FAILED,
      message: expect.stringContaining('deny_user_agents[1]: not a valid regular expression'),
    });
  });
});
