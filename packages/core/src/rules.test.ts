import { describe, expect, it } from 'vitest';
import { ErrorCodes, ProxyError } from './errors.js';
import { compileHostGlob, compilePathGlob, compileRules, normalizeHost, splitHostPattern, type RuleConfig, type RuleTarget } from './rules.js';

const target = (host: string, method = 'GET', path = '/'): RuleTarget => ({ host, method, path, port: 80, scheme: 'http', mode: 'http' });

/** A request to `host:port`: `https` is TLS (mode mitm), `http` cleartext; other modes are host-only. */
const to = (host: string, port: number, kind: 'http' | 'https' | 'tunnel' | 'sni-only' = 'http'): RuleTarget => {
  const hostOnly = kind === 'tunnel' || kind === 'sni-only';
  return {
    host,
    port,
    scheme: kind === 'http' ? 'http' : 'https',
    mode: kind === 'https' ? 'mitm' : kind,
    method: hostOnly ? '' : 'GET',
    path: hostOnly ? '' : '/',
  };
};

/** The `ProxyError` thrown by `run`, which must throw one. */
function configFailure(run: () => unknown): ProxyError {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ProxyError);
  expect((caught as ProxyError).code).toBe(ErrorCodes.CONFIG_INVALID);
  return caught as ProxyError;
}

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
    [{ host: 'a.com:443', ports: [443] }, 'rules[0]: host "a.com:443" names a port and ports is set too'],
    [{ host: '[::1]:8080', ports: ['*'] }, 'rules[0]: host "[::1]:8080" names a port and ports is set too'],
    [{ host: 'a.com:0' }, 'rules[0]: invalid host "a.com:0": port "0" is not 1-65535 or *'],
    [{ host: 'a.com:65536' }, 'port "65536" is not 1-65535 or *'],
    [{ host: 'a.com:' }, 'port "" is not 1-65535 or *'],
    [{ host: 'a.com:http' }, 'port "http" is not 1-65535 or *'],
    [{ host: 'a.com:80-90' }, 'port "80-90" is not 1-65535 or *'],
    [{ host: '[a.com]:80' }, 'only an IPv6 address goes in brackets'],
    [{ host: '[::1' }, 'unbalanced brackets'],
    [{ host: '[::1]8080' }, 'expected ":port" after the brackets'],
    [{ host: ':443' }, 'invalid host glob ""'],
    [{ host: 'a b:443' }, 'invalid host glob "a b"'],
    [{ host: 'a.com', ports: [] }, 'rules[0]: ports must not be empty'],
    [{ host: 'a.com', ports: [0] }, 'rules[0]: invalid port 0'],
    [{ host: 'a.com', ports: [65536] }, 'invalid port 65536'],
    [{ host: 'a.com', ports: [80.5] }, 'invalid port 80.5'],
    [{ host: 'a.com', ports: ['443'] }, 'invalid port "443"'],
    [{ host: 'a.com', ports: ['9000-8000'] }, 'invalid port "9000-8000"'],
    [{ host: 'a.com', ports: ['0-80'] }, 'invalid port "0-80"'],
    [{ host: 'a.com', ports: ['80-'] }, 'invalid port "80-"'],
    [{ cidr: '10.0.0.0/8', ports: ['1-65536'] }, 'invalid port "1-65536"'],
  ])('rejects %j', (rule, message) => {
    expect(configFailure(() => compileRules([rule])).message).toContain(message);
  });

  it('rejects a bad default port set', () => {
    expect(configFailure(() => compileRules([], { defaultPorts: ['x'] })).message).toBe('default ports: invalid port "x" (use 1-65535, "lo-hi" or "*")');
    expect(configFailure(() => compileRules([], { defaultPorts: [] })).message).toBe('default ports: ports must not be empty');
  });
});

