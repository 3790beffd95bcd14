import { isIPv4, isIPv6 } from 'node:net';
import { parseDuration } from '@proxy/core';
import type { Ajv } from 'ajv';

/**
 * The string formats the config schema adds to core's validator. Each explains what is wrong
 * with a value in a sentence an operator can act on; `undefined` means the value is fine.
 */
const problems: Readonly<Record<string, (value: string) => string | undefined>> = {
  'listen-address': listenAddressProblem,
  'host-port': hostPortProblem,
  'resolver-address': resolverAddressProblem,
  'positive-duration': positiveDurationProblem,
  'header-name': (v) => (HEADER_NAME.test(v) ? undefined : `"${v}" is not an HTTP header name`),
  'url-path': (v) => (/^\/\S*$/.test(v) ? undefined : `"${v}" is not a URL path (must start with "/")`),
};

/** Messages for the formats core's validator defines (its own and ajv-formats'). */
const coreFormatMessages: Readonly<Record<string, (value: string) => string>> = {
  duration: durationMessage,
  cidr: (v) => `"${v}" is not a CIDR`,
  'host-glob': (v) => `"${v}" is not a host pattern (use e.g. api.example.com, *.example.com, *)`,
  'host-port-glob': (v) =>
    `"${v}" is not a host pattern with an optional port (use e.g. api.example.com, *.example.com:8443, [2001:db8::1]:8080, api.example.com:*)`,
  'port-range': (v) => `"${v}" is not a port or port range (use e.g. 443, "8000-8999" or "*")`,
  'path-glob': (v) => `"${v}" is not a path pattern (must start with "/")`,
  'header-pattern': (v) => `"${v}" is not a header name or a /regex/ that compiles`,
  ipv4: (v) => `"${v}" is not an IPv4 address`,
  ipv6: (v) => `"${v}" is not an IPv6 address`,
  hostname: (v) => `"${v}" is not a host name`,
  regex: (v) => `"${v}" is not a valid regular expression`,
  uri: (v) => `"${v}" is not an absolute URI`,
};

/** Registers the config formats on an ajv instance (before any schema using them is compiled). */
export function addConfigFormats(ajv: Ajv): void {
  for (const [name, problem] of Object.entries(problems)) {
    ajv.addFormat(name, { type: 'string', validate: (value: string) => problem(value) === undefined });
  }
}

/** Explains why `value` does not match the named format, in the operator's terms. */
export function describeFormatProblem(format: string, value: unknown): string {
  if (typeof value !== 'string') return `must be a ${format}`;
  return problems[format]?.(value) ?? coreFormatMessages[format]?.(value) ?? `"${value}" is not a valid ${format}`;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DNS_LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;
const IPV6_BRACKETS = 'an IPv6 host must be written in brackets, e.g. "[::1]:8080"';
const LISTEN_EXAMPLES = 'expected [host]:port, e.g. ":8080", "127.0.0.1:8080", "[::1]:8080"';

function isDnsName(value: string): boolean {
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => DNS_LABEL.test(label));
}

/** A `host:port` split: the host without brackets, the port text when one was written. */
interface HostPort {
  readonly host: string;
  readonly port?: string;
  readonly bracketed: boolean;
}

/** Splits `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address is all host. */
function splitHostPort(text: string): HostPort | undefined {
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return undefined;
    const rest = text.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return undefined;
    return rest === '' ? { host: text.slice(1, end), bracketed: true } : { host: text.slice(1, end), port: rest.slice(1), bracketed: true };
  }
  const colon = text.indexOf(':');
  if (colon < 0 || text.indexOf(':', colon + 1) >= 0) return { host: text, bracketed: false };
  return { host: text.slice(0, colon), port: text.slice(colon + 1), bracketed: false };
}

function portProblem(port: string, min: number): string | undefined {
  if (!/^\d{1,5}$/.test(port)) return `port "${port}" is not a number`;
  const n = Number(port);
  return n < min || n > 65535 ? `port ${n} is out of range (${min}-65535)` : undefined;
}

function hostProblem(hp: HostPort): string | undefined {
  if (hp.bracketed) return isIPv6(hp.host) ? undefined : `"${hp.host}" in brackets is not an IPv6 address`;
  if (isIPv6(hp.host)) return IPV6_BRACKETS;
  return isIPv4(hp.host) || isDnsName(hp.host) ? undefined : `"${hp.host}" is not an IP address or host name`;
}

/** `:8080`, `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`, `0.0.0.0:0` (port 0: any free port). */
function listenAddressProblem(value: string): string | undefined {
  const hp = splitHostPort(value);
  const reason =
    hp === undefined
      ? 'unbalanced brackets'
      : hp.port === undefined
        ? hp.host.includes(':')
          ? IPV6_BRACKETS
          : 'no port'
        : (portProblem(hp.port, 0) ?? (hp.host === '' ? undefined : hostProblem(hp)));
  return reason === undefined ? undefined : `"${value}" is not a listen address: ${reason} (${LISTEN_EXAMPLES})`;
}

/** `api.example.com`, `api.example.com:8443`, `10.0.0.5:80`, `[fd00::1]:443`: no scheme, no path. */
function hostPortProblem(value: string): string | undefined {
  const hint = '(expected host[:port], e.g. "api.internal:8443")';
  if (value.includes('://')) return `"${value}" must not include a scheme ${hint}; use upstream_scheme for http/https`;
  if (value.includes('/')) return `"${value}" must not include a path ${hint}`;
  const hp = splitHostPort(value);
  if (hp === undefined || hp.host === '') return `"${value}" has no host ${hint}`;
  const reason = (hp.port === undefined ? undefined : portProblem(hp.port, 1)) ?? hostProblem(hp);
  return reason === undefined ? undefined : `"${value}" is not a host[:port]: ${reason}`;
}

/** `8.8.8.8`, `8.8.8.8:53`, `2001:4860:4860::8888`, `[2001:4860:4860::8888]:53`. */
function resolverAddressProblem(value: string): string | undefined {
  const hp = splitHostPort(value);
  const hint = '(expected ip or ip:port, e.g. "8.8.8.8:53")';
  if (hp === undefined || !(isIPv4(hp.host) || isIPv6(hp.host))) return `"${value}" is not a resolver address ${hint}`;
  const reason = hp.port === undefined ? undefined : portProblem(hp.port, 1);
  return reason === undefined ? undefined : `"${value}" is not a resolver address: ${reason}`;
}

function durationMessage(value: string): string {
  return `"${value}" is not a duration (use e.g. 30s, 5m, 1h)`;
}

function positiveDurationProblem(value: string): string | undefined {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    return durationMessage(value);
  }
  return ms > 0 ? undefined : `"${value}" must be a positive duration (e.g. 30s)`;
}
