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
import { ErrorCodes, ProxyError } from '@proxy/core';
import { SocksClient } from 'socks';
import { buildConnector, Client, type Dispatcher } from 'undici';
import { checkServerIdentity } from './server-identity.js';
import type { UpstreamProxy } from './upstream-proxy-routes.js';

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
  const connector = buildConnector({ timeout: options.timeoutMs, secureContext: options.secureContext, checkServerIdentity, keepAlive: true, keepAliveInitialDelay: 60_000 });
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
