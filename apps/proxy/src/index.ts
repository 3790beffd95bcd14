/**
 * @proxy/app: the proxy server composed from a YAML config. `startProxy` is what the `proxy`
 * binary runs; it is exported for embedding and for tests.
 */
export { startProxy } from './server.js';
export { loadProxyConfig } from './config-loader.js';
export type { StartProxyOptions, StartProxyCommonOptions, RunningProxy } from './server.js';
export type { CommandLineConfig, ConfigText, LoadedProxyConfig } from './config-loader.js';
export { configWarnings } from './config-warnings.js';
export type { ConfigWarning } from './config-warnings.js';
export { builtinTransforms, builtinSecretSources, loadExternalTransform } from './registry.js';
export { createMetrics } from './metrics.js';
export type { Metrics } from './metrics.js';
export type { MetricsServerOptions } from './metrics-server.js';
export { createAuditCounter } from './audit-metrics.js';
export { parseCommandLine } from './command-line.js';
export type { Command } from './command-line.js';
export { parseAwsJwtCommandLine } from './aws-jwt-command-line.js';
export type { AwsJwtCommand, AwsJwtSettings } from './aws-jwt-command-line.js';
export { awsJwtConfigYaml } from './aws-jwt-config.js';
