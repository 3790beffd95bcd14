import { CidrSet, isIpLiteral, parseIp } from './cidr.js';
import { ErrorCodes, ProxyError } from './errors.js';
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

/** One compiled rule: precompiled predicates, evaluated without allocating. */
interface CompiledRule {
  /** Matches a normalized host name (host-glob rules). */
  readonly host: ((host: string) => boolean) | undefined;
  /** Matches an IP-literal destination (CIDR rules and IP-literal `host` rules). */
  readonly cidrs: CidrSet | undefined;
  /** Upper-cased methods; undefined means every method. */
  readonly methods: readonly string[] | undefined;
  /** Path predicates; undefined means every path. */
  readonly paths: readonly ((path: string) => boolean)[] | undefined;
}

/**
 * Compiles rules. Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) for a malformed rule.
 *
 * A `host` glob matches host names (and, when it is `*`, IP literals too); a `host` that is
 * an IP literal matches that address; a `cidr` matches IP-literal destinations only. IPv4 and
 * IPv4-mapped IPv6 spellings of one address are the same address. A host-only request
 * (method and path empty, from sni-only mode) never matches a rule that lists methods (other
 * than `*`) or paths, since neither is known.
 */
export function compileRules(rules: readonly RuleConfig[]): RuleSet {
  const compiled = rules.map((rule, index) => compileRule(rule, index));
  const needsIp = compiled.some((r) => r.cidrs !== undefined);
  return {
    size: compiled.length,
    matches(target: RuleTarget): boolean {
      const host = isNormalized(target.host) ? target.host : normalizeHost(target.host);
      const ip = needsIp && mayBeIp(host) ? parseIp(host) : undefined;
      for (const rule of compiled) {
        if (rule.cidrs !== undefined) {
          if (ip === undefined || rule.cidrs.matchParsed(ip) === undefined) continue;
        } else if (rule.host !== undefined && !rule.host(host)) {
          continue;
        }
        if (rule.methods !== undefined && !includesMethod(rule.methods, target.method)) continue;
        if (rule.paths !== undefined && !anyPath(rule.paths, target.path)) continue;
        return true;
      }
      return false;
    },
  };
}

function compileRule(rule: RuleConfig, index: number): CompiledRule {
  const bad = (why: string): ProxyError =>
    new ProxyError(ErrorCodes.CONFIG_INVALID, `rules[${index}]: ${why}`, { reason: 'config_invalid' });
  if ((rule.host === undefined) === (rule.cidr === undefined)) throw bad('exactly one of host or cidr is required');
  let host: ((host: string) => boolean) | undefined;
  let cidrs: CidrSet | undefined;
  try {
    if (rule.cidr !== undefined) cidrs = CidrSet.parse([rule.cidr]);
    else if (rule.host !== undefined && isIpLiteral(rule.host)) cidrs = CidrSet.parse([hostCidr(rule.host)]);
    else if (rule.host !== undefined) host = compileHostGlob(rule.host);
  } catch (err) {
    throw bad(err instanceof Error ? err.message : String(err));
  }
  const methods =
    rule.methods === undefined || rule.methods.includes('*') ? undefined : rule.methods.map((m) => m.trim().toUpperCase());
  if (methods?.some((m) => m.length === 0)) throw bad('a method must not be empty');
  let paths: ((path: string) => boolean)[] | undefined;
  try {
    paths = rule.paths?.map(compilePathGlob);
  } catch (err) {
    throw bad(err instanceof Error ? err.message : String(err));
  }
  return { host, cidrs, methods, paths };
}

/** The single-address CIDR of an IP literal, e.g. `10.0.0.1/32`. */
function hostCidr(literal: string): string {
  const address = normalizeHost(literal);
  return `${address}/${address.includes(':') ? 128 : 32}`;
}

/**
 * Compiles a host glob into a predicate over hosts. `*` matches any host;
 * `*.example.com` matches `example.com` and any name below it; a `*` elsewhere matches
 * within one label. Matching is case-insensitive and ignores a trailing dot.
 * Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) for an empty or malformed glob.
 */