describe('splitHostPattern', () => {
  it.each([
    ['api.example.com', 'api.example.com', undefined],
    ['api.example.com:443', 'api.example.com', 443],
    ['*.example.com:8443', '*.example.com', 8443],
    ['*:*', '*', '*'],
    ['10.0.0.1:5432', '10.0.0.1', 5432],
    ['[2001:db8::1]:8080', '2001:db8::1', 8080],
    ['[2001:db8::1]', '2001:db8::1', undefined],
    ['2001:db8::1', '2001:db8::1', undefined],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1', undefined],
  ])('%s -> %s port %s', (pattern, host, port) => {
    expect(splitHostPattern(pattern)).toEqual({ host, port });
  });
});

describe('compileRules with ports', () => {
  it('matches a port written in host, and only that port', () => {
    const set = compileRules([{ host: 'api.example.com:8443' }]);
    expect(set.matches(to('api.example.com', 8443))).toBe(true);
    expect(set.matches(to('api.example.com', 8443, 'https'))).toBe(true);
    expect(set.matches(to('api.example.com', 8444))).toBe(false);
    expect(set.matches(to('api.example.com', 80))).toBe(false);
    expect(set.matches(to('other.example.com', 8443))).toBe(false);
  });

  it('matches wildcard hosts, IP literals and bracketed IPv6 with a port', () => {
    const set = compileRules([{ host: '*.example.com:8443' }, { host: '[2001:db8::1]:8080' }, { host: '10.0.0.1:5432' }]);
    expect(set.matches(to('a.b.example.com', 8443))).toBe(true);
    expect(set.matches(to('example.com', 8443))).toBe(true);
    expect(set.matches(to('a.example.com', 443, 'https'))).toBe(false);
    expect(set.matches(to('2001:db8::1', 8080))).toBe(true);
    expect(set.matches(to('[2001:DB8:0::1]', 8080))).toBe(true);
    expect(set.matches(to('2001:db8::1', 8081))).toBe(false);
    expect(set.matches(to('2001:db8::2', 8080))).toBe(false);
    expect(set.matches(to('10.0.0.1', 5432))).toBe(true);
    expect(set.matches(to('::ffff:10.0.0.1', 5432))).toBe(true);
    expect(set.matches(to('10.0.0.1', 5433))).toBe(false);
  });

  it('host:* and ports ["*"] match any port, cleartext 443 included', () => {
    for (const rule of [{ host: 'a.example.com:*' }, { host: 'a.example.com', ports: [8080, '*'] }]) {
      const set = compileRules([rule], { defaultPorts: [80] });
      for (const port of [1, 22, 443, 8080, 65535]) expect(set.matches(to('a.example.com', port)), `${port}`).toBe(true);
      expect(set.matches(to('b.example.com', 80))).toBe(false);
    }
  });

  it('matches ports and inclusive ranges from ports, for host and cidr rules', () => {
    const set = compileRules([
      { host: 'api.example.com', ports: [443, 8443, '8000-8099'] },
      { cidr: '10.0.0.0/8', ports: ['5432-5432', 6379] },
    ]);
    for (const port of [8443, 8000, 8050, 8099]) expect(set.matches(to('api.example.com', port)), `${port}`).toBe(true);
    for (const port of [80, 7999, 8100, 8442, 8444, 22]) expect(set.matches(to('api.example.com', port)), `${port}`).toBe(false);
    expect(set.matches(to('10.1.2.3', 5432))).toBe(true);
    expect(set.matches(to('10.1.2.3', 6379))).toBe(true);
    expect(set.matches(to('10.1.2.3', 5433))).toBe(false);
    expect(set.matches(to('10.1.2.3', 80))).toBe(false);
  });

  it('keeps methods and paths on top of ports', () => {
    const set = compileRules([{ host: 'api.example.com', ports: [8080], methods: ['GET'], paths: ['/v1/*'] }]);
    expect(set.matches({ ...to('api.example.com', 8080), path: '/v1/x' })).toBe(true);
    expect(set.matches({ ...to('api.example.com', 8080), path: '/v2' })).toBe(false);
    expect(set.matches({ ...to('api.example.com', 8081), path: '/v1/x' })).toBe(false);
    expect(set.matches(to('api.example.com', 8080, 'tunnel'))).toBe(false);
  });

  describe('port 443 means TLS', () => {
    const named = compileRules([{ host: 'api.example.com:443' }]);
    const ranged = compileRules([{ host: 'api.example.com', ports: ['1-1024'] }]);
    const byDefault = compileRules([{ host: 'api.example.com' }], { defaultPorts: [80, 443] });

    it.each([
      ['https (mitm)', to('api.example.com', 443, 'https')],
      ['a tunnel opening', to('api.example.com', 443, 'tunnel')],
      ['sni-only passthrough', to('api.example.com', 443, 'sni-only')],
      ['https through a reverse listener', { ...to('api.example.com', 443, 'https'), mode: 'reverse' as const }],
    ])('matches %s to 443', (_, t) => {
      expect(named.matches(t)).toBe(true);
      expect(ranged.matches(t)).toBe(true);
      expect(byDefault.matches(t)).toBe(true);
    });

    it.each([
      ['plain http', to('api.example.com', 443)],
      ['plain http inside a tunnel', { ...to('api.example.com', 443), mode: 'http' as const }],
      ['plain http through a reverse listener', { ...to('api.example.com', 443), mode: 'reverse' as const }],
    ])('never matches %s to 443', (_, t) => {
      expect(named.matches(t)).toBe(false);
      expect(ranged.matches(t)).toBe(false);
      expect(byDefault.matches(t)).toBe(false);
    });

    it('other ports take either scheme', () => {
      const set = compileRules([{ host: 'api.example.com', ports: [80, 8443] }]);
      for (const kind of ['http', 'https', 'tunnel'] as const) {
        expect(set.matches(to('api.example.com', 80, kind)), kind).toBe(true);
        expect(set.matches(to('api.example.com', 8443, kind)), kind).toBe(true);
      }
    });
  });

  it('applies the default ports to rules that name none', () => {
    const rules: RuleConfig[] = [{ host: 'a.example.com' }, { cidr: '10.0.0.0/8' }, { host: 'b.example.com:8080' }];
    const allowlistLike = compileRules(rules, { defaultPorts: [80, 443] });
    expect(allowlistLike.matches(to('a.example.com', 80))).toBe(true);
    expect(allowlistLike.matches(to('a.example.com', 443, 'https'))).toBe(true);
    expect(allowlistLike.matches(to('a.example.com', 8080))).toBe(false);
    expect(allowlistLike.matches(to('a.example.com', 22, 'tunnel'))).toBe(false);
    expect(allowlistLike.matches(to('10.0.0.1', 80))).toBe(true);
    expect(allowlistLike.matches(to('10.0.0.1', 5432))).toBe(false);
    expect(allowlistLike.matches(to('b.example.com', 8080))).toBe(true);
    expect(allowlistLike.matches(to('b.example.com', 80))).toBe(false);

    const anyPort = compileRules(rules);
    for (const port of [22, 80, 443, 8080]) {
      expect(anyPort.matches(to('a.example.com', port)), `${port}`).toBe(true);
      expect(anyPort.matches(to('10.0.0.1', port)), `${port}`).toBe(true);
    }
    expect(anyPort.matches(to('b.example.com', 80))).toBe(false);
    expect(compileRules(rules, { defaultPorts: ['*'] }).matches(to('a.example.com', 443))).toBe(true);
  });

  it('a target with port 0 (unknown) matches only rules allowing any port', () => {
    expect(compileRules([{ host: '*' }], { defaultPorts: ['1-65535'] }).matches(to('x.io', 0, 'tunnel'))).toBe(false);
    expect(compileRules([{ host: '*:*' }], { defaultPorts: [80] }).matches(to('x.io', 0, 'tunnel'))).toBe(true);
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
