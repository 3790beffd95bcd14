import { mcpGatewaySchema, mcpSchema } from '@proxy/mcp';
import type { JsonSchema, SecretSourceDefinition, TransformDefinition } from '@proxy/core';

/** What the loader validates transform configs and secret sources with. */
export interface ConfigRegistry {
  /** Transform definitions keyed by the name used in config. */
  readonly transforms: ReadonlyMap<string, TransformDefinition>;
  readonly secretSources: readonly SecretSourceDefinition[];
}

/**
 * Upstream addresses refused when `proxy.upstream_deny_cidrs` is absent: the cloud credential
 * endpoints (all of IPv4 link-local, which holds instance metadata `169.254.169.254`, ECS task
 * credentials `169.254.170.2` and EKS Pod Identity `169.254.170.23`; IPv6 link-local; AWS's
 * IPv6 metadata and Pod Identity addresses; Alibaba Cloud's metadata address), loopback,
 * "this network" and the unspecified IPv6 address. Private networks (RFC 1918, IPv6 ULA) stay
 * reachable, as in iron-proxy.
 */
export const DEFAULT_UPSTREAM_DENY_CIDRS: readonly string[] = Object.freeze([
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

/** `proxy.max_request_body_bytes` when absent or `0` (iron-proxy reads 0 as "the default", not "unlimited"). */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 1_048_576;

/** `log.max_backlog_bytes` when absent: log lines waiting for a stalled output past this are dropped (and counted). */
export const DEFAULT_MAX_LOG_BACKLOG_BYTES = 16_777_216;

/**
 * The most worker processes `proxy.workers` (and `--workers`) accepts; a larger count is
 * refused, not clamped, since it is more likely a typo than a machine with that many cores.
 */
export const MAX_WORKERS = 256;

/** Prefix of {@link transformSchemaId}. */
const TRANSFORM_SCHEMA_ID_PREFIX = 'https://schemas.proxy.local/transforms/';

const listen = (fallback?: string): JsonSchema => ({
  type: 'string',
  format: 'listen-address',
  ...(fallback === undefined ? {} : { default: fallback }),
});

const nonEmptyString: JsonSchema = { type: 'string', minLength: 1 };

const dnsRecordSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'value'],
  properties: {
    name: { type: 'string', format: 'hostname' },
    type: { type: 'string', enum: ['A', 'AAAA', 'CNAME'] },
    value: { type: 'string' },
  },
  allOf: (
    [
      ['A', 'ipv4'],
      ['AAAA', 'ipv6'],
      ['CNAME', 'hostname'],
    ] as const
  ).map(([type, format]) => ({
    if: { properties: { type: { const: type } }, required: ['type'] },
    then: { properties: { value: { type: 'string', format } } },
  })),
};

const dnsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: listen(':53'),
    enabled: { type: 'boolean', default: true },
    proxy_ip: { type: 'string', format: 'ipv4' },
    proxy_ipv6: { type: 'string', format: 'ipv6' },
    upstream_resolver: { type: 'string', format: 'resolver-address' },
    passthrough: { type: 'array', items: { type: 'string', format: 'host-glob' }, default: [] },
    records: { type: 'array', items: dnsRecordSchema, default: [] },
  },
  // `proxy_ip` is what every answer points at: required unless DNS is switched off.
  if: { properties: { enabled: { const: false } }, required: ['enabled'] },
  else: { required: ['proxy_ip'] },
};

const reverseListenerSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['listen'],
  properties: {
    listen: listen(),
    upstream_host: { type: 'string', format: 'host-port' },
    upstream_scheme: { type: 'string', enum: ['http', 'https'], default: 'https' },
    host_header: { type: 'string', format: 'header-name', default: 'X-Upstream-Host' },
    upstream_timeout: { type: 'string', format: 'positive-duration' },
    tls_cert: nonEmptyString,
    tls_key: nonEmptyString,
  },
  dependencies: { tls_cert: ['tls_key'], tls_key: ['tls_cert'] },
};

const proxySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    http_listen: listen(':80'),
    https_listen: listen(':443'),
    tunnel_listen: listen(),
    max_request_body_bytes: { type: 'integer', minimum: 0, default: DEFAULT_MAX_REQUEST_BODY_BYTES },
    max_response_body_bytes: { type: 'integer', minimum: 0, default: 0 },
    upstream_response_header_timeout: { type: 'string', format: 'positive-duration', default: '30s' },
    max_request_header_bytes: { type: 'integer', minimum: 1024, default: 65_536 },
    max_buffered_body_bytes: { type: 'integer', minimum: 0, default: 134_217_728 },
    max_connection_buffered_bytes: { type: 'integer', minimum: 0 },
    max_connections: { type: 'integer', minimum: 0, default: 1024 },
    workers: {
      anyOf: [
        { type: 'integer', minimum: 1, maximum: MAX_WORKERS },
        { const: 'auto' },
      ],
      default: 1,
    },
    client_header_timeout: { type: 'string', format: 'positive-duration', default: '30s' },
    client_request_timeout: { type: 'string', format: 'duration', default: '5m' },
    client_body_timeout: { type: 'string', format: 'positive-duration', default: '60s' },
    upstream_deny_cidrs: {
      type: 'array',
      items: { type: 'string', format: 'cidr' },
      default: [...DEFAULT_UPSTREAM_DENY_CIDRS],
    },
    reverse: { type: 'array', items: reverseListenerSchema, default: [] },
    upstream_proxy: {
      type: 'object',
      additionalProperties: false,
      properties: { http_proxy: { type: 'string' }, https_proxy: { type: 'string' }, no_proxy: { type: 'string' } },
    },
  },
};

const tlsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    mode: { type: 'string', enum: ['mitm', 'sni-only'], default: 'mitm' },
    ca_cert: nonEmptyString,
    ca_key: nonEmptyString,
    cert_cache_size: { type: 'integer', exclusiveMinimum: 0, default: 1000 },
    leaf_cert_expiry_hours: { type: 'integer', exclusiveMinimum: 0, default: 72 },
    upstream_ca_bundle: nonEmptyString,
  },
};

const managementSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['listen'],
  properties: {
    listen: listen(),
    api_key_env: { type: 'string', minLength: 1, default: 'IRON_MANAGEMENT_API_KEY' },
  },
};

const metricsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: listen(':9090'),
    path: { type: 'string', format: 'url-path', default: '/metrics' },
  },
};

const logSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    level: { type: 'string', enum: ['debug', 'info', 'warn', 'error'], default: 'info' },
    audit_format: { type: 'string', enum: ['native', 'iron-proxy'], default: 'native' },
    max_backlog_bytes: { type: 'integer', minimum: 65_536, default: DEFAULT_MAX_LOG_BACKLOG_BYTES },
  },
};

/**
 * Additive: where this proxy's default differs from iron-proxy's on purpose, a switch back to
 * iron-proxy's behaviour. iron-proxy itself refuses this section (unknown top-level key).
 */
const compatSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    denied_upstream: { type: 'integer', enum: [403, 502], default: 403 },
    iron_proxy_defaults: { type: 'boolean', default: false },
  },
};

/** One `transforms[]` entry, with its `config` constrained only to be a mapping. */
const transformEntrySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { description: 'A built-in transform, or the package name (or file path) of a third-party one.', ...nonEmptyString },
    config: { description: "The transform's settings.", type: 'object', default: {} },
  },
};

/**
 * The top-level schema with each transform's `config` left open: the loader validates every
 * entry's `config` against its own transform's schema separately, so a broken third-party
 * schema or an unknown name affects only that entry.
 */
export function sectionsSchema(transformEntry: JsonSchema = transformEntrySchema): JsonSchema {
  return {
    title: 'Egress proxy configuration',
    type: 'object',
    additionalProperties: false,
    properties: {
      dns: { description: 'The built-in DNS server: answers names with proxy_ip so clients connect to the proxy.', ...dnsSchema },
      proxy: { description: 'Listeners, body and header limits, timeouts and the upstream guard.', ...proxySchema },
      tls: { description: 'TLS interception: the CA that signs per-host certificates (mitm), or SNI-only.', ...tlsSchema },
      transforms: {
        description: 'The pipeline, in order: each entry names a transform (built-in, or a third-party package) and gives its config.',
        type: 'array',
        items: transformEntry,
        default: [],
      },
      mcp: { description: 'Policy for MCP (Model Context Protocol) tool calls: which tools each server may be called with.', ...mcpSchema },
      mcp_gateway: { description: 'Routes for the MCP requests the policy let through: upstream URL and injected credentials.', ...mcpGatewaySchema },
      management: { description: 'The management API (reload, health), guarded by a bearer key.', ...managementSchema },
      metrics: { description: 'The Prometheus metrics listener.', ...metricsSchema },
      log: { description: 'Log level and audit record format.', ...logSchema },
      compat: { description: "Switches back to iron-proxy's behaviour where this proxy's default differs.", ...compatSchema },
    },
  };
}

/** The `$id` a transform's config schema gets inside {@link configSchema}, so its local `$ref`s resolve. */
export function transformSchemaId(name: string): string {
  return `${TRANSFORM_SCHEMA_ID_PREFIX}${encodeURIComponent(name)}.json`;
}

/**
 * The top-level schema with each `transforms[]` entry's `config` checked against
 * `configOf(name, definition)` when the entry's `name` selects that transform; the entry's
 * `name` lists the registered names as `examples` (editors offer them; any name validates).
 */
export function composeTransformSchemas(registry: ConfigRegistry, configOf: (name: string, definition: TransformDefinition) => JsonSchema): JsonSchema {
  const branches = [...registry.transforms].map(([name, definition]) => ({
    if: { properties: { name: { const: name } }, required: ['name'] },
    then: { properties: { config: configOf(name, definition) } },
  }));
  if (branches.length === 0) return sectionsSchema();
  const base = transformEntrySchema.properties as Record<string, JsonSchema>;
  return sectionsSchema({
    ...transformEntrySchema,
    properties: { ...base, name: { ...base.name, examples: [...registry.transforms.keys()] } },
    allOf: branches,
  });
}

/**
 * The composed top-level schema (for documentation, editors and tests): every section, with
 * each `transforms[]` entry's `config` checked against the schema of the transform its `name`
 * selects. It uses the formats and keywords of core's `createSchemaValidator` (secret sources
 * are `$ref`s to its `SECRET_SOURCE_SCHEMA_ID`) plus this package's address formats
 * (`listen-address`, `host-port`, `resolver-address`, `positive-duration`, `header-name`,
 * `url-path`). `validateConfig` validates the same rules, one transform entry at a time.
 * `configSchemaDocument` turns it into one self-contained file for editors.
 */
export function configSchema(registry: ConfigRegistry): JsonSchema {
  return composeTransformSchemas(registry, (name, definition) => ({ $id: transformSchemaId(name), ...definition.schema }));
}
