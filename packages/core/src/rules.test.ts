import { describe, expect, it } from 'vitest';
import { ErrorCodes, ProxyError } from './errors.js';
import { compileHostGlob, compilePathGlob, compileRules, normalizeHost, type RuleConfig } from './rules.js';

const target = (host: string, method = 'GET', path = '/') => ({ host, method, path });

describe('compileHostGlob', () => {
  it.each([
    ['*', 'anything.example.org', true],
    ['*', '10.0.0.1', true],
    ['api.example.com', 'api.example.com', true],
    ['api.example.com', 'API.Example.COM', true],
    ['api.example.com', 'api.example.com.', true],
    ['api.example.com.', 'api.example.com', true],
    ['API.EXAMPLE.COM', 'api.example.com', true],
    ['api.example.com', 'example.com', false],
    ['api.example.com', 'x.api.example.com', false],
    ['api.example.com', 'api.example.com.evil.io', false],
    ['*.example.com', 'example.com', true],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.c.example.com', true],
    ['*.example.com', 'A.Example.Com.', true],
    ['*.example.com', 'badexample.com', false],
    ['*.example.com', 'example.com.evil.io', false],
    ['*.example.com', '.example.com', false],
    ['api-*.example.com', 'api-eu.example.com', true],
    ['api-*.example.com', 'api-eu.x.example.com', false],
    ['api-*.example.com', 'web-eu.example.com', false],
    ['*.s3.*.amazonaws.com', 'bucket.s3.eu-west-1.amazonaws.com', true],
    ['*.s3.*.amazonaws.com', 's3.eu-west-1.amazonaws.com', true],
    ['*.s3.*.amazonaws.com', 'bucket.s3.a.b.amazonaws.com', false],
    ['10.0.0.1', '10.0.0.1', true],
    ['::1', '[::1]', true],
  ])('%s vs %s -> %s', (glob, host, expected) => {
    expect(compileHostGlob(glob)(host)).toBe(expected);
  });

  it.each(['', 'exa mple.com', 'a..b', '.example.com', 'https://x.com'])('rejects %j', (glob) => {
    expect(() => compileHostGlob(glob)).toThrow(ProxyError);
  });
});

describe('compilePathGlob', () => {
  it.each([
    ['/v1/*', '/v1', true],
    ['/v1/*', '/v1/', true],
    ['/v1/*', '/v1/chat/completions', true],
    ['/v1/*', '/v10', false],
    ['/v1/*', '/v10/x', false],
    ['/v1/*', '/v2/x', false],
    ['/v1/*', '/v1/../admin', false],
    ['/v1/*', '/v1/%2E%2e/admin', false],
    ['/v1/*', '/v1/./x', false],
    ['/v1/*', '', false],
    ['/v1/messages', '/v1/messages', true],
    ['/v1/messages', '/v1/messages/', false],
    ['/v1/messages', '/v1/messages/x', false],
    ['/v1/messages', '/V1/messages', false],
    ['/repos/*/issues', '/repos/acme/issues', true],
    ['/repos/*/issues', '/repos/acme/x/issues', false],
    ['/repos/*/*', '/repos/acme', true],
    ['/repos/*/*', '/repos/acme/issues/1', true],
    ['/repos/*/*', '/reposx', false],
    ['/*', '/', true],
    ['/*', '/anything/below', true],
    ['/*', '', false],
    ['/', '/', true],
    ['/', '/x', false],
    ['/a.b', '/aXb', false],
  ])('%s vs %j -> %s', (glob, path, expected) => {
    expect(compilePathGlob(glob)(path)).toBe(expected);
  });

  it('rejects a glob that does not start with /', () => {
    expect(() => compilePathGlob('v1/*')).toThrow(ProxyError);
  });
});