export function compileHostGlob(glob: string): (host: string) => boolean {
  const g = normalizeHost(glob);
  if (g === '*') return () => true;
  if (isIpLiteral(g)) return (host) => normalizeHost(host) === g;
  if (!HOST_GLOB.test(g)) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `invalid host glob "${glob}"`, { reason: 'config_invalid' });
  }
  const apexGlob = g.startsWith('*.');
  const rest = apexGlob ? g.slice(2) : g;
  let test: (host: string) => boolean;
  if (!rest.includes('*')) {
    if (apexGlob) {
      const dotted = `.${rest}`;
      test = (h) => h === rest || (h.endsWith(dotted) && h.length > dotted.length);
    } else {
      test = (h) => h === rest;
    }
  } else {
    const body = rest.split('*').map(escapeRegExp).join('[^.]*');
    const re = new RegExp(`^${apexGlob ? '(?:[^.]+\\.)*' : ''}${body}$`);
    test = (h) => re.test(h);
  }
  return (host) => test(isNormalized(host) ? host : normalizeHost(host));
}

/**
 * Compiles a path glob. `/v1/*` matches `/v1`, `/v1/` and everything below (not `/v10`);
 * any other `*` matches within one segment (`/repos/*\/issues`); without `*` the match is
 * exact. A path holding a dot segment (`/v1/../admin`, also percent-encoded) never matches a
 * glob, since the upstream may resolve it outside the allowed prefix. The empty path of a
 * host-only request never matches. Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) when
 * the glob does not start with `/`.
 */
export function compilePathGlob(glob: string): (path: string) => boolean {
  if (!glob.startsWith('/')) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `invalid path glob "${glob}": must start with /`, { reason: 'config_invalid' });
  }
  const subtree = glob.endsWith('/*');
  const head = subtree ? glob.slice(0, -2) : glob;
  let test: (path: string) => boolean;
  if (!head.includes('*')) {
    test = subtree
      ? (p) => p.startsWith(head) && (p.length === head.length || p.charCodeAt(head.length) === SLASH)
      : (p) => p === glob;
  } else {
    const body = head.split('*').map(escapeRegExp).join('[^/]*');
    const re = new RegExp(`^${body}${subtree ? '(?:/.*)?' : ''}$`, 's');
    test = (p) => re.test(p);
  }
  return (path) => path.charCodeAt(0) === SLASH && test(path) && !DOT_SEGMENT.test(path);
}

const SLASH = 0x2f;
/** Labels of letters, digits, `-`, `_` and `*`, optionally led by `*.`. */
const HOST_GLOB = /^(?:\*\.)?[a-z0-9_*-]+(?:\.[a-z0-9_*-]+)*$/;
/** A `.` or `..` segment, literal or percent-encoded. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** True when `host` is already lowercase, unbracketed and without a trailing dot (no allocation). */
function isNormalized(host: string): boolean {
  const n = host.length;
  if (n === 0) return true;
  if (host.charCodeAt(n - 1) === 0x2e || host.charCodeAt(0) === 0x5b || host.charCodeAt(0) === 0x20 || host.charCodeAt(n - 1) === 0x20) {
    return false;
  }
  for (let i = 0; i < n; i++) {
    const c = host.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return false;
  }
  return true;
}

/** Cheap pre-check before parsing: only digits and dots, or a colon (IPv6). */
function mayBeIp(host: string): boolean {
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c === 0x3a) return true;
    if (c !== 0x2e && (c < 0x30 || c > 0x39)) return false;
  }
  return host.length > 0;
}

/** Case-insensitive membership of `method` in upper-cased `methods`, without allocating. */
function includesMethod(methods: readonly string[], method: string): boolean {
  for (const m of methods) {
    if (m.length !== method.length) continue;
    let same = true;
    for (let i = 0; i < m.length; i++) {
      let c = method.charCodeAt(i);
      if (c >= 0x61 && c <= 0x7a) c -= 0x20;
      if (c !== m.charCodeAt(i)) {
        same = false;
        break;
      }
    }
    if (same) return true;
  }
  return false;
}

function anyPath(paths: readonly ((path: string) => boolean)[], path: string): boolean {
  for (const p of paths) if (p(path)) return true;
  return false;
}

/** Lowercases a host, strips one trailing dot and IPv6 brackets. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}
