import { ConfigError, createSchemaValidator } from '@proxy/core';
import type { ConfigIssue } from '@proxy/core';
import type { Ajv, ValidateFunction } from 'ajv';
import { readConfigFile } from './document.js';
import type { ConfigDocument } from './document.js';
import { addConfigFormats } from './formats.js';
import { mcpConfigProblems, mcpGatewayConfigProblems, type McpConfig, type McpGatewayConfig } from '@proxy/mcp';
import { issueAt, issuesFromAjvErrors, sortIssues } from './issues.js';
import { isRecord } from './is-record.js';
import { unavailableFeatureIssues, unavailableTransformMessage } from './iron-proxy-only.js';
import { createSchemaLookup } from './schema-lookup.js';
import { sectionsSchema } from './schema.js';
import type { ConfigRegistry } from './schema.js';
import type { ProxyConfig } from './types.js';

/**
 * Validates the whole document against the sections schema and every transform's `config`
 * against its definition's schema, then checks the rules that span sections. Returns the
 * config with defaults applied (the document itself is left as written). Throws one
 * `ConfigError` (`PROXY_ERR_CONFIG_INVALID`) listing every issue, each with file, line,
 * column and field path.
 */
export function validateConfig(doc: ConfigDocument, registry: ConfigRegistry): ProxyConfig {
  if (doc.data === null || doc.data === undefined) {
    throw new ConfigError([{ file: doc.file, path: '', message: 'the config file is empty (expected sections such as proxy and transforms)' }]);
  }
  const data: unknown = structuredClone(doc.data);
  const ajv = createSchemaValidator({ secretSources: registry.secretSources });
  addConfigFormats(ajv);

  const root = sectionsSchema();
  const validateSections = ajv.compile(root);
  const issues: ConfigIssue[] = validateSections(data)
    ? []
    : issuesFromAjvErrors(validateSections.errors ?? [], { doc, base: [], data, schemaOf: createSchemaLookup(ajv, root) });
  issues.push(...transformConfigIssues(ajv, doc, data, registry), ...tlsAuthorityIssues(doc, data), ...mcpPatternIssues(doc, data, issues), ...mcpGatewayIssues(doc, data, issues));
  // iron-proxy features this version lacks are said to be so, not reported as unknown fields or values.
  const unavailable = unavailableFeatureIssues(doc, doc.data, registry);
  const all = [...issues.filter((issue) => !unavailable.covers(issue)), ...unavailable.issues];
  if (all.length > 0) throw new ConfigError(sortIssues(all));
  return data as ProxyConfig;
}

/**
 * RE2 syntax of the MCP argument matchers (the engine `matches` runs with), checked once the
 * `mcp` block has the right shape (else its schema errors say what is wrong).
 */
function mcpPatternIssues(doc: ConfigDocument, data: unknown, found: readonly ConfigIssue[]): ConfigIssue[] {
  const mcp = isRecord(data) ? data.mcp : undefined;
  if (mcp === undefined || found.some((issue) => issue.path === 'mcp' || issue.path.startsWith('mcp.'))) return [];
  return mcpConfigProblems(mcp as McpConfig).map((problem) => issueAt(doc, ['mcp', ...problem.path], problem.message));
}

/**
 * Route names and upstream URLs of the `mcp_gateway` block, checked once the block has the
 * right shape (else its schema errors say what is wrong).
 */
function mcpGatewayIssues(doc: ConfigDocument, data: unknown, found: readonly ConfigIssue[]): ConfigIssue[] {
  const gateway = isRecord(data) ? data.mcp_gateway : undefined;
  if (gateway === undefined || found.some((issue) => issue.path === 'mcp_gateway' || issue.path.startsWith('mcp_gateway.'))) return [];
  return mcpGatewayConfigProblems(gateway as McpGatewayConfig).map((problem) => issueAt(doc, ['mcp_gateway', ...problem.path], problem.message));
}

