/**
 * A third-party transform for the egress proxy, written only against `@proxy/core`'s public
 * API. It refuses requests to denied path prefixes with a configurable status (451 by default)
 * and records which prefix matched. Replace the policy with yours; keep the shape:
 *
 * - `name` is the package name: the config names the transform by it.
 * - `schema` is the JSON Schema of the `config` block; the proxy validates it before starting.
 * - `create(config, env)` builds one instance per pipeline (reloads build new ones): keep state
 *   in the closure, never in module globals.
 * - `onRequest` returns a decision (`CONTINUE`, `reject(...)`, `respond(...)`) or throws a
 *   `ProxyError`, whose status and reason end the request. Any other thrown error fails closed
 *   with 502 `transform_error`.
 */
import { CONTINUE, compileRules, defineTransform, ErrorCodes, ProxyError, rulesSchema } from '@proxy/core';
import type { RuleConfig, TransformDefinition } from '@proxy/core';

/** The `config` block, after schema defaults. */
export interface TemplateConfig {
  /** Path prefixes to refuse (`/admin` refuses `/admin` and `/admin/...`, not `/administrator`). */
  readonly deny_paths: readonly string[];
  /** Status of a refusal. */
  readonly status: number;
  /** Where the transform applies; every request when absent. */
  readonly rules?: readonly RuleConfig[];
}

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['deny_paths'],
  properties: {
    deny_paths: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^/' } },
    status: { type: 'integer', minimum: 400, maximum: 499, default: 451 },
    rules: { ...rulesSchema, minItems: 1 },
  },
};

/** True when `path` is `prefix` or below it. */
function under(path: string, prefix: string): boolean {
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return path === base || path.startsWith(`${base}/`);
}

export const transform: TransformDefinition<TemplateConfig> = defineTransform<TemplateConfig>({
  name: 'proxy-transform-template',
  schema,
  create(config) {
    const scope = config.rules === undefined ? undefined : compileRules(config.rules);
    return {
      onRequest(request, trace) {
        if (scope !== undefined && !scope.matches(request)) return CONTINUE;
        const denied = config.deny_paths.find((prefix) => under(request.path, prefix));
        if (denied === undefined) return CONTINUE;
        trace.annotate('denied_path', denied);
        throw new ProxyError(ErrorCodes.TRANSFORM_FAILED, `path ${request.path} is under ${denied}`, { status: config.status, reason: 'path_denied' });
      },
    };
  },
});

export default transform;
