import { rulesSchema, secretSourceRef, type JsonSchema, type RuleConfig, type SecretSourceConfig, type WithDefaults } from '@proxy/core';

/** Where and how to add a secret the workload never sends: a header (through a formatter) or a query parameter. */
export interface InjectConfig {
  /** Header to set, sent with this exact casing. Exclusive with `query_param`. */
  readonly header?: string;
  /** Query parameter to set (URL-encoded). Exclusive with `header`. */
  readonly query_param?: string;
  /** Template of the header value; `{{ .Value }}` is the secret. Default `{{ .Value }}`. */
  readonly formatter?: string;
}

/** Which placeholder to swap for the real secret, and where to look for it. */
export interface ReplaceConfig {
  /** The placeholder the workload sends. */
  readonly proxy_value: string;
  /** Headers to scan: literal names or `/regex/`; empty (the default) scans every header. */
  readonly match_headers?: readonly string[];
  /** Also scan the body. */
  readonly match_body?: boolean;
  /** Also scan the URL path. */
  readonly match_path?: boolean;
  /** Also scan the raw query string. */
  readonly match_query?: boolean;
  /** Refuse (403 `proxy_token_missing`) a request in scope that carries the placeholder nowhere scanned. */
  readonly require?: boolean;
}

/**
 * One `secrets[]` entry. Exactly one of `inject`, `replace`, or the legacy form, where the
 * replace fields sit at the top level of the entry.
 */
export interface SecretEntryConfig extends Partial<ReplaceConfig> {
  readonly source: SecretSourceConfig;
  readonly inject?: InjectConfig;
  readonly replace?: ReplaceConfig;
  /** Destinations this secret applies to; empty means every destination. */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block of a `secrets` transform, after schema defaults. */
export interface SecretsConfig {
  readonly secrets: readonly SecretEntryConfig[];
}

/** One `secrets[]` entry as written: `rules` defaults to every destination. */
export type SecretEntryInput = WithDefaults<SecretEntryConfig, 'rules'>;

/** The `config` block of a `secrets` transform as written, before schema defaults. */
export interface SecretsInput {
  readonly secrets?: readonly SecretEntryInput[];
}

/** An HTTP header field name (RFC 9110 token). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

const replaceProperties: Record<keyof ReplaceConfig, JsonSchema> = {
  proxy_value: { type: 'string', minLength: 1 },
  match_headers: { type: 'array', items: { type: 'string', format: 'header-pattern' } },
  match_body: { type: 'boolean' },
  match_path: { type: 'boolean' },
  match_query: { type: 'boolean' },
  require: { type: 'boolean' },
};
const replaceKeys = Object.keys(replaceProperties);

/** Forbids every one of `keys` (used to keep the entry forms apart). */
const forbid = (keys: readonly string[]): JsonSchema => ({ properties: Object.fromEntries(keys.map((key) => [key, false])) });

const injectSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    header: { type: 'string', pattern: HEADER_NAME },
    query_param: { type: 'string', minLength: 1 },
    formatter: { type: 'string', proxyTemplate: { fields: ['Value'] } },
  },
  oneOf: [
    { required: ['header'], ...forbid(['query_param']) },
    // A query parameter carries the bare value: a formatter would be ignored, so it is refused.
    { required: ['query_param'], ...forbid(['header', 'formatter']) },
  ],
};

const replaceSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['proxy_value'],
  properties: replaceProperties,
};

const entrySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['source'],
  properties: {
    source: secretSourceRef,
    inject: injectSchema,
    replace: replaceSchema,
    rules: { ...rulesSchema, default: [] },
    ...replaceProperties,
  },
  allOf: [
    // As in iron-proxy, an entry has one mode; the descriptions tell which field to remove.
    {
      if: { required: ['inject'] },
      then: {
        ...forbid(['replace', ...replaceKeys]),
        description: 'keep "inject" to add the secret to every request the rules match, or keep "replace" (or the older top-level proxy_value) to swap the placeholder the workload sends',
      },
    },
    {
      if: { required: ['replace'] },
      then: {
        ...forbid(replaceKeys),
        description: 'a top-level proxy_value, match_headers, match_body, match_path, match_query or require is the older spelling of the "replace" block: move it into "replace"',
      },
    },
    { anyOf: [{ required: ['inject'] }, { required: ['replace'] }, { required: ['proxy_value'] }] },
  ],
};

/** JSON Schema of the `secrets` transform's config. */
export const secretsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    secrets: { type: 'array', items: entrySchema, default: [] },
  },
};

/** The replace settings of an entry, whichever form it was written in; undefined for inject entries. */
export function replaceConfigOf(entry: SecretEntryConfig): ReplaceConfig | undefined {
  if (entry.replace !== undefined) return entry.replace;
  if (entry.proxy_value === undefined) return undefined;
  const { inject: _inject, replace: _replace, source: _source, rules: _rules, ...legacy } = entry;
  return { ...legacy, proxy_value: entry.proxy_value };
}
