/**
 * Reading a proxy config: from a file, an `s3://` object, config text or the `IRON_*`
 * environment, with the third-party transforms it names loaded and every section validated.
 * Kept apart from `server.ts` so that what only reads a config (`validate`, the primary of a
 * cluster) does not load the engine, Fastify and undici.
 */
import { ConfigError } from '@proxy/core';
import type { ConfigIssue } from '@proxy/core';
import {
  applyEnvOverrides,
  environmentDocument,
  issueAt,
  isWritten,
  parseConfigText,
  readConfigFile,
  validateConfig,
} from '@proxy/config';
import type { ConfigDocument, ConfigRegistry, ProxyConfig } from '@proxy/config';
import { MANAGED_MODE_UNAVAILABLE } from './command-line.js';
import { judgeIssues } from './judge-checks.js';
import { loadConfigRegistry } from './registry.js';
import { isS3ConfigUrl } from './s3-config-url.js';
import { upstreamProxyIssues } from './upstream-proxy-checks.js';

/** A config file read, its transforms loaded and the whole of it validated. */
export interface LoadedProxyConfig {
  readonly document: ConfigDocument;
  readonly config: ProxyConfig;
  readonly registry: ConfigRegistry;
}

/**
 * Config given as text rather than a file (the `aws-outbound-jwt-proxy` command line is turned
 * into one). `name` stands for the file name in error messages; relative paths in it, and
 * third-party transforms, resolve from the working directory.
 */
export interface ConfigText {
  readonly text: string;
  readonly name: string;
}

/**
 * The config of the `proxy` command line, as iron-proxy reads it: a file, an `s3://bucket/key`
 * object or nothing (`location` absent: defaults only), then the `IRON_*` overrides of `env`.
 */
export interface CommandLineConfig {
  readonly location?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** What errors call the config when there is no config file. */
export const NO_CONFIG_FILE = '(no config file)';

/** Parses the config a source names; a command-line config gets its `IRON_*` overrides. */
async function readDocument(source: string | ConfigText | CommandLineConfig): Promise<ConfigDocument> {
  if (typeof source === 'string') return readConfigFile(source);
  if ('text' in source) return parseConfigText(source.text, source.name);
  const { location, env } = source;
  // iron-proxy runs managed (its policy from a control plane) when this is set: running on the
  // file or the defaults instead would enforce a policy the operator did not write.
  if ((env.IRON_PROXY_TOKEN ?? '') !== '') {
    throw new ConfigError([{ file: 'environment variable IRON_PROXY_TOKEN', path: '', message: `${MANAGED_MODE_UNAVAILABLE}; unset it` }]);
  }
  if (location === undefined) {
    const document = environmentDocument(env, NO_CONFIG_FILE);
    // iron-proxy refuses this too: the management API's reload re-reads a config file.
    if (isWritten(document, ['management'])) {
      throw new ConfigError([issueAt(document, ['management', 'listen'], 'the management API needs a config file (-config) to reload')]);
    }
    return document;
  }
  if (isS3ConfigUrl(location)) {
    // The AWS SDK is loaded only for S3 URLs.
    const { fetchS3Config } = await import('./s3-config.js');
    return applyEnvOverrides(parseConfigText(await fetchS3Config(location), location), env);
  }
  return applyEnvOverrides(await readConfigFile(location), env);
}

/**
 * Reads and validates a config file (or config text): loads the third-party transforms and
 * secret sources it names (from the file's directory), then validates every section and every transform config
 * against the composed schema. Throws one `ConfigError` listing every problem found, each with
 * file, line, column and field path.
 */
export async function loadProxyConfig(source: string | ConfigText | CommandLineConfig): Promise<LoadedProxyConfig> {
  const document = await readDocument(source);
  const { registry, issues } = await loadConfigRegistry(document);
  let config: ProxyConfig | undefined;
  try {
    config = validateConfig(document, registry);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const seen = new Set(issues.map((i) => `${i.path}|${i.line}`));
    // The loader already explained unknown or unloadable transforms; drop the validator's echo of them.
    const namePaths = new Set(issues.map((i) => i.path));
    for (const issue of err.issues) {
      if (seen.has(`${issue.path}|${issue.line}`) || namePaths.has(issue.path)) continue;
      issues.push(issue);
    }
  }
  if (config !== undefined) issues.push(...judgeIssues(document, config), ...managementIssues(document, config), ...upstreamProxyIssues(document, config));
  if (issues.length > 0 || config === undefined) throw new ConfigError(sortIssues(issues));
  return { document, config, registry };
}

/**
 * The management API needs its key: the variable `management.api_key_env` names must be set
 * and non-empty in the process environment, or the config is refused (as iron-proxy does).
 */
function managementIssues(document: ConfigDocument, config: ProxyConfig): ConfigIssue[] {
  const management = config.management;
  if (management === undefined || (process.env[management.api_key_env] ?? '') !== '') return [];
  const path = document.locate(['management', 'api_key_env']) === undefined ? ['management'] : ['management', 'api_key_env'];
  return [issueAt(document, path, `environment variable ${management.api_key_env} is unset or empty: the management API needs a bearer key`)];
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
