/**
 * @proxy/config: reads the YAML config, validates every section and every transform's config
 * against the schema composed from the registered transforms, and reports every problem with
 * its file, line, column and field path.
 */
export { isWritten, parseConfigText, readConfigFile } from './document.js';
export { activeEnvOverrides, applyEnvOverrides, ENV_OVERRIDES, environmentDocument } from './env-overrides.js';
export type { EnvOverride } from './env-overrides.js';
export type { ConfigDocument, SourcePosition } from './document.js';
export type { FieldPath } from './field-path.js';
export { issueAt } from './issues.js';
export { configSchema, DEFAULT_MAX_LOG_BACKLOG_BYTES, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_UPSTREAM_DENY_CIDRS, MAX_WORKERS } from './schema.js';
export { CONFIG_SCHEMA_DOCUMENT_ID, configSchemaDocument } from './schema-document.js';
export type { ConfigRegistry } from './schema.js';
export { loadConfigFile, validateConfig } from './validate.js';
export { findSecretSources } from './secret-sources.js';
export { unavailableTransformMessage } from './iron-proxy-only.js';
export type { FoundSecretSource } from './secret-sources.js';
export type {
  CompatConfig,
  DnsConfig,
  DnsRecordConfig,
  LogConfig,
  ManagementConfig,
  McpArgumentMatcher,
  McpConfig,
  McpServerConfig,
  McpToolConfig,
  MetricsConfig,
  ProxyConfig,
  ProxySection,
  ReverseListenerConfig,
  TlsConfig,
  TransformEntry,
  UpstreamProxyConfig,
} from './types.js';
