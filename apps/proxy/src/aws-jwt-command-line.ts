import { parseDuration } from '@proxy/core';
import type { LogLevel } from './logger.js';
import type { LogFormat } from './text-log.js';

/** The settings of an aws-outbound-jwt-proxy command line, validated, defaults applied. */
export interface AwsJwtSettings {
  readonly listenAddr: string;
  /** Pinned upstream (`host[:port]`); absent = the host header chooses the upstream. */
  readonly upstreamHost?: string;
  readonly upstreamScheme: 'http' | 'https';
  readonly hostHeader: string;
  readonly upstreamTimeout: string;
  /** Static audience; empty = derived per request from the upstream host. */
  readonly tokenAudience: readonly string[];
  readonly tokenSigningAlgorithm: 'RS256' | 'ES384';
  readonly tokenDuration: string;
  readonly tokenRefreshSkew: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly metricsEnabled: boolean;
  readonly metricsListenAddr: string;
  readonly metricsPath: string;
}

/** What an aws-outbound-jwt-proxy command line asked for. */
export type AwsJwtCommand =
  | { readonly kind: 'run'; readonly settings: AwsJwtSettings; readonly printConfig: boolean }
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'error'; readonly message: string };

/** Every flag taking a value, with its default (`undefined` = empty) and its help line. */
const VALUE_FLAGS = {
  'listen-addr': [':8080', 'host:port the server listens on'],
  'upstream-host': [undefined, 'pinned upstream host[:port]; when set, the host header is ignored'],
  'upstream-scheme': ['https', 'scheme used when forwarding (http or https)'],
  'host-header': ['X-Upstream-Host', 'request header naming the upstream host when unpinned ("Host" reads the Host line)'],
  'upstream-timeout': ['30s', 'max time to wait for the upstream to send response headers'],
  'token-audience': [undefined, 'JWT audience; repeat for several (env: comma-separated); empty = derived from the upstream host'],
  'token-signing-algorithm': ['RS256', 'RS256 or ES384'],
  'token-duration': ['1h', 'requested JWT lifetime, 60s to 1h'],
  'token-refresh-skew': ['5m', 'refresh cached tokens this long before expiry (> 0 and < --token-duration)'],
  'log-level': ['info', 'debug, info, warn or error'],
  'log-format': ['json', 'json or text'],
  'tls-cert': [undefined, 'PEM certificate file; HTTPS on the listener together with --tls-key'],
  'tls-key': [undefined, 'PEM key file; HTTPS on the listener together with --tls-cert'],
  'metrics-enabled': ['true', 'serve Prometheus metrics on a separate listener (true or false)'],
  'metrics-listen-addr': [':9090', 'host:port of the metrics listener (must differ from --listen-addr)'],
  'metrics-path': ['/metrics', 'URL path of the Prometheus metrics'],
} as const satisfies Record<string, readonly [string | undefined, string]>;

type ValueFlag = keyof typeof VALUE_FLAGS;

/** The environment variable of a flag: uppercased, dashes to underscores. */
export function envVarOf(flag: string): string {
  return flag.toUpperCase().replaceAll('-', '_');
}

/** The help text of a command run as `command`. */
export function awsJwtUsage(command: string): string {
  const rows = (Object.entries(VALUE_FLAGS) as [ValueFlag, readonly [string | undefined, string]][]).map(
    ([flag, [fallback, help]]) =>
      `  --${flag.padEnd(24)} ${help}\n  ${''.padEnd(26)} env ${envVarOf(flag)}${fallback === undefined ? '' : `, default ${fallback}`}\n`,
  );
  return `Usage: ${command} [flags]
       ${command} version
       ${command} help

Forwards every request to an upstream with an AWS STS web-identity JWT as
"Authorization: Bearer". Each flag can also be set by its environment variable; a flag wins.

${rows.join('')}  --${'print-config'.padEnd(24)} print the equivalent "proxy --config" YAML and exit
  --${'version'.padEnd(24)} print the version (also: ${command} version)
  --${'help'.padEnd(24)} print this help (also: ${command} help)
`;
}

const BOOLEAN_FLAGS = new Set(['metrics-enabled', 'print-config', 'version', 'help']);
const TRUE_WORDS = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LISTEN_ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]*):(\d{1,5})$/;
const UPSTREAM_HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/@?#]+)(?::(\d{1,5}))?$/;

class UsageError extends Error {}

/** The subcommands of the original, each alone on the command line. */
const SUBCOMMANDS = new Set(['version', 'help']);

