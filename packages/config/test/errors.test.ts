import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ErrorCodes, formatConfigIssues } from '@proxy/core';
import type { ConfigIssue } from '@proxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAt, loadConfigFile, parseConfigText, readConfigFile, validateConfig } from '../src/index.js';
import { strictStandIns } from './support/stand-ins.js';

/** Runs `action`, which must throw a `ConfigError`, and returns it. */
function configError(action: () => unknown): ConfigError {
  try {
    action();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

async function configErrorAsync(action: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await action();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** The issues of validating `lines` (joined as one file) against the strict stand-ins. */
function issuesOf(lines: readonly string[]): readonly ConfigIssue[] {
  return configError(() => validateConfig(parseConfigText(lines.join('\n'), 'proxy.yaml'), strictStandIns)).issues;
}

/** `[line, column, path, message]` of each issue, for compact exact assertions. */
function where(issues: readonly ConfigIssue[]): [number | undefined, number | undefined, string, string][] {
  return issues.map((i) => [i.line, i.column, i.path, i.message]);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proxy-config-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a file with several errors', () => {
  const lines = [
    /*  1 */ 'proxy:',
    /*  2 */ '  upstream_response_header_timeout: 5x',
    /*  3 */ 'transforms:',
    /*  4 */ '  - name: allowlist',
    /*  5 */ '    config:',
    /*  6 */ '      domans: [example.com]',
    /*  7 */ '      cidrs: ["10.0.0.0/33"]',
    /*  8 */ '  - name: secrets',
    /*  9 */ '    config:',
    /* 10 */ '      secrets:',
    /* 11 */ '        - source:',
    /* 12 */ '            type: env',
    /* 13 */ '            var: OPENAI_API_KEY',
    /* 14 */ '            ttl: 10 minutes',
    /* 15 */ '          inject:',
    /* 16 */ '            header: Authorization',
    /* 17 */ '            formatter: "Bearer {{ .Valu }}"',
    /* 18 */ '  - name: rate_limit',
    /* 19 */ '    config:',
    /* 20 */ '      per_minute: 10',
  ];

  it('reports every issue at once, each at its line, column and field', async () => {
    const file = join(dir, 'several.yaml');
    await writeFile(file, lines.join('\n'));
    const error = await configErrorAsync(() => loadConfigFile(file, strictStandIns));

    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.issues.every((i) => i.file === file)).toBe(true);
    const template = error.issues.find((i) => i.path === 'transforms[1].config.secrets[0].inject.formatter');
    expect(template?.message).toMatch(/^template references unknown field \.Valu\b.*\(allowed: \.Value\)$/);
    expect(where(error.issues)).toEqual([
      [2, 37, 'proxy.upstream_response_header_timeout', '"5x" is not a duration (use e.g. 30s, 5m, 1h)'],
      [6, 7, 'transforms[0].config.domans', 'unknown field "domans" (allowed: domains, cidrs, rules, default_ports, warn)'],
      [7, 15, 'transforms[0].config.cidrs[0]', '"10.0.0.0/33" is not a CIDR'],
      [14, 18, 'transforms[1].config.secrets[0].source.ttl', '"10 minutes" is not a duration (use e.g. 30s, 5m, 1h)'],
      [17, 24, 'transforms[1].config.secrets[0].inject.formatter', template?.message],
      [18, 11, 'transforms[2].name', 'unknown transform "rate_limit" (registered: allowlist, secrets, slow_policy)'],
    ]);
  });

  it('renders them one per line as file:line:col: path: message', () => {
    const error = configError(() => validateConfig(parseConfigText(lines.join('\n'), 'proxy.yaml'), strictStandIns));
    expect(error.message).toBe(formatConfigIssues(error.issues));
    expect(error.message.split('\n')[0]).toBe(
      'proxy.yaml:2:37: proxy.upstream_response_header_timeout: "5x" is not a duration (use e.g. 30s, 5m, 1h)',
    );
    expect(error.message.split('\n')).toHaveLength(6);
  });
});

describe('issue locations and messages', () => {
  it('locates an unknown top-level key at the key and lists the sections', () => {
    expect(where(issuesOf(['log:', '  level: info', 'prxy:', '  http_listen: ":80"']))).toEqual([
      [3, 1, 'prxy', 'unknown field "prxy" (allowed: dns, proxy, tls, transforms, mcp, mcp_gateway, management, metrics, log, compat)'],
    ]);
  });

  it('locates a missing required field at its parent', () => {
    expect(where(issuesOf(['dns:', '  listen: ":53"', 'transforms:', '  - config: {}']))).toEqual([
      [1, 1, 'dns.proxy_ip', 'required field is missing'],
      [4, 5, 'transforms[0].name', 'required field is missing'],
    ]);
  });

  it('names the allowed values of an enum and the expected type', () => {
    expect(where(issuesOf(['tls:', '  mode: passthrough', 'log:', '  level: [info]']))).toEqual([
      [2, 9, 'tls.mode', 'must be one of: mitm, sni-only'],
      [4, 10, 'log.level', 'must be a string (got a list)'],
    ]);
  });

  it('checks numbers against their ranges', () => {
    expect(where(issuesOf(['proxy:', '  max_request_body_bytes: -1', 'tls:', '  cert_cache_size: 0']))).toEqual([
      [2, 27, 'proxy.max_request_body_bytes', 'must be >= 0 (got -1)'],
      [4, 20, 'tls.cert_cache_size', 'must be > 0 (got 0)'],
    ]);
  });

  it('checks log.max_backlog_bytes: a whole number of at least 64 KiB, 16 MiB when absent', () => {
    expect(where(issuesOf(['log:', '  max_backlog_bytes: 1000']))).toEqual([[2, 22, 'log.max_backlog_bytes', 'must be >= 65536 (got 1000)']]);
    expect(where(issuesOf(['log:', '  max_backlog_bytes: lots']))).toEqual([[2, 22, 'log.max_backlog_bytes', 'must be an integer (got "lots")']]);
    const valid = (text: string): unknown => validateConfig(parseConfigText(text, 'proxy.yaml'), strictStandIns).log.max_backlog_bytes;
    expect(valid('log:\n  max_backlog_bytes: 1048576\n')).toBe(1_048_576);
    expect(valid('log: { level: info }\n')).toBe(16_777_216);
  });

  it('checks proxy.workers: a whole number from 1 to 256, or auto', () => {
    expect(where(issuesOf(['proxy:', '  workers: 0']))).toEqual([[2, 12, 'proxy.workers', 'must be >= 1 (got 0)']]);
    expect(where(issuesOf(['proxy:', '  workers: -1']))).toEqual([[2, 12, 'proxy.workers', 'must be >= 1 (got -1)']]);
    expect(where(issuesOf(['proxy:', '  workers: many']))).toEqual([[2, 12, 'proxy.workers', 'must be an integer or "auto" (got "many")']]);
    expect(where(issuesOf(['proxy:', '  workers: 2.5']))).toEqual([[2, 12, 'proxy.workers', 'must be an integer or "auto" (got 2.5)']]);
    expect(where(issuesOf(['proxy:', '  workers: 100000']))).toEqual([[2, 12, 'proxy.workers', 'must be <= 256 (got 100000)']]);
    const valid = (value: string): unknown => validateConfig(parseConfigText(`proxy:\n  workers: ${value}\n`, 'proxy.yaml'), strictStandIns).proxy.workers;
    expect(valid('auto')).toBe('auto');
    expect(valid('4')).toBe(4);
    expect(validateConfig(parseConfigText('log: { level: info }\n', 'proxy.yaml'), strictStandIns).proxy.workers).toBe(1);
  });

  it('reports an unknown transform once, however wrong its config is', () => {
    expect(where(issuesOf(['transforms:', '  - name: judge', '    config: { nonsense: [1, 2], more: { x: 1 } }']))).toEqual([
      [2, 11, 'transforms[0].name', 'unknown transform "judge" (registered: allowlist, secrets, slow_policy)'],
    ]);
  });

  it('explains rules that need exactly one of host and cidr', () => {
    const issues = issuesOf([
      'transforms:',
      '  - name: allowlist',
      '    config:',
      '      rules:',
      '        - methods: [GET]',
      '        - { host: api.example.com, cidr: 10.0.0.0/8 }',
    ]);
    expect(where(issues)).toEqual([
      [5, 11, 'transforms[0].config.rules[0]', 'set one of: host, cidr'],
      [6, 11, 'transforms[0].config.rules[1]', 'set only one of: host, cidr (found host, cidr)'],
    ]);
  });

  it('explains bad ports in rules, domains and default_ports', () => {
    const issues = issuesOf([
      'transforms:',
      '  - name: allowlist',
      '    config:',
      '      domains: ["api.example.com:443", "api.example.com:99999", "dns.google:dns"]',
      '      default_ports: [80, "9000-8000"]',
      '      rules:',
      '        - { host: "api.example.com:443", ports: [443] }',
      '        - { host: api.example.com, ports: [0, "443", "8000-8999", "*"] }',
      '        - { cidr: 10.0.0.0/8, ports: [] }',
    ]);
    expect(where(issues)).toEqual([
      [4, 40, 'transforms[0].config.domains[1]', expect.stringMatching(/^"api.example.com:99999" is not a host pattern with an optional port \(use e.g./)],
      [4, 65, 'transforms[0].config.domains[2]', expect.stringMatching(/^"dns.google:dns" is not a host pattern with an optional port/)],
      [5, 27, 'transforms[0].config.default_ports[1]', '"9000-8000" is not a port or port range (use e.g. 443, "8000-8999" or "*")'],
      [7, 49, 'transforms[0].config.rules[0].ports', 'host "api.example.com:443" names a port and ports is set too: write the port in one place'],
      [8, 44, 'transforms[0].config.rules[1].ports[0]', 'must be >= 1 (got 0)'],
      [8, 47, 'transforms[0].config.rules[1].ports[1]', '"443" is not a port or port range (use e.g. 443, "8000-8999" or "*")'],
      [9, 38, 'transforms[0].config.rules[2].ports', 'must have at least 1 entry'],
    ]);
  });

  it('keeps refusing ports in dns.passthrough', () => {
    expect(where(issuesOf(['dns:', '  enabled: false', '  passthrough: ["corp.example.com:53"]']))).toEqual([
      [3, 17, 'dns.passthrough[0]', '"corp.example.com:53" is not a host pattern (use e.g. api.example.com, *.example.com, *)'],
    ]);
  });

  it('checks secret sources against the registered backends', () => {
    const issues = issuesOf([
      'transforms:',
      '  - name: secrets',
      '    config:',
      '      secrets:',
      '        - source: { type: env, variable: TOKEN }',
      '        - source: { type: vault, path: x }',
      '        - source: { var: TOKEN }',
    ]);
    expect(where(issues)).toEqual([
      [5, 19, 'transforms[0].config.secrets[0].source.var', 'required field is missing'],
      [5, 32, 'transforms[0].config.secrets[0].source.variable', 'unknown field "variable" (allowed: var, type, json_key, ttl, failure_ttl)'],
      [6, 27, 'transforms[0].config.secrets[1].source.type', 'must be one of: env, aws_sm, aws_ssm'],
      [7, 19, 'transforms[0].config.secrets[2].source.type', 'required field is missing'],
    ]);
  });

  it('requires the CA in mitm mode once an https or tunnel listener is configured', () => {
    expect(where(issuesOf(['proxy:', '  tunnel_listen: ":1080"']))).toEqual([
      [2, 18, 'tls.ca_cert', 'required in mitm mode when proxy.tunnel_listen is set (or set tls.mode: sni-only)'],
      [2, 18, 'tls.ca_key', 'required in mitm mode when proxy.tunnel_listen is set (or set tls.mode: sni-only)'],
    ]);
    expect(where(issuesOf(['proxy:', '  https_listen: ":443"', 'tls:', '  ca_cert: /ca.crt']))).toEqual([
      [3, 1, 'tls.ca_key', 'required in mitm mode when proxy.https_listen is set (or set tls.mode: sni-only)'],
    ]);
    const sniOnly = parseConfigText('proxy:\n  https_listen: ":443"\ntls:\n  mode: sni-only\n', 'proxy.yaml');
    expect(validateConfig(sniOnly, strictStandIns).tls.mode).toBe('sni-only');
  });

  it('checks DNS records by type and the DNS addresses', () => {
    const issues = issuesOf([
      'dns:',
      '  proxy_ip: "fd00::2"',
      '  upstream_resolver: "dns.google"',
      '  records:',
      '    - { name: a.local, type: A, value: "::1" }',
      '    - { name: b.local, type: AAAA, value: "10.0.0.1" }',
      '    - { name: c.local, type: CNAME, value: "not a host" }',
      '    - { name: d.local, type: MX, value: "mail.local" }',
    ]);
    expect(where(issues)).toEqual([
      [2, 13, 'dns.proxy_ip', '"fd00::2" is not an IPv4 address'],
      [3, 22, 'dns.upstream_resolver', '"dns.google" is not a resolver address (expected ip or ip:port, e.g. "8.8.8.8:53")'],
      [5, 40, 'dns.records[0].value', '"::1" is not an IPv4 address'],
      [6, 43, 'dns.records[1].value', '"10.0.0.1" is not an IPv6 address'],
      [7, 44, 'dns.records[2].value', '"not a host" is not a host name'],
      [8, 30, 'dns.records[3].type', 'must be one of: A, AAAA, CNAME'],
    ]);
  });

  it('checks MCP argument matchers use exactly one of equals, in, matches', () => {
    const issues = issuesOf([
      'mcp:',
      '  servers:',
      '    - name: github',
      '      rules: []',
      '      tools:',
      '        - name: create_issue',
      '          when:',
      '            - path: owner',
      '            - { path: repo, equals: a, in: [a] }',
    ]);
    expect(where(issues)).toEqual([
      [4, 14, 'mcp.servers[0].rules', 'must have at least 1 entry'],
      [8, 15, 'mcp.servers[0].tools[0].when[0]', 'set one of: equals, in, matches'],
      [9, 15, 'mcp.servers[0].tools[0].when[1]', 'set only one of: equals, in, matches (found equals, in)'],
    ]);
  });

  it('checks MCP matches expressions with RE2, the engine that runs them', () => {
    const issues = issuesOf([
      'mcp:',
      '  servers:',
      '    - name: github',
      '      rules: [{ host: mcp.example.com }]',
      '      tools:',
      '        - name: create_issue',
      '          when:',
      '            - { path: title, matches: "(" }',
      '            - { path: body, matches: "(?<=x)y" }',
      '            - { path: ok, matches: "^bot-[0-9]+$" }',
    ]);
    expect(where(issues).map(([line, , path]) => [line, path])).toEqual([
      [8, 'mcp.servers[0].tools[0].when[0].matches'],
      [9, 'mcp.servers[0].tools[0].when[1].matches'],
    ]);
    expect(issues[0]!.message).toMatch(/not an RE2 regular expression/);
  });

  it('locates mcp_gateway mistakes: an upstream that is no http(s) URL, a duplicate route, an inject with two places', () => {
    const issues = issuesOf([
      'mcp_gateway:',
      '  routes:',
      '    - name: tools',
      '      rules: [{ host: tools.internal }]',
      '      upstream: "ftp://mcp.example.com/"',
      '    - name: tools',
      '      rules: [{ host: other.internal }]',
      '      upstream: "https://user:pw@mcp.example.com/mcp"',
    ]);
    expect(where(issues)).toEqual([
      [5, 17, 'mcp_gateway.routes[0].upstream', 'must use http or https, not ftp'],
      [6, 13, 'mcp_gateway.routes[1].name', 'duplicate route name "tools"'],
      [8, 17, 'mcp_gateway.routes[1].upstream', 'must not carry a user name or password; add the credential under "credentials" instead'],
    ]);
    const inject = issuesOf([
      'mcp_gateway:',
      '  routes:',
      '    - name: tools',
      '      rules: [{ host: tools.internal }]',
      '      upstream: "https://mcp.example.com/"',
      '      credentials:',
      '        - source: { type: env, var: T }',
      '          inject: { header: Authorization, query_param: key }',
      '        - source: { type: env, var: U }',
      '          inject: { formatter: "x" }',
    ]);
    expect(where(inject)).toEqual([
      [8, 44, 'mcp_gateway.routes[0].credentials[0].inject.query_param', 'cannot be used together with "header"; remove one of them (a credential goes in one place: a header or a query parameter)'],
      [10, 19, 'mcp_gateway.routes[0].credentials[1].inject', 'set one of: header, query_param'],
    ]);
  });

  it('reports an empty file', () => {
    const error = configError(() => validateConfig(parseConfigText('# nothing here\n', 'proxy.yaml'), strictStandIns));
    expect(error.issues).toEqual([{ file: 'proxy.yaml', path: '', message: expect.stringMatching(/empty/) as unknown }]);
  });
});

describe('reverse listeners', () => {
  it('needs tls_cert and tls_key together', () => {
    expect(where(issuesOf(['proxy:', '  reverse:', '    - listen: ":8443"', '      tls_cert: /etc/proxy/cert.pem']))).toEqual([
      [4, 17, 'proxy.reverse[0].tls_key', 'required when "tls_cert" is set (set both or neither)'],
    ]);
    expect(where(issuesOf(['proxy:', '  reverse:', '    - listen: ":8443"', '      tls_key: /etc/proxy/key.pem']))).toEqual([
      [4, 16, 'proxy.reverse[0].tls_cert', 'required when "tls_key" is set (set both or neither)'],
    ]);
  });

  it('validates listen addresses, upstream host, scheme, header and timeout', () => {
    const issues = issuesOf([
      'proxy:',
      '  reverse:',
      '    - upstream_host: api.internal',
      '    - listen: "8080"',
      '      upstream_host: "https://api.internal"',
      '      upstream_scheme: ftp',
      '    - listen: "::1:8080"',
      '      host_header: "X Upstream"',
      '      upstream_timeout: 0s',
      '    - listen: ":65536"',
      '      upstream_host: "api.internal:0"',
    ]);
    const hint = '(expected [host]:port, e.g. ":8080", "127.0.0.1:8080", "[::1]:8080")';
    expect(where(issues)).toEqual([
      [3, 7, 'proxy.reverse[0].listen', 'required field is missing'],
      [4, 15, 'proxy.reverse[1].listen', `"8080" is not a listen address: no port ${hint}`],
      [
        5,
        22,
        'proxy.reverse[1].upstream_host',
        '"https://api.internal" must not include a scheme (expected host[:port], e.g. "api.internal:8443"); use upstream_scheme for http/https',
      ],
      [6, 24, 'proxy.reverse[1].upstream_scheme', 'must be one of: http, https'],
      [7, 15, 'proxy.reverse[2].listen', `"::1:8080" is not a listen address: an IPv6 host must be written in brackets, e.g. "[::1]:8080" ${hint}`],
      [8, 20, 'proxy.reverse[2].host_header', '"X Upstream" is not an HTTP header name'],
      [9, 25, 'proxy.reverse[2].upstream_timeout', '"0s" must be a positive duration (e.g. 30s)'],
      [10, 15, 'proxy.reverse[3].listen', `":65536" is not a listen address: port 65536 is out of range (0-65535) ${hint}`],
      [11, 22, 'proxy.reverse[3].upstream_host', '"api.internal:0" is not a host[:port]: port 0 is out of range (1-65535)'],
    ]);
  });

  it('accepts every listen address form', () => {
    const doc = parseConfigText(
      'proxy:\n  reverse:\n' + [':8080', '127.0.0.1:8080', '[::1]:8080', '0.0.0.0:0', 'localhost:9000'].map((l) => `    - listen: "${l}"\n`).join(''),
      'proxy.yaml',
    );
    expect(validateConfig(doc, strictStandIns).proxy.reverse.map((r) => r.listen)).toEqual([':8080', '127.0.0.1:8080', '[::1]:8080', '0.0.0.0:0', 'localhost:9000']);
  });
});

describe('reading and parsing', () => {
  it('reports YAML syntax errors with their line and column', () => {
    const error = configError(() => parseConfigText('proxy:\n  http_listen: ":80"\n https_listen: ":443"\n', 'proxy.yaml'));
    expect(error.code).toBe(ErrorCodes.CONFIG_YAML);
    expect(error.issues).toEqual([{ file: 'proxy.yaml', line: 3, column: 1, path: '', message: 'All mapping items must start at the same column' }]);
    expect(error.message).toBe('proxy.yaml:3:1: All mapping items must start at the same column');
  });

  it('reports every syntax error, duplicate keys included', () => {
    const error = configError(() => parseConfigText('log:\n  level: info\n  level: debug\ndns: [1, 2\n', 'proxy.yaml'));
    expect(error.issues.map((i) => [i.line, i.column])).toEqual([
      [3, 3],
      [5, 1],
    ]);
    expect(error.issues[0]?.message).toBe('duplicate key: each key may appear only once in a mapping');
  });

  it('names the file it cannot read', async () => {
    const missing = join(dir, 'missing.yaml');
    const error = await configErrorAsync(() => readConfigFile(missing));
    expect(error.code).toBe(ErrorCodes.CONFIG_READ);
    expect(error.message).toBe(`${missing}: cannot read the config file (ENOENT)`);

    const directory = await configErrorAsync(() => loadConfigFile(dir, strictStandIns));
    expect(directory.code).toBe(ErrorCodes.CONFIG_READ);
    expect(directory.message).toBe(`${dir}: cannot read the config file (EISDIR)`);
  });

  it('issueAt locates app-found problems, falling back to the nearest written ancestor', () => {
    const doc = parseConfigText('transforms:\n  - name: allowlist\n  - name: "@acme/transform-foo"\n', 'proxy.yaml');
    expect(issueAt(doc, ['transforms', 1, 'name'], 'failed to load')).toEqual({
      file: 'proxy.yaml',
      line: 3,
      column: 11,
      path: 'transforms[1].name',
      message: 'failed to load',
    });
    expect(issueAt(doc, ['transforms', 1, 'config', 'token'], 'create() failed')).toMatchObject({ line: 3, column: 5, path: 'transforms[1].config.token' });
  });
});
