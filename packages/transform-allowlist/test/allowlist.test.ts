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
    expect(result.audit.request_transforms[0]).toMatchObject({ name: 'allowlist', action: 'allow' });
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
      annotations: { host: request.host, port: 80 },
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

  describe('ports', () => {
    const decision = async (cfg: object, request: TestRequestInit) => (await runTransform(allowlist, cfg, request)).decision;
    const opening = (host: string, port: number): TestRequestInit => ({ host, port, scheme: 'https', mode: 'tunnel', method: '', path: '' });

    it('allows port 80, and 443 only for TLS, to an entry that names no port', async () => {
      for (const host of ['registry.npmjs.org', 'api.anthropic.com', '10.1.2.3']) {
        expect((await decision(config, { host, port: 80 })).action, `${host}:80`).toBe('continue');
        expect((await decision(config, { host, scheme: 'https', port: 443 })).action, `https ${host}`).toBe('continue');
        expect((await decision(config, opening(host, 443))).action, `tunnel ${host}:443`).toBe('continue');
        expect((await decision(config, opening(host, 80))).action, `tunnel ${host}:80`).toBe('continue');
        expect((await decision(config, { host, scheme: 'https', port: 443, mode: 'sni-only', method: '', path: '' })).action).toBe('continue');
        expect(await decision(config, { host, scheme: 'http', port: 443 }), `cleartext ${host}:443`).toMatchObject({ action: 'reject', status: 403 });
      }
      const rule = { host: 'api.github.com', method: 'GET', path: '/repos/acme/app' };
      expect((await decision(config, { ...rule, scheme: 'https', port: 443 })).action).toBe('continue');
      expect(await decision(config, { ...rule, scheme: 'http', port: 443 })).toMatchObject({ action: 'reject', status: 403 });
    });

    it.each<[string, TestRequestInit]>([
      ['plain http to 8080', { host: 'registry.npmjs.org', port: 8080 }],
      ['https to 8443', { host: 'registry.npmjs.org', scheme: 'https', port: 8443 }],
      ['ssh through a tunnel', { host: 'registry.npmjs.org', port: 22, scheme: 'https', mode: 'tunnel', method: '', path: '' }],
      ['smtp to an allowed CIDR', { host: '10.1.2.3', port: 25 }],
      ['a rule host on another port', { host: 'api.github.com', method: 'GET', path: '/repos/acme/app', port: 8080 }],
      ['a tunnel to a rule host on another port', { host: 'api.github.com', port: 8443, scheme: 'https', mode: 'tunnel', method: '', path: '' }],
    ])('refuses %s by default, with 403 not_allowlisted naming the port', async (_, request) => {
      const result = await runTransform(allowlist, config, request);
      expect(result.decision).toMatchObject({ action: 'reject', status: 403, reason: 'not_allowlisted' });
      expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'allowlist', reason: 'not_allowlisted' });
      expect(result.audit.request_transforms[0]?.annotations).toEqual({ host: request.host, port: request.port, rejected: 'not_allowlisted' });
    });

    it('allows a port an entry names, and only that port', async () => {
      const named = {
        domains: ['api.example.com:8080', '*.internal.example:*', '[2001:db8::1]:8443'],
        cidrs: [],
        rules: [
          { host: 'db.example.com', ports: [5432, '6000-6099'] },
          { cidr: '10.0.0.0/8', ports: [9200] },
          { host: 'git.example.com:8443', methods: ['GET'], paths: ['/repos/*'] },
        ],
      };
      const allowedRequests: TestRequestInit[] = [
        { host: 'api.example.com', port: 8080 },
        { host: 'x.internal.example', port: 22 },
        { host: 'x.internal.example', port: 443 },
        { host: '2001:db8::1', scheme: 'https', port: 8443 },
        { host: 'db.example.com', port: 5432 },
        { host: 'db.example.com', port: 6050 },
        { host: '10.9.9.9', port: 9200 },
        { host: 'git.example.com', scheme: 'https', port: 8443, path: '/repos/a' },
        opening('git.example.com', 8443),
        opening('db.example.com', 6099),
      ];
      for (const request of allowedRequests) expect((await decision(named, request)).action, JSON.stringify(request)).toBe('continue');
      const refused: TestRequestInit[] = [
        { host: 'api.example.com', port: 80 },
        { host: 'api.example.com', scheme: 'https', port: 443 },
        { host: 'api.example.com', port: 8081 },
        { host: '2001:db8::1', scheme: 'https', port: 443 },
        { host: 'db.example.com', port: 80 },
        { host: 'db.example.com', port: 6100 },
        { host: '10.9.9.9', port: 80 },
        { host: 'git.example.com', scheme: 'https', port: 443, path: '/repos/a' },
        { host: 'git.example.com', scheme: 'https', port: 8443, path: '/admin' },
        opening('git.example.com', 443),
        opening('db.example.com', 22),
      ];
      for (const request of refused) expect((await decision(named, request)).action, JSON.stringify(request)).toBe('reject');
    });

    it('default_ports changes the ports of entries that name none', async () => {
      const only8080 = { ...config, default_ports: [8080] };
      expect((await decision(only8080, { host: 'registry.npmjs.org', port: 8080 })).action).toBe('continue');
      expect((await decision(only8080, { host: 'registry.npmjs.org', port: 80 })).action).toBe('reject');
      expect((await decision(only8080, { host: 'registry.npmjs.org', scheme: 'https', port: 443 })).action).toBe('reject');
      expect((await decision(only8080, opening('api.github.com', 8080))).action).toBe('continue');
      expect((await decision(only8080, opening('api.github.com', 443))).action).toBe('reject');

      const anyPort = { ...config, default_ports: ['*'] };
      for (const port of [22, 443, 8080, 65535]) {
        expect((await decision(anyPort, { host: 'registry.npmjs.org', port })).action, `${port}`).toBe('continue');
        expect((await decision(anyPort, opening('10.1.2.3', port))).action, `tunnel ${port}`).toBe('continue');
      }
      expect((await decision(anyPort, { host: 'evil.example.com', port: 8080 })).action).toBe('reject');
      expect((await decision({ domains: ['*'], default_ports: ['8000-8999'] }, { host: 'x.io', port: 8999 })).action).toBe('continue');
      expect((await decision({ domains: ['*'], default_ports: ['8000-8999'] }, { host: 'x.io', port: 9000 })).action).toBe('reject');
    });

    it('a bare "*" domain still allows only the default ports', async () => {
      expect((await decision({ domains: ['*'] }, { host: 'anything.example.org', port: 80 })).action).toBe('continue');
      expect((await decision({ domains: ['*'] }, { host: 'anything.example.org', port: 8080 })).action).toBe('reject');
      expect((await decision({ domains: ['*:*'] }, { host: 'anything.example.org', port: 8080 })).action).toBe('continue');
    });

    it('in warn mode lets a port violation through, annotated with the port', async () => {
      const logger = recordingLogger();
      const result = await runTransform(allowlist, { ...config, warn: true }, { host: 'registry.npmjs.org', port: 8080 }, { transformEnv: { logger } });
      expect(result.decision.action).toBe('continue');
      expect(result.audit.request_transforms[0]?.annotations).toEqual({ action: 'warn', would_reject: 'not_allowlisted', host: 'registry.npmjs.org', port: 8080 });
      expect(logger.warnings).toEqual([expect.objectContaining({ host: 'registry.npmjs.org', port: 8080, reason: 'not_allowlisted' })]);
    });
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
      action: 'allow',
      annotations: { action: 'warn', would_reject: 'not_allowlisted', host: 'evil.example.com' },
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
    ['a domain with a bad port', { domains: ['a.com:99999'] }],
    ['a domain with a port range', { domains: ['a.com:80-90'] }],
    ['a rule with a port in host and ports', { rules: [{ host: 'a.com:443', ports: [443] }] }],
    ['a rule with an empty ports list', { rules: [{ host: 'a.com', ports: [] }] }],
    ['a rule with port 0', { rules: [{ cidr: '10.0.0.0/8', ports: [0] }] }],
    ['empty default_ports', { default_ports: [] }],
    ['a reversed default_ports range', { default_ports: ['9000-8000'] }],
  ])('rejects a config with %s', (_, bad) => {
    expect(validateTransformConfig(allowlist, bad).length).toBeGreaterThan(0);
  });

  it('accepts the documented config', () => {
    expect(validateTransformConfig(allowlist, { ...config, warn: false })).toEqual([]);
    expect(
      validateTransformConfig(allowlist, {
        domains: ['api.example.com:443', '*.example.com:8443', '[2001:db8::1]:8080', '10.0.0.1:5432', 'x.example.com:*'],
        rules: [{ host: 'db.example.com', ports: [5432, '6000-6099', '*'] }],
        default_ports: [80, 443, 8080],
      }),
    ).toEqual([]);
  });

  it('names the field of a port given twice', () => {
    expect(validateTransformConfig(allowlist, { rules: [{ host: 'a.com:443', ports: [8443] }] })).toEqual([
      { path: 'rules[0].ports', message: 'host "a.com:443" names a port and ports is set too: write the port in one place' },
    ]);
  });
});
