import { CidrSet, isIpLiteral, parseIp } from './cidr.js';
import { ErrorCodes, ProxyError } from './errors.js';
import type { RequestMode } from './request.js';
import type { JsonSchema } from './schema.js';

/** The highest TCP port. */
const MAX_PORT = 65535;
/** The port that means TLS in a rule. */
const TLS_PORT = 443;

/**
 * One entry of a port list: a port (`443`), an inclusive range (`"8000-8999"`) or `"*"` (any
 * port, whatever the scheme).
 */
export type PortSpec = number | string;

/**
 * One destination rule, shared by every transform's `rules` (and the allowlist itself):
 * a host glob or a CIDR, with optional ports, methods and path globs.
 */
export interface RuleConfig {
  /**
   * Host glob: `*` (any host), `*.example.com` (subdomains and the apex), `api.example.com`,
   * optionally with a port: `api.example.com:443`, `[2001:db8::1]:8080`, `*.example.com:*`.
   */
  readonly host?: string;
  /** CIDR range, matched against IP-literal destinations. Mutually exclusive with `host`. */
  readonly cidr?: string;
  /**
   * Destination ports; absent means the default set of the rule list (see
   * {@link CompileRulesOptions.defaultPorts}). Not allowed when `host` carries a port.
   */
  readonly ports?: readonly PortSpec[];
  /** Methods to match (case-insensitive); absent or `["*"]` means all. */
  readonly methods?: readonly string[];
  /** Path globs; `/v1/*` matches `/v1` and everything below it. Absent means all paths. */
  readonly paths?: readonly string[];
}

/** JSON Schema of a port list: ports 1-65535, `"lo-hi"` ranges or `"*"`; at least one entry. */
export const portsSchema: JsonSchema = Object.freeze({
  type: 'array',
  minItems: 1,
  items: { anyOf: [{ type: 'integer', minimum: 1, maximum: MAX_PORT }, { type: 'string', format: 'port-range' }] },
});

/** JSON Schema of one rule. */
export const ruleSchema: JsonSchema = Object.freeze({
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, format: 'host-port-glob' },
    cidr: { type: 'string', format: 'cidr' },
    ports: { ...portsSchema, proxyHostWithoutPort: true },
    methods: { type: 'array', items: { type: 'string', minLength: 1 } },
    paths: { type: 'array', items: { type: 'string', format: 'path-glob' } },
  },
  oneOf: [{ required: ['host'] }, { required: ['cidr'] }],
});

/** JSON Schema of a `rules` list. */
export const rulesSchema: JsonSchema = Object.freeze({ type: 'array', items: ruleSchema });

/**
 * The parts of a request rules look at; a `ProxyRequest` is one. A host-only request (sni-only,
 * a tunnel opening) has empty method and path. `scheme` and `mode` tell whether the request is
 * TLS, which port 443 in a rule requires.
 */
export interface RuleTarget {
  readonly host: string;
  /** The destination port that will be dialled. */
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly mode: RequestMode;
  readonly method: string;
  readonly path: string;
}

/** Options of {@link compileRules}. */
export interface CompileRulesOptions {
  /**
   * The ports of a rule that names none (no `ports`, no port in `host`). Default `["*"]`:
   * any port, as iron-proxy matches. The allowlist narrows it to `[80, 443]`.
   */
  readonly defaultPorts?: readonly PortSpec[];
}

/** A list of rules compiled once at config load; matching does no parsing or allocation. */
export interface RuleSet {
  /** Number of rules. */
  readonly size: number;
  /** True when any rule matches. An empty set matches nothing. */
  matches(target: RuleTarget): boolean;
}

/**
 * Compiled ports: inclusive `[lo, hi]` pairs, flattened. `undefined` stands for `*` (any port,
 * any scheme).
 */
type PortRanges = Int32Array | undefined;