/** Reads, parses and validates a config file (see {@link validateConfig}). */
export async function loadConfigFile(file: string, registry: ConfigRegistry): Promise<ProxyConfig> {
  return validateConfig(await readConfigFile(file), registry);
}

/**
 * Validates each `transforms[i].config` against the schema of the transform `name` selects,
 * in place (defaults applied). An unknown name is one issue at that `name`; its config is
 * not checked, so no error cascades from it.
 */
function transformConfigIssues(ajv: Ajv, doc: ConfigDocument, data: unknown, registry: ConfigRegistry): ConfigIssue[] {
  const entries = isRecord(data) && Array.isArray(data.transforms) ? (data.transforms as unknown[]) : [];
  const issues: ConfigIssue[] = [];
  entries.forEach((entry, index) => {
    // Entries without a usable name or config were reported by the sections schema.
    if (!isRecord(entry) || typeof entry.name !== 'string' || entry.name === '') return;
    const namePath = ['transforms', index, 'name'];
    const definition = registry.transforms.get(entry.name);
    if (definition === undefined) {
      const unavailable = unavailableTransformMessage(entry.name);
      if (unavailable !== undefined) {
        issues.push(issueAt(doc, namePath, unavailable));
        return;
      }
      const registered = [...registry.transforms.keys()].join(', ') || 'none';
      issues.push(issueAt(doc, namePath, `unknown transform "${entry.name}" (registered: ${registered})`));
      return;
    }
    if (!isRecord(entry.config)) return;
    let validate: ValidateFunction;
    try {
      validate = ajv.compile(definition.schema);
    } catch (err) {
      issues.push(issueAt(doc, namePath, `transform "${entry.name}" has an invalid config schema: ${(err as Error).message}`));
      return;
    }
    if (!validate(entry.config)) {
      issues.push(
        ...issuesFromAjvErrors(validate.errors ?? [], {
          doc,
          base: ['transforms', index, 'config'],
          data: entry.config,
          schemaOf: createSchemaLookup(ajv, definition.schema),
        }),
      );
    }
  });
  return issues;
}

/**
 * In mitm mode the CA is needed as soon as a TLS-terminating listener is configured explicitly
 * (`proxy.https_listen` or `proxy.tunnel_listen` written in the file or set by its variable; the `:443` default alone
 * does not demand one, unless `compat.iron_proxy_defaults` opens it).
 */
function tlsAuthorityIssues(doc: ConfigDocument, data: unknown): ConfigIssue[] {
  const written = isRecord(doc.data) && isRecord(doc.data.proxy) ? doc.data.proxy : {};
  const writtenListener = ['https_listen', 'tunnel_listen'].find((key) => written[key] !== undefined);
  // compat.iron_proxy_defaults opens proxy.https_listen (:443) as iron-proxy does, written or not.
  const ironProxyDefaults = isRecord(data) && isRecord(data.compat) && data.compat.iron_proxy_defaults === true;
  const listener = writtenListener ?? (ironProxyDefaults ? 'https_listen' : undefined);
  const tls = isRecord(data) ? data.tls : undefined;
  if (listener === undefined || !isRecord(tls) || tls.mode !== 'mitm') return [];
  const where = doc.locate(['tls']) ?? (writtenListener === undefined ? doc.locate(['compat', 'iron_proxy_defaults']) : doc.locate(['proxy', listener]));
  const variable = doc.envVariable(['proxy', listener]);
  const setBy = writtenListener === undefined ? ' (opened by compat.iron_proxy_defaults)' : variable === undefined ? '' : ` (by ${variable})`;
  return ['ca_cert', 'ca_key']
    .filter((key) => tls[key] === undefined)
    .map((key) => ({
      ...issueAt(doc, ['tls', key], `required in mitm mode when proxy.${listener} is set${setBy} (or set tls.mode: sni-only)`),
      ...(where === undefined ? {} : { line: where.line, column: where.column }),
    }));
}
