/**
 * Upstream proxy chaining (`proxy.upstream_proxy`): which destinations go through which
 * forward proxy (`http_proxy` for plain HTTP, `https_proxy` for TLS, `no_proxy` exceptions, as
 * Go's `httpproxy` reads them for iron-proxy), opening a tunnel through one (HTTP CONNECT
 * for `http://` and `https://` proxies (undici), SOCKS5 for `socks5://` and `socks5h://`
 * (the `socks` package)), and, for plain-HTTP requests through an `http://` or `https://`
 * proxy, the connection to the proxy itself and the absolute-form request sent over it (as
 * Go's `http.Transport` does: most proxies allow CONNECT to port 443 only).
 */
import { isIP, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { CidrSet, ErrorCodes, ProxyError } from '@proxy/core';
import { SocksClient } from 'socks';
import { buildConnector, Client, type Dispatcher } from 'undici';

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

/** How to reach the proxy itself. */
export interface ProxyDialOptions {
  readonly timeoutMs: number;
  /** TLS settings for an `https://` proxy (default roots plus the upstream CA bundle). */
  readonly secureContext: SecureContext;
}

/**
 * Opens a tunnel to `host:port` through `proxy`: an HTTP CONNECT (with Basic
 * `Proxy-Authorization` when the URL has credentials) or a SOCKS5 CONNECT (with
 * username/password authentication when it has them). Failures are `upstream_unreachable`
 * (502) naming the proxy without its credentials.
 */
export async function openThroughProxy(proxy: UpstreamProxy, host: string, port: number, options: ProxyDialOptions): Promise<Socket> {
  try {
    return proxy.protocol === 'http' || proxy.protocol === 'https' ? await httpConnect(proxy, host, port, options) : await socksConnect(proxy, host, port, options);
  } catch (err) {
    if (err instanceof ProxyError) throw err;
    throw unreachable(proxy, host, port, describe(err), err);
  }
}

/**
 * Opens a connection to an `http://` or `https://` proxy itself (TLS verified for its name
 * with the upstream trust for `https://`), to send it absolute-form requests for `host:port`
 * (see {@link absoluteFormRequest}). Failures are `upstream_unreachable` (502) naming the
 * proxy without its credentials, as for a tunnel.
 */
export async function connectToProxy(proxy: UpstreamProxy, host: string, port: number, options: ProxyDialOptions): Promise<Socket> {
  const connector = buildConnector({ timeout: options.timeoutMs, secureContext: options.secureContext, keepAlive: true, keepAliveInitialDelay: 60_000 });
  try {
    return await new Promise<Socket>((resolve, reject) => {
      connector(
        { hostname: proxy.host, protocol: `${proxy.protocol}:`, port: String(proxy.port), ...(isIP(proxy.host) === 0 ? { servername: proxy.host } : {}) },
        (err, socket) => (err === null ? resolve(socket) : reject(err)),
      );
    });
  } catch (err) {
    throw unreachable(proxy, host, port, describe(err), err);
  }
}

/**
 * The dispatch options of a plain-HTTP request to `origin` sent to an `http(s)://` proxy:
 * the request target in absolute-form (`GET http://host:port/path`), the `Host` field left to
 * name the destination, and Basic `Proxy-Authorization` when the proxy URL has credentials
 * (any other `Proxy-Authorization` removed: it is this hop's, never the client's).
 */
export function absoluteFormRequest(proxy: UpstreamProxy, origin: URL, options: Dispatcher.DispatchOptions): Dispatcher.DispatchOptions {
  const headers: string[] = [];
  for (const [name, value] of headerPairs(options.headers)) {
    if (name.toLowerCase() !== 'proxy-authorization') headers.push(name, value);
  }
  const authorization = proxyAuthorization(proxy);
  if (authorization !== undefined) headers.push('proxy-authorization', authorization);
  return { ...options, path: `${origin.origin}${options.path}`, headers };
}

/** The `Proxy-Authorization` value (Basic) for a proxy URL with credentials; undefined without. */
function proxyAuthorization(proxy: UpstreamProxy): string | undefined {
  return proxy.username === undefined ? undefined : `Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}`;
}

/** Every header of a dispatch's `headers`, in any form undici accepts, as name/value pairs. */
function* headerPairs(headers: Dispatcher.DispatchOptions['headers']): Generator<[string, string]> {
  if (headers === null || headers === undefined) return;
  if (Array.isArray(headers) && (headers.length === 0 || !Array.isArray(headers[0]))) {
    const flat = headers as unknown as string[];
    for (let i = 0; i + 1 < flat.length; i += 2) yield [String(flat[i]), String(flat[i + 1])];
    return;
  }
  const entries: Iterable<[string, unknown]> =
    Symbol.iterator in headers ? (headers as Iterable<[string, unknown]>) : Object.entries(headers as Record<string, unknown>);
  for (const [name, value] of entries) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) yield [name, String(v)];
    else yield [name, String(value)];
  }
}

async function httpConnect(proxy: UpstreamProxy, host: string, port: number, options: ProxyDialOptions): Promise<Socket> {
  const authority = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const origin = `${proxy.protocol}://${isIP(proxy.host) === 6 ? `[${proxy.host}]` : proxy.host}:${proxy.port}`;
  const client = new Client(origin, {
    connectTimeout: options.timeoutMs,
    headersTimeout: options.timeoutMs,
    connect: { secureContext: options.secureContext },
  });
  try {
    const authorization = proxyAuthorization(proxy);
    const { statusCode, socket } = await client.connect({
      path: authority,
      headers: { host: authority, ...(authorization === undefined ? {} : { 'proxy-authorization': authorization }) },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (statusCode !== 200) {
      socket.destroy();
      throw unreachable(proxy, host, port, `the proxy answered CONNECT with ${statusCode}`);
    }
    return socket as Socket;
  } finally {
    // The tunnel's socket is detached from the client; closing the client leaves it open.
    void client.close().catch(() => undefined);
  }
}

async function socksConnect(proxy: UpstreamProxy, host: string, port: number, options: ProxyDialOptions): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: {
      host: proxy.host,
      port: proxy.port,
      type: 5,
      ...(proxy.username === undefined ? {} : { userId: proxy.username, password: proxy.password ?? '' }),
    },
    command: 'connect',
    destination: { host, port },
    timeout: options.timeoutMs,
  });
  return socket;
}

function unreachable(proxy: UpstreamProxy, host: string, port: number, detail: string, cause?: unknown): ProxyError {
  return new ProxyError(ErrorCodes.UPSTREAM_UNREACHABLE, `cannot reach upstream ${host}:${port} through proxy ${proxy.display}: ${detail}`, {
    status: 502,
    reason: 'upstream_unreachable',
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A short, secret-free description of a failure: its code, else its message. */
function describe(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : 'unknown error';
}
