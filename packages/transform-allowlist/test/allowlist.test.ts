import { describe, expect, it } from 'vitest';
import type { Logger } from '@proxy/core';
import { runTransform, validateTransformConfig, type TestRequestInit } from '@proxy/core/testing';
import allowlist, { allowlistTransform } from '../src/index.js';

const config = {
  domains: ['registry.npmjs.org', '*.anthropic.com'],
  cidrs: ['10.0.0.0/8'],
  rules: [{ host: 'api.github.com', methods: ['GET'], paths: ['/repos/*'] }],
};

/** A logger that keeps what was logged at warn level. */
function recordingLogger(): Logger & { warnings: object[] } {
  const warnings: object[] = [];
  const logger = {
    warnings,
    debug() {},
    info() {},
    warn(obj: object | string) {
      warnings.push(typeof obj === 'string' ? { msg: obj } : obj);
    },
    error() {},
    child: () => logger,
  };
  return logger;
}

describe('allowlist', () => {
  it('exports the definition as default and by name, declaring that it decides destinations', () => {
    expect(allowlist).toBe(allowlistTransform);
    expect(allowlist.name).toBe('allowlist');
    expect(allowlist.decidesDestinations).toBe(true);
  });

  it.each<[string, TestRequestInit]>([
    ['an exact domain', { host: 'registry.npmjs.org' }],
    ['a subdomain of a wildcard', { host: 'api.anthropic.com' }],
    ['the apex of a wildcard', { host: 'anthropic.com' }],
    ['an IP in a CIDR', { host: '10.1.2.3' }],
    ['a rule with its method and path', { host: 'api.github.com', method: 'GET', path: '/repos/acme/app' }],
  ])('allows %s', async (_, request) => {
    const result = await runTransform(allowlist, config, request);
    expect(result.decision.action).toBe('continue');
    expect(result.audit.action).toBe('allow');
    expect(result.audit.request_transforms[0]).toMatchObject({ name: 'allowlist', action: 'continue' });
  });

  it.each<[string, TestRequestInit]>([
    ['an unknown host', { host: 'evil.example.com' }],
    ['a lookalike suffix', { host: 'notanthropic.com' }],
    ['an IP outside the CIDRs', { host: '192.168.1.1' }],
    ['a rule host with another method', { host: 'api.github.com', method: 'POST', path: '/repos/acme/app' }],
    ['a rule host with another path', { host: 'api.github.com', method: 'GET', path: '/user' }],
    // The CIDRs match IP literals strictly: an IPv6 address embedding an allowed IPv4 one is not allowed.
    ['a NAT64 address embedding an IP in a CIDR', { host: '64:ff9b::a01:203' }],
    ['a 6to4 address embedding an IP in a CIDR', { host: '2002:a01:203::1' }],
    ['an IPv4-compatible address embedding an IP in a CIDR', { host: '::10.1.2.3' }],
  ])('blocks %s with 403 not_allowlisted', async (_, request) => {
    const result = await runTransform(allowlist, config, request);
    expect(result.decision).toMatchObject({ action: 'reject', status: 403, reason: 'not_allowlisted' });
    expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'allowlist', reason: 'not_allowlisted' });
    expect(result.audit.request_transforms[0]).toMatchObject({
      name: 'allowlist',
      action: 'reject',
      annotations: { host: request.host },
    });
  });

  it('opens a tunnel to a host any rule names, and keeps host-only passthrough to unrestricted entries', async () => {
    const opening = (host: string): TestRequestInit => ({ host, mode: 'tunnel', method: '', path: '' });
    for (const host of ['api.github.com', 'registry.npmjs.org', '10.1.2.3']) {
      expect((await runTransform(allowlist, config, opening(host))).decision.action, host).toBe('continue');
    }
    expect((await runTransform(allowlist, config, opening('evil.example.com'))).decision).toMatchObject({ action: 'reject', status: 403 });
    const passthrough = await runTransform(allowlist, config, { host: 'api.github.com', mode: 'sni-only', method: '', path: '' });
    expect(passthrough.decision).toMatchObject({ action: 'reject', status: 403 });
    const inside = await runTransform(allowlist, config, { host: 'api.github.com', mode: 'mitm', method: 'POST', path: '/repos/acme/app' });
    expect(inside.decision).toMatchObject({ action: 'reject', status: 403 });
  });

  it('blocks everything when empty', async () => {
    for (const host of ['example.com', '127.0.0.1', 'registry.npmjs.org']) {
      const result = await runTransform(allowlist, {}, { host });
      expect(result.decision).toMatchObject({ action: 'reject', status: 403 });
    }
  });

  it('lets everything through with a bare "*"', async () => {
    const result = await runTransform(allowlist, { domains: ['*'] }, { host: 'anything.example.org' });
    expect(result.decision.action).toBe('continue');
  });

  it('in warn mode lets a violation through, annotates it and logs a warning', async () => {
    const logger = recordingLogger();
    const result = await runTransform(allowlist, { ...config, warn: true }, { host: 'evil.example.com', path: '/x' }, { transformEnv: { logger } });
    expect(result.decision.action).toBe('continue');
    expect(result.audit.action).toBe('allow');
    expect(result.audit.request_transforms[0]).toMatchObject({
      action: 'continue',
      annotations: { warn: true, would_reject: 'not_allowlisted', host: 'evil.example.com' },
    });
    expect(logger.warnings).toEqual([expect.objectContaining({ host: 'evil.example.com', reason: 'not_allowlisted' })]);
  });

  it('in warn mode adds nothing to allowed requests', async () => {
    const logger = recordingLogger();
    const result = await runTransform(allowlist, { ...config, warn: true }, { host: 'registry.npmjs.org' }, { transformEnv: { logger } });
    expect(result.audit.request_transforms[0]?.annotations).toBeUndefined();
    expect(logger.warnings).toEqual([]);
  });

  it.each([
    ['an unknown key', { domain: ['x.com'] }],
    ['a bad CIDR', { cidrs: ['10.0.0.0/99'] }],
    ['a rule with host and cidr', { rules: [{ host: 'a.com', cidr: '10.0.0.0/8' }] }],
    ['a rule with an unknown key', { rules: [{ host: 'a.com', verbs: ['GET'] }] }],
    ['a non-boolean warn', { warn: 'yes' }],
  ])('rejects a config with %s', (_, bad) => {
    expect(validateTransformConfig(allowlist, bad).length).toBeGreaterThan(0);
  });

  it('accepts the documented config', () => {
    expect(validateTransformConfig(allowlist, { ...config, warn: false })).toEqual([]);
  });
});
