/**
 * `header_allowlist`: default-deny on request headers. On requests in scope, every header that
 * matches no entry of `headers` is removed before the request goes upstream; the removed names
 * are recorded as `stripped_headers`.
 */
import {
  CONTINUE,
  canonicalHeaderName,
  compileHeaderPatterns,
  compileRules,
  defineTransform,
  rulesSchema,
  type RuleConfig,
  type TransformDefinition,
  type WithDefaults,
} from '@proxy/core';

/** The `config` block of a `header_allowlist` transform, after schema defaults. */
export interface HeaderAllowlistConfig {
  /** Allowed header names: literal (case-insensitive) or `/regex/` (case-insensitive, canonical names). */
  readonly headers: readonly string[];
  /** Destinations the allowlist applies to; empty means every request. */
  readonly rules: readonly RuleConfig[];
}

/** The `config` block as written: the fields the schema defaults are optional. */
export type HeaderAllowlistInput = WithDefaults<HeaderAllowlistConfig, 'rules'>;

/**
 * Headers that are never stripped: the engine owns them (the destination and the body framing),
 * and removing them would change where the request goes or how its body is read.
 */
export const ENGINE_MANAGED_HEADERS: readonly string[] = ['host', 'content-length', 'transfer-encoding'];

const headerAllowlistSchema = {
  type: 'object',
  additionalProperties: false,
  // iron-proxy refuses an allowlist with no headers (it would strip every header).
  required: ['headers'],
  properties: {
    headers: { type: 'array', minItems: 1, items: { type: 'string', format: 'header-pattern' } },
    rules: { ...rulesSchema, default: [] },
  },
};

/** The `header_allowlist` transform definition. */
export const headerAllowlistTransform: TransformDefinition<HeaderAllowlistConfig, HeaderAllowlistInput> = defineTransform<HeaderAllowlistConfig, HeaderAllowlistInput>({
  name: 'header_allowlist',
  schema: headerAllowlistSchema,
  create(config) {
    const allowed = compileHeaderPatterns([...config.headers, ...ENGINE_MANAGED_HEADERS]);
    const scope = config.rules.length === 0 ? undefined : compileRules(config.rules);
    return {
      onRequest(request, trace) {
        if (scope !== undefined && !scope.matches(request)) return CONTINUE;
        const stripped: string[] = [];
        const headers = request.headers;
        for (let i = 0; i < headers.size; ) {
          const name = headers.at(i)![0];
          if (allowed.match(name) !== undefined) {
            i++;
            continue;
          }
          headers.deleteAt(i);
          const canonical = canonicalHeaderName(name);
          if (!stripped.includes(canonical)) stripped.push(canonical);
        }
        if (stripped.length > 0) trace.annotate('stripped_headers', stripped);
        return CONTINUE;
      },
    };
  },
});

export default headerAllowlistTransform;