/**
 * Parses an aws-outbound-jwt-proxy command line: `--flag=value` or `--flag value` (one dash
 * works too), each flag's environment variable when the flag is absent, then the defaults.
 * Every rule of the original is checked here, and each error names the flag it concerns.
 * `version` and `help` as the only argument are the original's subcommands.
 */
export function parseAwsJwtCommandLine(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): AwsJwtCommand {
  try {
    const subcommand = argv[0];
    if (subcommand !== undefined && SUBCOMMANDS.has(subcommand)) {
      if (argv.length > 1) throw new UsageError(`${subcommand}: takes no arguments (got "${argv[1]}")`);
      return { kind: subcommand === 'version' ? 'version' : 'help' };
    }
    const given = new Map<string, string[]>();
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      const m = /^--?([a-z][a-z-]*)(?:=([\s\S]*))?$/.exec(arg);
      if (m === null) throw new UsageError(`unexpected argument "${arg}" (flags are written --name=value)`);
      const name = m[1]!;
      let value = m[2];
      if (name === 'h') return { kind: 'help' };
      if (!(name in VALUE_FLAGS) && !BOOLEAN_FLAGS.has(name)) throw new UsageError(`unknown flag "--${name}"`);
      if (BOOLEAN_FLAGS.has(name)) {
        const next = argv[i + 1];
        if (value === undefined && next !== undefined && (TRUE_WORDS.has(next) || FALSE_WORDS.has(next))) value = argv[++i];
        value ??= 'true';
      } else if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`--${name}: needs a value`);
      }
      given.set(name, [...(given.get(name) ?? []), value]);
    }
    if (given.has('help')) return { kind: 'help' };
    if (given.has('version')) return { kind: 'version' };
    const settings = resolveSettings(given, env);
    return { kind: 'run', settings, printConfig: given.has('print-config') && parseBoolean('print-config', last(given.get('print-config'))!) };
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'error', message: err.message };
    throw err;
  }
}

function last(values: readonly string[] | undefined): string | undefined {
  return values?.[values.length - 1];
}

function resolveSettings(given: ReadonlyMap<string, string[]>, env: Readonly<Record<string, string | undefined>>): AwsJwtSettings {
  /** A flag's value: the last one given, else its env var when non-empty, else the default. */
  const value = (flag: ValueFlag): string | undefined => {
    const fromFlag = last(given.get(flag));
    if (fromFlag !== undefined) return fromFlag;
    const fromEnv = env[envVarOf(flag)];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    return VALUE_FLAGS[flag][0];
  };

  const listenAddr = listenAddress('listen-addr', value('listen-addr')!);
  const upstreamHost = optional(value('upstream-host'));
  if (upstreamHost !== undefined) checkUpstreamHost(upstreamHost);
  const upstreamScheme = oneOf('upstream-scheme', value('upstream-scheme')!.toLowerCase(), ['http', 'https'] as const);
  const hostHeader = value('host-header')!;
  if (!HEADER_NAME.test(hostHeader)) throw new UsageError(`--host-header: "${hostHeader}" is not a valid header name`);
  const upstreamTimeout = value('upstream-timeout')!;
  if (durationMs('upstream-timeout', upstreamTimeout) <= 0) throw new UsageError(`--upstream-timeout: must be greater than 0 (got ${upstreamTimeout})`);

  const tokenSigningAlgorithm = oneOf('token-signing-algorithm', value('token-signing-algorithm')!.toUpperCase(), ['RS256', 'ES384'] as const);
  const tokenDuration = value('token-duration')!;
  const durationValue = durationMs('token-duration', tokenDuration);
  if (durationValue < 60_000 || durationValue > 3_600_000) throw new UsageError(`--token-duration: must be between 60s and 1h (got ${tokenDuration})`);
  if (durationValue % 1000 !== 0) throw new UsageError(`--token-duration: must be a whole number of seconds (got ${tokenDuration})`);
  const tokenRefreshSkew = value('token-refresh-skew')!;
  const skew = durationMs('token-refresh-skew', tokenRefreshSkew);
  if (skew <= 0) throw new UsageError(`--token-refresh-skew: must be greater than 0 (got ${tokenRefreshSkew})`);
  if (skew >= durationValue) {
    throw new UsageError(`--token-refresh-skew: must be less than --token-duration (got ${tokenRefreshSkew}, --token-duration ${tokenDuration})`);
  }

  const logLevel = oneOf('log-level', value('log-level')!.toLowerCase(), ['debug', 'info', 'warn', 'error'] as const);
  const logFormat = oneOf('log-format', value('log-format')!.toLowerCase(), ['json', 'text'] as const);

  const tlsCert = optional(value('tls-cert'));
  const tlsKey = optional(value('tls-key'));
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new UsageError(tlsCert === undefined ? '--tls-key: needs --tls-cert as well (set both or neither)' : '--tls-cert: needs --tls-key as well (set both or neither)');
  }

  const metricsEnabled = parseBoolean('metrics-enabled', value('metrics-enabled')!);
  const metricsListenAddr = listenAddress('metrics-listen-addr', value('metrics-listen-addr')!);
  const metricsPath = value('metrics-path')!;
  if (metricsEnabled) {
    if (!metricsPath.startsWith('/')) throw new UsageError(`--metrics-path: must start with "/" (got "${metricsPath}")`);
    if (sameAddress(listenAddr, metricsListenAddr)) {
      throw new UsageError(`--metrics-listen-addr: must differ from --listen-addr (both are ${metricsListenAddr})`);
    }
  }

  return {
    listenAddr,
    ...(upstreamHost === undefined ? {} : { upstreamHost }),
    upstreamScheme,
    hostHeader,
    upstreamTimeout,
    tokenAudience: audiences(given, env),
    tokenSigningAlgorithm,
    tokenDuration,
    tokenRefreshSkew,
    logLevel,
    logFormat,
    ...(tlsCert === undefined || tlsKey === undefined ? {} : { tlsCert, tlsKey }),
    metricsEnabled,
    metricsListenAddr,
    metricsPath,
  };
}

