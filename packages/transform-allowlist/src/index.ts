/**
 * `allowlist`: the default-deny egress boundary. A request goes on only when its destination
 * matches a `domains` glob, a `cidrs` range or one of the `rules`; anything else is refused
 * with 403 `not_allowlisted` (or, with `warn: true`, let through and flagged).
 */
import {
  CONTINUE,
  compileRules,
  defineTransform,
  reject,
  rulesSchema,
  type Decision,
  type ProxyRequest,
  type RuleConfig,
  type RuleSet,
  type Trace,
  type TransformDefinition,
} from '@proxy/core';

/** The `config` block of an `allowlist` transform, after schema defaults. */
export interface AllowlistConfig {
  /** Host globs allowed for every method and path (`api.example.com`, `*.example.com`, `*`). */
  readonly domains: readonly string[];
  /** CIDR ranges allowed for every method and path (matched against IP-literal destinations). */
  readonly cidrs: readonly string[];
  /** Destinations with optional method and path restrictions. */
  readonly rules: readonly RuleConfig[];
  /** Log and annotate violations instead of refusing them. */
  readonly warn: boolean;
}

/** Reject reason written to the audit record for a destination that is not allowed. */
export const NOT_ALLOWLISTED = 'not_allowlisted';

const allowlistSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    domains: { type: 'array', items: { type: 'string', minLength: 1, format: 'host-glob' }, default: [] },
    cidrs: { type: 'array', items: { type: 'string', format: 'cidr' }, default: [] },
    rules: { ...rulesSchema, default: [] },
    warn: { type: 'boolean', default: false },
  },
};

/** The `allowlist` transform definition. */
export const allowlistTransform: TransformDefinition<AllowlistConfig> = defineTransform<AllowlistConfig>({
  name: 'allowlist',
  schema: allowlistSchema,
  decidesDestinations: true,
  create(config, env) {
    // Flat entries are rules without method or path restrictions: one rule set covers all three.
    const allowed = compileRules([
      ...config.domains.map((host) => ({ host })),
      ...config.cidrs.map((cidr) => ({ cidr })),
      ...config.rules,
    ]);
    // A tunnel opens on its host alone, and every request inside it is checked against the full
    // rules: any rule naming the host lets the tunnel open, whatever methods and paths it limits.
    const tunnelTargets = compileRules([
      ...config.domains.map((host) => ({ host })),
      ...config.cidrs.map((cidr) => ({ cidr })),
      ...config.rules.map(destinationOf),
    ]);
    const decide = (rules: RuleSet, request: ProxyRequest, trace: Trace): Decision => {
      if (rules.matches(request)) return CONTINUE;
      trace.annotate('host', request.host);
      if (config.warn) {
        trace.annotate('warn', true);
        trace.annotate('would_reject', NOT_ALLOWLISTED);
        env.logger.warn(
          { host: request.host, method: request.method, path: request.path, reason: NOT_ALLOWLISTED },
          'allowlist (warn mode): request would have been blocked',
        );
        return CONTINUE;
      }
      return reject(403, NOT_ALLOWLISTED);
    };
    return {
      onRequest: (request, trace) => decide(allowed, request, trace),
      onTunnel: (request, trace) => decide(tunnelTargets, request, trace),
    };
  },
});

/** The destination of a rule, without its method and path restrictions. */
function destinationOf(rule: RuleConfig): RuleConfig {
  return rule.cidr === undefined ? { host: rule.host ?? '' } : { cidr: rule.cidr };
}

export default allowlistTransform;
