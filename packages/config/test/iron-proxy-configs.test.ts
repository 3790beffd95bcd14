import { fileURLToPath } from 'node:url';
import { createSchemaValidator } from '@proxy/core';
import { describe, expect, it } from 'vitest';
import { configSchema, DEFAULT_UPSTREAM_DENY_CIDRS, loadConfigFile, readConfigFile } from '../src/index.js';
import { addConfigFormats } from '../src/formats.js';
import { ironProxyStandIns, secretSources } from './support/stand-ins.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe("iron-proxy's published configs", () => {
  it('loads the quickstart config and fills in every default', async () => {
    const config = await loadConfigFile(fixture('quickstart.yaml'), ironProxyStandIns);

    expect(config.dns).toEqual({
      listen: ':53',
      proxy_ip: '172.20.0.2',
      enabled: true,
      passthrough: [],
      records: [],
    });
    expect(config.proxy).toEqual({
      http_listen: ':80',
      https_listen: ':443',
      max_request_body_bytes: 1_048_576,
      max_response_body_bytes: 0,
      upstream_response_header_timeout: '30s',
      upstream_deny_cidrs: [...DEFAULT_UPSTREAM_DENY_CIDRS],
      reverse: [],
      max_request_header_bytes: 65_536,
      max_buffered_body_bytes: 134_217_728,
      max_connections: 1024,
      workers: 1,
      client_header_timeout: '30s',
      client_request_timeout: '5m',
      client_body_timeout: '60s',
    });
    expect(config.tls).toEqual({
      mode: 'mitm',
      ca_cert: '/certs/ca.crt',
      ca_key: '/certs/ca.key',
      cert_cache_size: 1000,
      leaf_cert_expiry_hours: 72,
    });
    expect(config.transforms.map((t) => t.name)).toEqual(['allowlist', 'secrets']);
    expect(config.transforms[1]?.config).toMatchObject({
      secrets: [{ source: { type: 'env', var: 'OPENAI_API_KEY' } }, { source: { type: 'env', var: 'INTERNAL_TOKEN' } }],
    });
    expect(config.log).toEqual({ level: 'info', audit_format: 'native', max_backlog_bytes: 16_777_216 });
    expect(config.mcp).toBeUndefined();
    expect(config.management).toBeUndefined();
    expect(config.metrics).toBeUndefined();
  });

  it('loads the full example with every section', async () => {
    const config = await loadConfigFile(fixture('full-example.yaml'), ironProxyStandIns);

    expect(config.dns?.records).toEqual([{ name: 'custom.local', type: 'A', value: '10.0.0.5' }]);
    expect(config.dns?.upstream_resolver).toBe('8.8.8.8:53');
    expect(config.proxy.tunnel_listen).toBe(':1080');
    // An explicit list replaces the defaults entirely.
    expect(config.proxy.upstream_deny_cidrs).toEqual(['169.254.169.254/32', 'fd00:ec2::254/128', '127.0.0.0/8', '::1/128']);
    expect(config.transforms.map((t) => t.name)).toEqual(['allowlist', 'secrets', 'annotate', 'grpc', 'judge', 'header_allowlist']);
    expect(config.mcp).toEqual({
      error: { code: -32001, message: 'blocked by iron-proxy policy' },
      servers: [
        {
          name: 'github',
          rules: [{ host: 'mcp.github.com', paths: ['/mcp', '/mcp/*'] }],
          tools: [
            { name: 'search_repositories', when: [] },
            {
              name: 'create_issue',
              when: [
                { path: 'owner', equals: 'ironsh' },
                { path: 'repo', in: ['iron-proxy'] },
              ],
            },
          ],
        },
      ],
    });
    expect(config.management).toEqual({ listen: '127.0.0.1:9092', api_key_env: 'IRON_MANAGEMENT_API_KEY' });
    expect(config.metrics).toEqual({ listen: ':9090', path: '/metrics' });
  });

  it('configSchema composes each transform schema under its name', async () => {
    const ajv = createSchemaValidator({ secretSources });
    addConfigFormats(ajv);
    const validate = ajv.compile(configSchema(ironProxyStandIns));
    const doc = await readConfigFile(fixture('full-example.yaml'));

    expect(validate(structuredClone(doc.data))).toBe(true);

    const data = structuredClone(doc.data) as { transforms: { config: { secrets: { source: Record<string, unknown> }[] } }[] };
    const source = data.transforms[1]?.config.secrets[1]?.source;
    if (source !== undefined) source.type = 'vault';
    expect(validate(data)).toBe(false);
    expect(validate.errors?.map((e) => e.instancePath)).toContain('/transforms/1/config/secrets/1/source/type');
  });
});
