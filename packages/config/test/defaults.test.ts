import { describe, expect, it } from 'vitest';
import { CidrSet } from '@proxy/core';
import { DEFAULT_UPSTREAM_DENY_CIDRS, parseConfigText, validateConfig } from '../src/index.js';
import type { ProxyConfig } from '../src/index.js';
import { strictStandIns } from './support/stand-ins.js';

function load(yaml: string): ProxyConfig {
  return validateConfig(parseConfigText(yaml, 'proxy.yaml'), strictStandIns);
}

describe('defaults', () => {
  it('fills every section that has defaults when only transforms are written', () => {
    const config = load('transforms:\n  - name: allowlist\n    config:\n      domains: ["example.com"]\n');

    expect(config.proxy.http_listen).toBe(':80');
    expect(config.proxy.https_listen).toBe(':443');
    expect(config.proxy.tunnel_listen).toBeUndefined();
    expect(config.proxy.upstream_response_header_timeout).toBe('30s');
    expect(config.proxy.max_request_body_bytes).toBe(1_048_576);
    expect(config.proxy.max_response_body_bytes).toBe(0);
    expect(config.tls).toEqual({ mode: 'mitm', cert_cache_size: 1000, leaf_cert_expiry_hours: 72 });
    expect(config.log.level).toBe('info');
    expect(config.dns).toBeUndefined();
    // The transform's own schema defaults are applied too.
    expect(config.transforms).toEqual([{ name: 'allowlist', config: { domains: ['example.com'], cidrs: [], rules: [], default_ports: [80, 443], warn: false } }]);
  });

  it('gives a transform written without config an empty one, with its defaults', () => {
    expect(load('transforms:\n  - name: slow_policy\n').transforms).toEqual([{ name: 'slow_policy', config: { timeout: '8s' } }]);
  });

  it('denies the cloud credential endpoints and loopback, not private networks, when upstream_deny_cidrs is absent', () => {
    expect(load('proxy: {}\n').proxy.upstream_deny_cidrs).toEqual([
      '169.254.0.0/16',
      'fe80::/10',
      'fd00:ec2::254/128',
      'fd00:ec2::23/128',
      '100.100.100.200/32',
      '127.0.0.0/8',
      '::1/128',
      '0.0.0.0/8',
      '::/128',
    ]);
    expect(DEFAULT_UPSTREAM_DENY_CIDRS).toHaveLength(9);
    const deny = CidrSet.parse(DEFAULT_UPSTREAM_DENY_CIDRS);
    // IMDS, ECS task credentials, EKS Pod Identity (IPv4 and IPv6), Alibaba Cloud metadata.
    for (const endpoint of ['169.254.169.254', '169.254.170.2', '169.254.170.23', 'fd00:ec2::254', 'fd00:ec2::23', '100.100.100.200', 'fe80::1']) {
      expect(deny.contains(endpoint), endpoint).toBe(true);
    }
    for (const reachable of ['10.0.0.1', '172.16.0.1', '192.168.1.1', 'fd12::1', '100.100.100.201']) {
      expect(deny.contains(reachable), reachable).toBe(false);
    }
  });

  it('replaces the deny list with an explicit one, and disables it with []', () => {
    expect(load('proxy:\n  upstream_deny_cidrs: ["10.0.0.0/8"]\n').proxy.upstream_deny_cidrs).toEqual(['10.0.0.0/8']);
    expect(load('proxy:\n  upstream_deny_cidrs: []\n').proxy.upstream_deny_cidrs).toEqual([]);
  });

  it('keeps durations as written', () => {
    const config = load('proxy:\n  upstream_response_header_timeout: 2m30s\n');
    expect(config.proxy.upstream_response_header_timeout).toBe('2m30s');
  });

  it('fills dns, metrics, management and mcp defaults when those sections are present', () => {
    const config = load(
      [
        'dns:',
        '  proxy_ip: 10.0.0.2',
        'metrics: {}',
        'management:',
        '  listen: 127.0.0.1:9092',
        'mcp:',
        '  servers:',
        '    - name: github',
        '      rules: [{ host: mcp.github.com }]',
      ].join('\n'),
    );
    expect(config.dns).toEqual({ listen: ':53', enabled: true, proxy_ip: '10.0.0.2', passthrough: [], records: [] });
    expect(config.metrics).toEqual({ listen: ':9090', path: '/metrics' });
    expect(config.management).toEqual({ listen: '127.0.0.1:9092', api_key_env: 'IRON_MANAGEMENT_API_KEY' });
    expect(config.mcp).toEqual({
      error: { code: -32001, message: 'blocked by iron-proxy policy' },
      servers: [{ name: 'github', rules: [{ host: 'mcp.github.com' }], tools: [] }],
    });
  });

  it('fills reverse listener defaults', () => {
    const config = load('proxy:\n  reverse:\n    - listen: "127.0.0.1:0"\n    - listen: ":8443"\n      upstream_host: api.internal:8443\n      upstream_scheme: http\n');
    expect(config.proxy.reverse).toEqual([
      { listen: '127.0.0.1:0', upstream_scheme: 'https', host_header: 'X-Upstream-Host' },
      { listen: ':8443', upstream_host: 'api.internal:8443', upstream_scheme: 'http', host_header: 'X-Upstream-Host' },
    ]);
  });

  it('does not need a DNS proxy_ip when the DNS server is disabled', () => {
    expect(load('dns:\n  enabled: false\n  upstream_resolver: "1.1.1.1"\n').dns).toMatchObject({ enabled: false, upstream_resolver: '1.1.1.1' });
  });

  it('leaves the document as written', () => {
    const doc = parseConfigText('proxy:\n  http_listen: ":8080"\n', 'proxy.yaml');
    validateConfig(doc, strictStandIns);
    expect(doc.data).toEqual({ proxy: { http_listen: ':8080' } });
  });
});
