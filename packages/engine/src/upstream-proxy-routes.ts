/**
 * Which destinations go through which upstream proxy (`proxy.upstream_proxy`): the proxy URLs
 * parsed and checked, and `no_proxy` read as Go's `httpproxy` reads it for iron-proxy. Free of
 * any network code, so config checks can use it without loading undici (`upstream-proxy.ts`
 * dials through the proxy chosen here).
 */
import { isIP } from 'node:net';
import { CidrSet, ErrorCodes, ProxyError } from '@proxy/core';

/** The three settings, as written (empty or absent = none). */
export interface UpstreamProxySettings {
  readonly httpProxy?: string;
  readonly httpsProxy?: string;
  readonly noProxy?: string;
}

/** A parsed proxy URL. */
export interface UpstreamProxy {
  readonly protocol: 'http' | 'https' | 'socks5' | 'socks5h';
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  /** `scheme://host:port`, without credentials: what messages may show. */
  readonly display: string;
  /**
   * True for `socks5://`: the destination name is resolved here and the proxy is given the
   * checked address. Otherwise (`http`, `https`, `socks5h`) the proxy is given the name and
   * resolves it itself.
   */
  readonly resolvesLocally: boolean;
}

const DEFAULT_PORTS = { http: 80, https: 443, socks5: 1080, socks5h: 1080 } as const;

/**
 * Parses a proxy URL: `http://`, `https://`, `socks5://` or `socks5h://`, optional
 * `user:password@`, optional port (80, 443, 1080 by scheme); a value without a scheme is
 * `http://`, as Go reads `HTTP_PROXY=proxy:3128`. Throws `PROXY_ERR_CONFIG_INVALID` naming
 * `setting` (never the credentials).
 */
export function parseUpstreamProxy(value: string, setting: string): UpstreamProxy {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `${setting}: not a proxy URL (expected http://, https://, socks5:// or socks5h://host:port)`);
  }
  const protocol = url.protocol.slice(0, -1).toLowerCase();
  if (protocol !== 'http' && protocol !== 'https' && protocol !== 'socks5' && protocol !== 'socks5h') {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `${setting}: unsupported proxy scheme "${protocol}" (expected http, https, socks5 or socks5h)`);
  }
  if (url.hostname === '') throw new ProxyError(ErrorCodes.CONFIG_INVALID, `${setting}: the proxy URL has no host`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `${setting}: a proxy URL is scheme://host:port only (no path or query)`);
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? DEFAULT_PORTS[protocol] : Number(url.port);
  return {
    protocol,
    host,
    port,
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    display: `${protocol}://${url.host}`,
    resolvesLocally: protocol === 'socks5',
  };
}

/** One `no_proxy` entry. */
type NoProxyEntry =
  | { readonly kind: 'all' }
  | { readonly kind: 'cidr'; readonly cidrs: CidrSet; readonly port?: number }
  | { readonly kind: 'ip'; readonly ip: string; readonly port?: number }
  | { readonly kind: 'domain'; readonly name: string; readonly subdomainsOnly: boolean; readonly port?: number };

/**
 * Parses `no_proxy` as Go's `httpproxy` does: comma-separated; `*` alone exempts everything;
 * an IP or CIDR matches addresses; a name matches itself and its subdomains (`.name` only its
 * subdomains, `*.name` the same); an entry may name a port (`host:8080`, `[::1]:80`).
 */
export function parseNoProxy(value: string): NoProxyEntry[] {
  const entries: NoProxyEntry[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim().toLowerCase();
    if (item === '') continue;
    if (item === '*') return [{ kind: 'all' }];
    if (item.includes('/')) {
      try {
        entries.push({ kind: 'cidr', cidrs: CidrSet.parse([item]) });
      } catch {
        // Not a CIDR: no host can match it.
      }
      continue;
    }
    const [host, port] = splitPort(item);
    const withPort = port === undefined ? {} : { port };
    if (isIP(host) !== 0) {
      entries.push({ kind: 'ip', ip: host, ...withPort });
      continue;
    }
    const subdomainsOnly = host.startsWith('.') || host.startsWith('*.');
    const name = host.replace(/^\*?\./, '');
    if (name !== '') entries.push({ kind: 'domain', name, subdomainsOnly, ...withPort });
  }
  return entries;
}

/** `host[:port]`, `[v6]:port` or a bare IPv6 address, split. */
function splitPort(item: string): [string, number | undefined] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(item);
  if (bracketed !== null) return [bracketed[1]!, bracketed[2] === undefined ? undefined : Number(bracketed[2])];
  if (isIP(item) === 6) return [item, undefined];
  const m = /^(.*):(\d+)$/.exec(item);
  return m === null ? [item, undefined] : [m[1]!, Number(m[2])];
}

const LOOPBACK = CidrSet.parse(['127.0.0.0/8', '::1/128']);

/** Routes destinations to the configured upstream proxies. */
export class UpstreamProxyRoutes {
  readonly #http: UpstreamProxy | undefined;
  readonly #https: UpstreamProxy | undefined;
  readonly #noProxy: readonly NoProxyEntry[];

  /** Throws `PROXY_ERR_CONFIG_INVALID` for a bad proxy URL. */
  constructor(settings: UpstreamProxySettings) {
    this.#http = settings.httpProxy ? parseUpstreamProxy(settings.httpProxy, 'proxy.upstream_proxy.http_proxy') : undefined;
    this.#https = settings.httpsProxy ? parseUpstreamProxy(settings.httpsProxy, 'proxy.upstream_proxy.https_proxy') : undefined;
    this.#noProxy = parseNoProxy(settings.noProxy ?? '');
  }

  /** True when any proxy is configured. */
  get active(): boolean {
    return this.#http !== undefined || this.#https !== undefined;
  }

  /**
   * The proxy a connection to `host:port` goes through, or undefined to dial directly:
   * `https_proxy` for TLS, `http_proxy` for plain HTTP; never for `localhost`, loopback
   * addresses or a `no_proxy` match (as Go's `httpproxy` decides).
   */
  route(host: string, port: number, scheme: 'http' | 'https'): UpstreamProxy | undefined {
    const proxy = scheme === 'https' ? this.#https : this.#http;
    if (proxy === undefined) return undefined;
    const name = host.toLowerCase().replace(/\.$/, '');
    if (name === 'localhost' || (isIP(name) !== 0 && LOOPBACK.contains(name))) return undefined;
    return this.#noProxy.some((entry) => exempts(entry, name, port)) ? undefined : proxy;
  }
}

function exempts(entry: NoProxyEntry, host: string, port: number): boolean {
  if (entry.kind === 'all') return true;
  if ('port' in entry && entry.port !== undefined && entry.port !== port) return false;
  const ip = isIP(host) !== 0;
  switch (entry.kind) {
    case 'cidr':
      return ip && entry.cidrs.contains(host);
    case 'ip':
      return ip && entry.ip === host;
    case 'domain':
      return !ip && (host.endsWith(`.${entry.name}`) || (!entry.subdomainsOnly && host === entry.name));
  }
}
