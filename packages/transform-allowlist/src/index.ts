/**
 * `allowlist`: the default-deny egress boundary. A request goes on only when its destination
 * (host and port) matches a `domains` glob, a `cidrs` range or one of the `rules`; anything
 * else is refused with 403 `not_allowlisted` (or, with `warn: true`, let through and flagged).
 * Entries that name no port allow `default_ports`: 80 and 443 (TLS only) unless configured.
 */
import {
  CONTINUE,
  compileRules,
  defineTransform,
  portsSchema,
  reject,
  rulesSchema,
  type Decision,
  type PortSpec,
  type ProxyRequest,
  type RuleConfig,
  type RuleSet,
  type Trace,
  type TransformDefinition,
  type WithDefaults,
} from '@proxy/core';

/** The `config` block of an `allowlist` transform, after schema defaults. */
export interface AllowlistConfig {
  /**
   * Host globs allowed for every method and path (`api.example.com`, `*.example.com`, `*`),
   * each with an optional port (`api.example.com:8443`, `10.0.0.1:*`).
   */
  readonly domains: readonly string[];
  /** CIDR ranges allowed for every method and path (matched against IP-literal destinations). */
  readonly cidrs: readonly string[];
  /** Destinations with optional port, method and path restrictions. */
  readonly rules: readonly RuleConfig[];
  /**
   * The ports of every entry that names none. Default `[80, 443]`, 443 for TLS only; `["*"]`
   * allows any port, as iron-proxy does.
   */
  readonly default_ports: readonly PortSpec[];
  /** Log and annotate violations instead of refusing them. */
  readonly warn: boolean;
}

/**
 * The `config` block of an `allowlist` transform as written: every field has a schema default,
 * so `{ domains: ['api.example.com'] }` (or even `{}`, which allows nothing) is a whole config.
 */
export type AllowlistInput = WithDefaults<AllowlistConfig, 'domains' | 'cidrs' | 'rules' | 'default_ports' | 'warn'>;

/** Reject reason written to the audit record for a destination that is not allowed. */
export const NOT_ALLOWLISTED = 'not_allowlisted';

/** The ports of entries that name none, as squid's Safe_ports/SSL_ports: HTTP and HTTPS. */
export const DEFAULT_PORTS: readonly PortSpec[] = Object.freeze([80, 443]);

const allowlistSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    domains: { type: 'array', items: { type: 'string', minLength: 1, format: 'host-port-glob' }, default: [] },
    cidrs: { type: 'array', items: { type: 'string', format: 'cidr' }, default: [] },
    rules: { ...rulesSchema, default: [] },
    default_ports: { ...portsSchema, default: [...DEFAULT_PORTS] },
    warn: { type: 'boolean', default: false },
  },
};

/** The `allowlist` transform definition. */
export const allowlistTransform: TransformDefinition<AllowlistConfig, AllowlistInput> = defineTransform<AllowlistConfig, AllowlistInput>({
  name: 'allowlist',
  schema: allowlistSchema,
  decidesDestinations: true,
  create(config, env) {
    // Flat entries are rules without method or path restrictions: one rule set covers all three.
    const options = { defaultPorts: config.default_ports };
    const allowed = compileRules(
      [...config.domains.map((host) => ({ host })), ...config.cidrs.map((cidr) => ({ cidr })), ...config.rules],
      options,
    );
    // A tunnel opens on its host and port alone, and every request inside it is checked against
    // the full rules: any rule naming the destination lets the tunnel open, whatever methods and
    // paths it limits.
    const tunnelTargets = compileRules(
      [...config.domains.map((host) => ({ host })), ...config.cidrs.map((cidr) => ({ cidr })), ...config.rules.map(destinationOf)],
      options,
    );
    const decide = (rules: RuleSet, request: ProxyRequest, trace: Trace): Decision => {
      if (rules.matches(request)) return CONTINUE;
      trace.annotate('host', request.host);
      trace.annotate('port', request.port);
      if (config.warn) {
        trace.annotate('action', 'warn');
        trace.annotate('would_reject', NOT_ALLOWLISTED);
        env.logger.warn(
          { host: request.host, port: request.port, method: request.method, path: request.path, reason: NOT_ALLOWLISTED },
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

/** The destination of a rule (host or CIDR, and ports), without its method and path restrictions. */
function destinationOf(rule: RuleConfig): RuleConfig {
  const ports = rule.ports === undefined ? {} : { ports: rule.ports };
  return rule.cidr === undefined ? { host: rule.host ?? '', ...ports } : { cidr: rule.cidr, ...ports };
}

export default allowlistTransform;