/** One compiled rule: precompiled predicates, evaluated without allocating. */
interface CompiledRule {
  /** Matches a normalized host name (host-glob rules). */
  readonly host: ((host: string) => boolean) | undefined;
  /** Matches an IP-literal destination (CIDR rules and IP-literal `host` rules). */
  readonly cidrs: CidrSet | undefined;
  /** The ports the rule allows; undefined means every port. */
  readonly ports: PortRanges;
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
 *
 * Ports: a rule matches the ports it names (`ports`, or a port written in `host`), else
 * `options.defaultPorts` (any port by default). Port 443 in a port list, written or covered by
 * a range, matches only a TLS request: scheme `https`, mode `sni-only`, or a tunnel opening
 * (mode `tunnel`, whose inner requests are matched again). A cleartext request to port 443
 * never matches it, so a rule scoped to `host:443` never applies to cleartext. `*` matches any
 * port and scheme.
 */
export function compileRules(rules: readonly RuleConfig[], options: CompileRulesOptions = {}): RuleSet {
  let defaultPorts: PortRanges;
  try {
    defaultPorts = options.defaultPorts === undefined ? undefined : compilePorts(options.defaultPorts);
  } catch (err) {
    throw configError(`default ports: ${err instanceof Error ? err.message : String(err)}`);
  }
  const compiled = rules.map((rule, index) => compileRule(rule, index, defaultPorts));
  const needsIp = compiled.some((r) => r.cidrs !== undefined);
  return {
    size: compiled.length,
    matches(target: RuleTarget): boolean {
      const host = isNormalized(target.host) ? target.host : normalizeHost(target.host);
      const ip = needsIp && mayBeIp(host) ? parseIp(host) : undefined;
      for (const rule of compiled) {
        if (rule.ports !== undefined && !portMatches(rule.ports, target)) continue;
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

function compileRule(rule: RuleConfig, index: number, defaultPorts: PortRanges): CompiledRule {
  const bad = (why: string): ProxyError => configError(`rules[${index}]: ${why}`);
  if ((rule.host === undefined) === (rule.cidr === undefined)) throw bad('exactly one of host or cidr is required');
  let host: ((host: string) => boolean) | undefined;
  let cidrs: CidrSet | undefined;
  let ports: PortRanges = defaultPorts;
  try {
    if (rule.cidr !== undefined) {
      cidrs = CidrSet.parse([rule.cidr]);
    } else if (rule.host !== undefined) {
      const pattern = splitHostPattern(rule.host);
      if (pattern.port !== undefined && rule.ports !== undefined) throw new Error(hostPortConflict(rule.host));
      if (isIpLiteral(pattern.host)) cidrs = CidrSet.parse([hostCidr(pattern.host)]);
      else host = compileHostGlob(pattern.host);
      if (pattern.port !== undefined) ports = compilePorts([pattern.port]);
    }
    if (rule.ports !== undefined) ports = compilePorts(rule.ports);
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
  return { host, cidrs, ports, methods, paths };
}

function configError(message: string): ProxyError {
  return new ProxyError(ErrorCodes.CONFIG_INVALID, message, { reason: 'config_invalid' });
}

/** The message for a rule that writes its port both in `host` and in `ports`. */
export function hostPortConflict(host: string): string {
  return `host "${host}" names a port and ports is set too: write the port in one place`;
}

/** A `host` pattern split into its host glob and the port written after it, if any. */
export interface HostPattern {
  /** The host glob or IP literal, without brackets. */
  readonly host: string;
  /** The port written after the host (`443`, or `'*'` for any), when one was written. */
  readonly port: number | '*' | undefined;
}

/**
 * Splits a rule's `host` into host and port: `api.example.com:443`, `*.example.com:*`,
 * `[2001:db8::1]:8080`, `10.0.0.1:5432`. A bare IPv6 literal (`2001:db8::1`) has no port; an
 * IPv6 literal with a port needs brackets. Checks the port (1-65535 or `*`) and the host glob;
 * throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) when either is malformed.
 */
export function splitHostPattern(pattern: string): HostPattern {
  const text = pattern.trim();
  const invalid = (why: string): ProxyError => configError(`invalid host "${pattern}": ${why}`);
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) throw invalid('unbalanced brackets');
    host = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw invalid('expected ":port" after the brackets');
    if (rest !== '') portText = rest.slice(1);
    if (!host.includes(':') || !isIpLiteral(host)) throw invalid('only an IPv6 address goes in brackets');
  } else {
    const colon = text.indexOf(':');
    if (colon < 0 || text.indexOf(':', colon + 1) >= 0) {
      host = text;
    } else {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  const port = portText === undefined || portText === '*' ? portText : parsePort(portText);
  if (port === undefined && portText !== undefined) throw invalid(`port "${portText}" is not 1-65535 or *`);
  if (!isIpLiteral(host)) compileHostGlob(host);
  return { host, port };
}

/**
 * Compiles a port list; `*` anywhere in it means any port. Throws an `Error` naming a bad
 * entry (not a port 1-65535, a `"lo-hi"` range with lo <= hi, or `"*"`) or an empty list.
 */
function compilePorts(specs: readonly PortSpec[]): PortRanges {
  if (specs.length === 0) throw new Error('ports must not be empty');
  const ranges = new Int32Array(specs.length * 2);
  for (let i = 0; i < specs.length; i++) {
    const range = parsePortSpec(specs[i]!);
    if (range === '*') return undefined;
    if (range === undefined) throw new Error(`invalid port ${JSON.stringify(specs[i])} (use 1-65535, "lo-hi" or "*")`);
    ranges[2 * i] = range[0];
    ranges[2 * i + 1] = range[1];
  }
  return ranges;
}

/** One port list entry as an inclusive range, `'*'`, or undefined when malformed. */
function parsePortSpec(spec: PortSpec): readonly [number, number] | '*' | undefined {
  if (typeof spec === 'number') return Number.isInteger(spec) && spec >= 1 && spec <= MAX_PORT ? [spec, spec] : undefined;
  if (spec === '*') return '*';
  const dash = spec.indexOf('-');
  if (dash < 0) return undefined;
  const lo = parsePort(spec.slice(0, dash));
  const hi = parsePort(spec.slice(dash + 1));
  return lo === undefined || hi === undefined || lo > hi ? undefined : [lo, hi];
}

/** A decimal port 1-65535, or undefined. */
function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= MAX_PORT ? port : undefined;
}

/**
 * True when a `port-range` entry is valid: `"*"` or `"lo-hi"` (1 <= lo <= hi <= 65535). The
 * check behind the `port-range` schema format.
 */
export function isPortRange(text: string): boolean {
  return parsePortSpec(text) !== undefined;
}

/** Whether `target.port` is in `ranges`; port 443 also needs a TLS request. Integer compares only. */
function portMatches(ranges: Int32Array, target: RuleTarget): boolean {
  const port = target.port;
  if (port === TLS_PORT && !isTls(target)) return false;
  for (let i = 0; i < ranges.length; i += 2) {
    if (port >= ranges[i]! && port <= ranges[i + 1]!) return true;
  }
  return false;
}

/** TLS, or a tunnel opening whose bytes are not known yet (its requests are matched on their own). */
function isTls(target: RuleTarget): boolean {
  return target.scheme === 'https' || target.mode === 'sni-only' || target.mode === 'tunnel';
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
