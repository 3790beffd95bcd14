import type { ConfigIssue } from '@proxy/core';
import type { ConfigDocument } from './document.js';
import { formatFieldPath } from './field-path.js';
import { issueAt } from './issues.js';
import { isRecord } from './is-record.js';
import type { ConfigRegistry } from './schema.js';
import { findSecretSources } from './secret-sources.js';

/**
 * Parts of iron-proxy's configuration this project does not build. A config written for
 * iron-proxy that uses one is refused with a message saying so, rather than as an unknown
 * field or value, so the operator knows the file is right and the feature is what is missing.
 */

/** iron-proxy's top-level sections that are not available here, with what each one does. */
const UNAVAILABLE_SECTIONS: ReadonlyMap<string, string> = new Map([
  ['postgres', 'a PostgreSQL proxy'],
  ['control_plane', 'managed mode, synced from a control plane'],
]);

/** iron-proxy's secret source types that are not available here, with what each one reads. */
const UNAVAILABLE_SOURCE_TYPES: ReadonlyMap<string, string> = new Map([
  ['control_plane', 'a value sent by the control plane'],
  ['vault_kv', 'a HashiCorp Vault KV secret'],
  ['token_broker', 'a token from iron-token-broker'],
]);

/** iron-proxy's top-level sections that this version has, with what each one does. */
const AVAILABLE_SECTIONS: ReadonlyMap<string, string> = new Map([
  ['mcp', 'the MCP tool policy'],
  ['mcp_gateway', 'the MCP gateway'],
]);

const NOT_HERE = 'is not available in this version';

/**
 * The message for a transform named after one of iron-proxy's top-level sections (iron-proxy
 * has no such transform either): where to write it when this version has it, else that it is
 * not available. Undefined for any other name.
 */
export function unavailableTransformMessage(name: string): string | undefined {
  const section = AVAILABLE_SECTIONS.get(name);
  if (section !== undefined) return `"${name}" is not a transform but a top-level section (${section}); write it as "${name}:" at the top level of the file`;
  const what = UNAVAILABLE_SECTIONS.get(name);
  if (what === undefined) return undefined;
  return `"${name}" is not a transform but a top-level section in iron-proxy (${what}), and it ${NOT_HERE}`;
}

function unavailableSectionMessage(name: string, what: string): string {
  return `iron-proxy's "${name}" section (${what}) ${NOT_HERE}; remove it`;
}

function unavailableSourceMessage(type: string, what: string, available: readonly string[]): string {
  return (
    `secret source type "${type}" (${what}) exists in iron-proxy but ${NOT_HERE} ` +
    `(available: ${available.join(', ')}; a third-party source is named by its package name)`
  );
}

/**
 * Issues for the iron-proxy features in `data` that this version lacks: top-level sections and
 * secret source types the registry does not provide. Returns the issues and a predicate that
 * says whether another issue is an echo of one of them (the sections schema's "unknown field",
 * the source schema's "must be one of"), so the caller drops it.
 */
export function unavailableFeatureIssues(
  doc: ConfigDocument,
  data: unknown,
  registry: ConfigRegistry,
): { issues: ConfigIssue[]; covers: (issue: ConfigIssue) => boolean } {
  const issues: ConfigIssue[] = [];
  const covered: string[] = [];
  if (isRecord(data)) {
    for (const [name, what] of UNAVAILABLE_SECTIONS) {
      if (data[name] === undefined) continue;
      issues.push(issueAt(doc, [name], unavailableSectionMessage(name, what)));
      covered.push(name);
    }
  }
  const available = registry.secretSources.map((s) => s.type);
  for (const { path, source } of findSecretSources(data, registry.transforms)) {
    const type = source.type;
    if (typeof type !== 'string' || available.includes(type)) continue;
    const what = UNAVAILABLE_SOURCE_TYPES.get(type);
    if (what === undefined) continue;
    issues.push(issueAt(doc, [...path, 'type'], unavailableSourceMessage(type, what, available)));
    covered.push(formatFieldPath(path));
  }
  const covers = (issue: ConfigIssue): boolean =>
    covered.some((path) => issue.path === path || issue.path.startsWith(`${path}.`) || issue.path.startsWith(`${path}[`));
  return { issues, covers };
}
