import type { JsonSchema } from './schema.js';

/**
 * One destination rule, shared by every transform's `rules` (and the allowlist itself):
 * a host glob or a CIDR, with optional methods and path globs.
 */
export interface RuleConfig {
  /** Host glob: `*` (any host), `*.example.com` (subdomains and the apex), `api.example.com`. */
  readonly host?: string;
  /** CIDR range, matched against IP-literal destinations. Mutually exclusive with `host`. */
  readonly cidr?: string;
  /** Methods to match (case-insensitive); absent or `["*"]` means all. */
  readonly methods?: readonly string[];
  /** Path globs; `/v1/*` matches `/v1` and everything below it. Absent means all paths. */
  readonly paths?: readonly string[];
}

/** JSON Schema of one rule. */
export const ruleSchema: JsonSchema = Object.freeze({
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, format: 'host-glob' },
    cidr: { type: 'string', format: 'cidr' },
    methods: { type: 'array', items: { type: 'string', minLength: 1 } },
    paths: { type: 'array', items: { type: 'string', format: 'path-glob' } },
  },
  oneOf: [{ required: ['host'] }, { required: ['cidr'] }],
});

/** JSON Schema of a `rules` list. */
export const rulesSchema: JsonSchema = Object.freeze({ type: 'array', items: ruleSchema });

/** The parts of a request rules look at. A host-only request (sni-only) has empty method and path. */
export interface RuleTarget {
  readonly host: string;
  readonly method: string;
  readonly path: string;
}

/** A list of rules compiled once at config load; matching does no parsing or allocation. */
export interface RuleSet {
  /** Number of rules. */
  readonly size: number;
  /** True when any rule matches. An empty set matches nothing. */
  matches(target: RuleTarget): boolean;
}

/** Compiles rules. Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) for a malformed rule. */
export function compileRules(rules: readonly RuleConfig[]): RuleSet {
  void rules;
  throw new Error('TODO(core): compileRules');
}

/**
 * Compiles a host glob into a predicate over normalized hosts. `*` matches any host;
 * `*.example.com` matches `example.com` and any name below it; a `*` elsewhere matches
 * within one label. Matching is case-insensitive and ignores a trailing dot.
 */
export function compileHostGlob(glob: string): (host: string) => boolean {
  void glob;
  throw new Error('TODO(core): compileHostGlob');
}

/** Compiles a path glob. `/v1/*` matches `/v1` and below; other `*` match within a segment. */
export function compilePathGlob(glob: string): (path: string) => boolean {
  void glob;
  throw new Error('TODO(core): compilePathGlob');
}

/** Lowercases a host, strips one trailing dot and IPv6 brackets. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}