describe('compileRules', () => {
  const rules: RuleConfig[] = [
    { host: 'api.openai.com', methods: ['post'], paths: ['/v1/*'] },
    { host: '*.anthropic.com', methods: ['POST'], paths: ['/v1/messages', '/v1/complete'] },
    { host: 'registry.npmjs.org' },
    { cidr: '10.0.0.0/8' },
    { host: '192.168.1.10', methods: ['GET'] },
    { host: 'status.example.com', methods: ['*'] },
  ];
  const set = compileRules(rules);

  it.each([
    [target('api.openai.com', 'POST', '/v1/chat'), true],
    [target('api.openai.com', 'post', '/v1'), true],
    [target('API.OPENAI.COM.', 'POST', '/v1/x'), true],
    [target('api.openai.com', 'GET', '/v1/chat'), false],
    [target('api.openai.com', 'POST', '/v10'), false],
    [target('api.anthropic.com', 'POST', '/v1/messages'), true],
    [target('anthropic.com', 'POST', '/v1/complete'), true],
    [target('api.anthropic.com', 'POST', '/v1/messages/x'), false],
    [target('registry.npmjs.org', 'DELETE', '/anything'), true],
    [target('evil.npmjs.org', 'GET', '/'), false],
    [target('10.2.3.4'), true],
    [target('::ffff:10.2.3.4'), true],
    [target('[::ffff:a02:304]'), true],
    [target('11.0.0.1'), false],
    [target('10.example.com'), false],
    [target('192.168.1.10', 'get', '/x'), true],
    [target('::ffff:192.168.1.10', 'GET', '/x'), true],
    [target('192.168.1.10', 'POST', '/x'), false],
    [target('status.example.com', 'PATCH', '/'), true],
  ])('%j -> %s', (t, expected) => {
    expect(set.matches(t)).toBe(expected);
  });

  it('matches host-only requests only against rules without methods or paths', () => {
    expect(set.matches(target('registry.npmjs.org', '', ''))).toBe(true);
    expect(set.matches(target('status.example.com', '', ''))).toBe(true);
    expect(set.matches(target('10.0.0.1', '', ''))).toBe(true);
    expect(set.matches(target('api.openai.com', '', ''))).toBe(false);
    expect(set.matches(target('api.anthropic.com', '', ''))).toBe(false);
    expect(set.matches(target('192.168.1.10', '', ''))).toBe(false);
    expect(compileRules([{ host: '*', paths: ['/*'] }]).matches(target('x.io', '', ''))).toBe(false);
  });

  it('a CIDR rule never matches a host name', () => {
    expect(compileRules([{ cidr: '0.0.0.0/0' }]).matches(target('example.com'))).toBe(false);
  });

  it('an empty set matches nothing', () => {
    const empty = compileRules([]);
    expect(empty.size).toBe(0);
    expect(empty.matches(target('example.com'))).toBe(false);
  });

  it('reports size', () => {
    expect(set.size).toBe(rules.length);
  });

  it.each<[RuleConfig, string]>([
    [{}, 'rules[0]: exactly one of host or cidr'],
    [{ host: 'a.com', cidr: '10.0.0.0/8' }, 'rules[0]: exactly one of host or cidr'],
    [{ cidr: '10.0.0.0/99' }, 'rules[0]: invalid CIDR "10.0.0.0/99"'],
    [{ host: 'a b' }, 'rules[0]: invalid host glob'],
    [{ host: 'a.com', paths: ['v1'] }, 'rules[0]: invalid path glob "v1"'],
    [{ host: 'a.com', methods: [' '] }, 'rules[0]: a method must not be empty'],
  ])('rejects %j', (rule, message) => {
    let caught: unknown;
    try {
      compileRules([rule]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProxyError);
    expect((caught as ProxyError).code).toBe(ErrorCodes.CONFIG_INVALID);
    expect((caught as ProxyError).message).toContain(message);
  });
});

describe('normalizeHost', () => {
  it.each([
    ['Example.COM.', 'example.com'],
    ['[::1]', '::1'],
    [' a.b ', 'a.b'],
  ])('%j -> %j', (input, output) => {
    expect(normalizeHost(input)).toBe(output);
  });
});