/**
 * `--token-audience` values (each flag one audience), else `TOKEN_AUDIENCE` split on commas.
 * `TOKEN_AUDIENCE` set but empty is refused, as aws-outbound-jwt-proxy refuses it: unset it to
 * derive audiences from the destination host. An audience with whitespace anywhere in it
 * (`"https://a.test, https://b.test"` included: the separator is a comma alone) is refused
 * too, naming where it came from, rather than trimmed into a different audience.
 */
function audiences(given: ReadonlyMap<string, string[]>, env: Readonly<Record<string, string | undefined>>): string[] {
  const fromFlags = given.get('token-audience');
  const fromEnv = env.TOKEN_AUDIENCE;
  if (fromFlags === undefined && fromEnv === '') {
    throw new UsageError('--token-audience: TOKEN_AUDIENCE is set but empty (unset it to derive the audience from the upstream host)');
  }
  const source = fromFlags === undefined ? ` in TOKEN_AUDIENCE=${JSON.stringify(fromEnv)}` : '';
  const list = fromFlags ?? (fromEnv === undefined ? [] : fromEnv.split(','));
  for (const audience of list) {
    if (audience === '') throw new UsageError(`--token-audience: an audience must not be empty${source}`);
    if (/\s/.test(audience)) {
      throw new UsageError(`--token-audience: audience ${JSON.stringify(audience)}${source} contains whitespace (separate audiences with a comma only)`);
    }
  }
  return list;
}

function optional(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}

function oneOf<const T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${flag}: must be ${allowed.join(' or ')} (got "${text}")`);
  return text as T;
}

function parseBoolean(flag: string, text: string): boolean {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  throw new UsageError(`--${flag}: must be true or false (got "${text}")`);
}

function durationMs(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(`--${flag}: "${text}" is not a duration (write e.g. 90s, 5m, 1h)`);
  }
}

function listenAddress(flag: string, text: string): string {
  const port = LISTEN_ADDRESS.exec(text)?.[1];
  if (port === undefined || Number(port) > 65_535) throw new UsageError(`--${flag}: "${text}" is not a host:port listen address (e.g. :8080)`);
  return text;
}

function checkUpstreamHost(text: string): void {
  if (text.includes('://')) throw new UsageError(`--upstream-host: must be a host or host:port without a scheme (got "${text}"; use --upstream-scheme)`);
  const port = UPSTREAM_HOST.exec(text);
  if (port === null || (port[1] !== undefined && (Number(port[1]) < 1 || Number(port[1]) > 65_535))) {
    throw new UsageError(`--upstream-host: "${text}" is not a host or host:port`);
  }
}

/** Whether two listen addresses would collide: same port (not 0) on the same or a wildcard host. */
function sameAddress(a: string, b: string): boolean {
  const split = (address: string): [string, string] => {
    const at = address.lastIndexOf(':');
    return [address.slice(0, at).replace(/^\[|\]$/g, ''), address.slice(at + 1)];
  };
  const [hostA, portA] = split(a);
  const [hostB, portB] = split(b);
  if (Number(portA) === 0 || Number(portA) !== Number(portB)) return false;
  const wildcard = (host: string): boolean => host === '' || host === '0.0.0.0' || host === '::';
  return hostA === hostB || wildcard(hostA) || wildcard(hostB);
}
