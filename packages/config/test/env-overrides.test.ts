import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@proxy/core';
import { applyEnvOverrides, ENV_OVERRIDES, environmentDocument, isWritten, parseConfigText, validateConfig } from '../src/index.js';
import type { ProxyConfig } from '../src/index.js';
import { strictStandIns } from './support/stand-ins.js';

/** A file every override case starts from: valid on its own, with a value for every section an override may touch. */
const BASE = ['dns:', '  proxy_ip: "10.0.0.1"', 'tls:', '  ca_cert: ca.crt', '  ca_key: ca.key', 'log:', '  level: warn', ''].join('\n');

const CWD = '/srv/proxy';

function load(env: Record<string, string>, yaml = BASE): ProxyConfig {
  return validateConfig(applyEnvOverrides(parseConfigText(yaml, 'proxy.yaml', '/etc/proxy'), env, CWD), strictStandIns);
}

function issuesOf(env: Record<string, string>, yaml = BASE): ConfigError['issues'] {
  try {
    load(env, yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** Every documented variable: a value, what it sets, and a bad value with the problem it reports. */
const CASES: readonly [variable: string, value: string, read: (c: ProxyConfig) => unknown, expected: unknown, bad?: string, problem?: RegExp][] = [
  ['IRON_DNS_ENABLED', 'false', (c) => c.dns?.enabled, false, 'no', /must be true or false \(got "no"\)/],
  ['IRON_DNS_LISTEN', '127.0.0.1:5353', (c) => c.dns?.listen, '127.0.0.1:5353', '127.0.0.1:99999', /port/],
  ['IRON_DNS_PROXY_IP', '10.1.2.3', (c) => c.dns?.proxy_ip, '10.1.2.3', 'fd00::1', /IPv4/i],
  ['IRON_DNS_UPSTREAM_RESOLVER', '10.0.0.2:53', (c) => c.dns?.upstream_resolver, '10.0.0.2:53', 'resolver:x', /port|address/i],
  ['IRON_PROXY_HTTP_LISTEN', ':8080', (c) => c.proxy.http_listen, ':8080', ':http-alt', /port|address/i],
  ['IRON_PROXY_HTTPS_LISTEN', '127.0.0.1:8443', (c) => c.proxy.https_listen, '127.0.0.1:8443', '127.0.0.1:-1', /port|address/i],
  ['IRON_PROXY_TUNNEL_LISTEN', ':1080', (c) => c.proxy.tunnel_listen, ':1080', '1080:', /port|address/i],
  ['IRON_PROXY_MAX_REQUEST_BODY_BYTES', '2048', (c) => c.proxy.max_request_body_bytes, 2048, '2k', /must be an integer \(got "2k"\)/],
  ['IRON_PROXY_MAX_RESPONSE_BODY_BYTES', '4096', (c) => c.proxy.max_response_body_bytes, 4096, '-1', /must be >= 0/],
  ['IRON_PROXY_UPSTREAM_RESPONSE_HEADER_TIMEOUT', '45s', (c) => c.proxy.upstream_response_header_timeout, '45s', '45', /duration/],
  ['IRON_TLS_MODE', 'sni-only', (c) => c.tls.mode, 'sni-only', 'passthrough', /must be one of: mitm, sni-only/],
  ['IRON_TLS_CA_CERT', 'certs/ca.crt', (c) => c.tls.ca_cert, resolve(CWD, 'certs/ca.crt')],
  ['IRON_TLS_CA_KEY', '/keys/ca.key', (c) => c.tls.ca_key, '/keys/ca.key'],
  ['IRON_TLS_CERT_CACHE_SIZE', '50', (c) => c.tls.cert_cache_size, 50, '0', /must be > 0/],
  ['IRON_TLS_LEAF_CERT_EXPIRY_HOURS', '24', (c) => c.tls.leaf_cert_expiry_hours, 24, '1.5', /must be an integer/],
  ['IRON_METRICS_LISTEN', '127.0.0.1:9191', (c) => c.metrics?.listen, '127.0.0.1:9191', 'metrics', /port|address/i],
  ['IRON_MANAGEMENT_LISTEN', '127.0.0.1:9092', (c) => c.management?.listen, '127.0.0.1:9092', '9092', /port|address/i],
  ['IRON_LOG_LEVEL', 'debug', (c) => c.log.level, 'debug', 'verbose', /must be one of: debug, info, warn, error/],
  ['HTTP_PROXY', 'http://squid.corp:3128', (c) => c.proxy.upstream_proxy?.http_proxy, 'http://squid.corp:3128'],
  ['HTTPS_PROXY', 'socks5h://gw:1080', (c) => c.proxy.upstream_proxy?.https_proxy, 'socks5h://gw:1080'],
  ['NO_PROXY', '.internal,10.0.0.0/8', (c) => c.proxy.upstream_proxy?.no_proxy, '.internal,10.0.0.0/8'],
];

describe('IRON_* environment overrides', () => {
  it('has a case for every variable', () => {
    expect(CASES.map(([variable]) => variable).sort()).toEqual(ENV_OVERRIDES.map((o) => o.variable).sort());
  });

  it.each(CASES)('%s=%j sets its field', (variable, value, read, expected) => {
    expect(read(load({ [variable]: value }))).toEqual(expected);
  });

  it.each(CASES.filter((c) => c[4] !== undefined))('%s: a bad value is reported at the variable, not at a line', (variable, _value, _read, _expected, bad, problem) => {
    const issues = issuesOf({ [variable]: bad! });
    expect(issues).toHaveLength(1);
    const [issue] = issues;
    expect(issue!.file).toBe(`environment variable ${variable}`);
    expect(issue!.line).toBeUndefined();
    expect(issue!.path).toBe(ENV_OVERRIDES.find((o) => o.variable === variable)!.path.join('.'));
    expect(issue!.message).toMatch(problem!);
  });

  it('wins over the file, leaves other fields as written, and ignores empty values', () => {
    const config = load({ IRON_LOG_LEVEL: 'error', IRON_PROXY_HTTP_LISTEN: '' }, `${BASE}proxy:\n  http_listen: ":8081"\n`);
    expect(config.log.level).toBe('error');
    expect(config.proxy.http_listen).toBe(':8081');
    expect(config.dns?.proxy_ip).toBe('10.0.0.1');
  });

  it('reads the proxy variables in either case, upper case first, each over its own field', () => {
    const file = `${BASE}proxy:\n  upstream_proxy:\n    http_proxy: "http://file:3128"\n    no_proxy: "file.example"\n`;
    const lower = load({ https_proxy: 'http://lower:8080', no_proxy: 'lower.example' }, file);
    expect(lower.proxy.upstream_proxy).toEqual({ http_proxy: 'http://file:3128', https_proxy: 'http://lower:8080', no_proxy: 'lower.example' });
    const both = applyEnvOverrides(parseConfigText(file, 'proxy.yaml'), { HTTPS_PROXY: 'http://upper:8080', https_proxy: 'http://lower:8080' }, CWD);
    expect(validateConfig(both, strictStandIns).proxy.upstream_proxy?.https_proxy).toBe('http://upper:8080');
    const onlyLower = applyEnvOverrides(parseConfigText(file, 'proxy.yaml'), { HTTPS_PROXY: '', https_proxy: 'http://lower:8080' }, CWD);
    expect(onlyLower.envVariable(['proxy', 'upstream_proxy', 'https_proxy'])).toBe('https_proxy');
  });

  it('accepts every word Go reads as a boolean for IRON_DNS_ENABLED', () => {
    for (const word of ['0', 'f', 'F', 'false', 'FALSE', 'False']) expect(load({ IRON_DNS_ENABLED: word }).dns?.enabled).toBe(false);
    for (const word of ['1', 't', 'T', 'true', 'TRUE', 'True']) expect(load({ IRON_DNS_ENABLED: word }).dns?.enabled).toBe(true);
  });

  it('still locates problems the file wrote at their line', () => {
    const issues = issuesOf({ IRON_LOG_LEVEL: 'loud' }, `${BASE}proxy:\n  http_listen: "nope"\n`);
    expect(issues.map((i) => [i.file, i.line, i.path])).toEqual([
      ['environment variable IRON_LOG_LEVEL', undefined, 'log.level'],
      ['proxy.yaml', 9, 'proxy.http_listen'],
    ]);
  });

  it('names the variable that made a TLS listener demand a CA', () => {
    const issues = issuesOf({ IRON_PROXY_HTTPS_LISTEN: ':8443' }, 'log:\n  level: info\n');
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'tls.ca_cert: required in mitm mode when proxy.https_listen is set (by IRON_PROXY_HTTPS_LISTEN) (or set tls.mode: sni-only)',
      'tls.ca_key: required in mitm mode when proxy.https_listen is set (by IRON_PROXY_HTTPS_LISTEN) (or set tls.mode: sni-only)',
    ]);
  });

  it('marks overridden fields as written, and resolves nothing of the file against the working directory', () => {
    const doc = applyEnvOverrides(parseConfigText(BASE, 'proxy.yaml', '/etc/proxy'), { IRON_PROXY_TUNNEL_LISTEN: ':1080' }, CWD);
    expect(isWritten(doc, ['proxy', 'tunnel_listen'])).toBe(true);
    expect(isWritten(doc, ['proxy', 'http_listen'])).toBe(false);
    expect(isWritten(doc, ['proxy'])).toBe(true);
    expect(isWritten(doc, ['metrics'])).toBe(false);
    expect(doc.envVariable(['proxy', 'tunnel_listen'])).toBe('IRON_PROXY_TUNNEL_LISTEN');
    expect(doc.envVariable(['dns', 'proxy_ip'])).toBeUndefined();
    expect(doc.dir).toBe('/etc/proxy');
    expect(validateConfig(doc, strictStandIns).tls.ca_cert).toBe('ca.crt');
  });

  it('builds a whole config from the environment alone', () => {
    const doc = environmentDocument({ IRON_PROXY_HTTP_LISTEN: '127.0.0.1:8080', IRON_LOG_LEVEL: 'debug', PATH: '/bin' }, '(environment)', CWD);
    expect(doc.file).toBe('(environment)');
    expect(doc.dir).toBe(CWD);
    const config = validateConfig(doc, strictStandIns);
    expect(config.proxy.http_listen).toBe('127.0.0.1:8080');
    expect(config.log.level).toBe('debug');
    expect(config.transforms).toEqual([]);
  });

  it('accepts an empty environment with no file: every default', () => {
    const config = validateConfig(environmentDocument({}, '(environment)', CWD), strictStandIns);
    expect(config.proxy.http_listen).toBe(':80');
    expect(config.dns).toBeUndefined();
  });
});
