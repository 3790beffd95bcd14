import { X509Certificate } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { connect as tlsConnect, createSecureContext, getCACertificates, type SecureContext, type TLSSocket } from 'node:tls';
import { CidrSet, ErrorCodes, ProxyError } from '@proxy/core';
import type { buildConnector, Dispatcher } from 'undici';
import { connectPooled } from './pooled-read-socket.js';
import { checkServerIdentity } from './server-identity.js';
import { absoluteFormRequest, connectToProxy, openThroughProxy } from './upstream-proxy.js';
import { UpstreamProxyRoutes, type UpstreamProxy, type UpstreamProxySettings } from './upstream-proxy-routes.js';

/** Options of {@link UpstreamGuard}. */
export interface UpstreamGuardOptions {
  /** CIDR ranges no upstream address may fall in (`proxy.upstream_deny_cidrs`). */
  readonly denyCidrs: readonly string[];
  /** `"ip:port"` or `"ip"` (port 53): resolve names with this DNS server instead of the OS resolver. */
  readonly resolver?: string;
  /** Extra PEM CA certificates trusted for upstream TLS, besides the default roots. */
  readonly ca?: string | Buffer;
  /** Time allowed for the TCP connect and the TLS handshake together (default 10 s). */
  readonly connectTimeoutMs?: number;
  /**
   * The proxy's own bound listeners, read at each dial: a destination that is one of them
   * would send the request back into the proxy, again and again (a forwarding loop).
   */
  readonly ownListeners?: () => readonly BoundAddress[];
  /** Forward proxies to reach upstreams through (`proxy.upstream_proxy`); see {@link UpstreamProxyRoutes}. */
  readonly upstreamProxy?: UpstreamProxySettings;
  /** How a denied address is answered: see {@link DeniedUpstreamForm}. Default `reject`. */
  readonly deniedAs?: DeniedUpstreamForm;
}

/**
 * How the engine answers a request whose upstream address is in the deny list: `reject` (403,
 * audit action `reject`, `rejected_by: upstream_guard`), or `error`, iron-proxy's answer
 * (502, audit action `error`, no `rejected_by`: there the refusal is a failed dial). Both
 * record `reason: upstream_denied`, and no connection is made either way.
 */
export type DeniedUpstreamForm = 'reject' | 'error';

/** A denied address answered in the `error` form: a failed dial rather than a refusal (see {@link DeniedUpstreamForm}). */
export class DeniedDialError extends ProxyError {}

/** An address and port a listener is bound to (`0.0.0.0` / `::` for every interface). */
export interface BoundAddress {
  readonly address: string;
  readonly port: number;
}

/** Where to dial. */
export interface UpstreamTarget {
  /** A DNS name or an IP literal (IPv6 with or without brackets). */
  readonly host: string;
  readonly port: number;
  /** Wrap the connection in TLS, verified for `host`. */
  readonly tls: boolean;
  /**
   * Which upstream proxy setting applies (`https_proxy` or `http_proxy`) when the connection
   * is dialled before its use is known (a tunnel's); default `https` when `tls`, else `http`.
   */
  readonly scheme?: 'http' | 'https';
  /**
   * The connection may be spliced to a client unread (a tunnel's upstream): a direct TCP
   * connection then reads into pooled buffers (`pooled-read-socket.ts`). Ignored with `tls`
   * and through an upstream proxy.
   */
  readonly splice?: boolean;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** DNS server settings when `resolver` is configured: per-try timeout and tries per query. */
const RESOLVER_TIMEOUT_MS = 3_000;
const RESOLVER_TRIES = 2;

/**
 * The one way the proxy opens upstream connections: resolve the name, refuse the connection
 * when ANY resolved address is in the deny list (an IPv6 address embedding a denied IPv4
 * address counted as denied), refuse one of the proxy's own listeners, then connect
 * to exactly one of the checked addresses (never a second lookup), wrapping it in TLS verified
 * against the default roots plus the configured extra CA, TLS 1.2 at least.
 *
 * Failures are `ProxyError`s whose `status` and `reason` the engine answers with:
 * `upstream_denied` (403, or 502 with `deniedAs: 'error'`), `upstream_resolve_failed`, `upstream_unreachable` and
 * `upstream_tls` (502).
 */
export class UpstreamGuard {
  readonly #deny: CidrSet;
  readonly #resolver: dns.Resolver | undefined;
  readonly #secureContext: SecureContext;
  readonly #connectTimeoutMs: number;
  readonly #ownListeners: () => readonly BoundAddress[];
  readonly #proxies: UpstreamProxyRoutes | undefined;
  readonly #deniedAs: DeniedUpstreamForm;

  /** Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) for a bad deny list, resolver address or CA bundle. */
  constructor(options: UpstreamGuardOptions) {
    this.#deny = CidrSet.parse(options.denyCidrs);
    this.#resolver = options.resolver === undefined ? undefined : dnsResolver(options.resolver);
    this.#secureContext = upstreamTlsContext(options.ca);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#ownListeners = options.ownListeners ?? (() => []);
    const proxies = options.upstreamProxy === undefined ? undefined : new UpstreamProxyRoutes(options.upstreamProxy);
    this.#proxies = proxies?.active === true ? proxies : undefined;
    this.#deniedAs = options.deniedAs ?? 'reject';
  }

  /** The addresses `host` resolves to (an IP literal is its own address). */
  async resolve(host: string): Promise<string[]> {
    const name = unbracket(host);
    if (isIP(name) !== 0) return [name];
    let addresses: string[];
    try {
      addresses = this.#resolver === undefined ? await lookupAll(name) : await resolveBoth(this.#resolver, name);
    } catch (err) {
      throw new ProxyError(ErrorCodes.UPSTREAM_RESOLVE, `cannot resolve upstream ${name}: ${errorCode(err)}`, {
        status: 502,
        reason: 'upstream_resolve_failed',
        cause: err,
      });
    }
    if (addresses.length === 0) {
      throw new ProxyError(ErrorCodes.UPSTREAM_RESOLVE, `upstream ${name} has no address`, { status: 502, reason: 'upstream_resolve_failed' });
    }
    return addresses;
  }

  /**
   * Throws `upstream_denied` when any of `addresses` falls in the deny list, or is an IPv6
   * address embedding an IPv4 address that does (NAT64, 6to4, Teredo, IPv4-compatible or
   * IPv4-mapped: see `CidrSet.matchWithEmbedded`).
   */
  check(host: string, addresses: readonly string[]): void {
    for (const address of addresses) {
      const match = this.#deny.matchWithEmbedded(address);
      if (match !== undefined) {
        const embeds = match.embedded === undefined ? '' : ` (embeds ${match.embedded.address})`;
        const message = `upstream ${unbracket(host)} resolves to ${address}${embeds}, inside denied ${match.range}`;
        if (this.#deniedAs === 'error') throw new DeniedDialError(ErrorCodes.UPSTREAM_DENIED, message, { status: 502, reason: 'upstream_denied' });
        throw new ProxyError(ErrorCodes.UPSTREAM_DENIED, message, { status: 403, reason: 'upstream_denied' });
      }
    }
  }

  /** Resolves `host` and checks every address; returns the addresses that may be dialled. */
  async admit(host: string): Promise<string[]> {
    const addresses = await this.resolve(host);
    this.check(host, addresses);
    return addresses;
  }

  /**
   * Opens a connection to `target` through the guard: one of the admitted addresses, tried in
   * order until one answers, then TLS when asked for.
   */
  async connect(target: UpstreamTarget): Promise<Socket | TLSSocket> {
    const host = unbracket(target.host);
    const proxy = this.#proxies?.route(host, target.port, target.scheme ?? (target.tls ? 'https' : 'http'));
    if (proxy !== undefined) return this.#connectThrough(proxy, host, target);
    const addresses = await this.admit(host);
    this.#refuseLoop(host, addresses, target.port);
    const deadline = Date.now() + this.#connectTimeoutMs;
    let lastError: unknown;
    for (const address of addresses) {
      let socket: Socket;
      try {
        socket = await connectTcp(address, target.port, deadline - Date.now(), target.splice === true && !target.tls);
      } catch (err) {
        lastError = err;
        continue;
      }
      return target.tls ? this.#startTls(socket, host, deadline - Date.now()) : socket;
    }
    throw new ProxyError(ErrorCodes.UPSTREAM_UNREACHABLE, `cannot connect to upstream ${host}:${target.port}: ${errorCode(lastError)}`, {
      status: 502,
      reason: 'upstream_unreachable',
      cause: lastError,
    });
  }

  /**
   * Wraps a connection this guard opened (`tls: false`) in TLS verified for `host`, as
   * `connect` would have: a tunnel dials when it opens and learns only from the client's
   * first bytes whether its requests need TLS.
   */
  secure(socket: Socket, host: string): Promise<TLSSocket> {
    return this.#startTls(socket, unbracket(host), this.#connectTimeoutMs);
  }

  /**
   * The `http://` or `https://` proxy plain-HTTP requests to `host:port` are sent to in
   * absolute-form (`proxy.upstream_proxy.http_proxy`, unless `no_proxy` exempts the
   * destination); undefined when they go direct or through a SOCKS proxy (a tunnel).
   */
  forwardingProxy(host: string, port: number): UpstreamProxy | undefined {
    const proxy = this.#proxies?.route(unbracket(host), port, 'http');
    return proxy !== undefined && (proxy.protocol === 'http' || proxy.protocol === 'https') ? proxy : undefined;
  }

  /**
   * An undici `connect` function: every connection of an `Agent` using it is guarded. A pool
   * for a plain-HTTP origin with a {@link forwardingProxy} gets a connection to that proxy
   * (the destination checked first, as for a tunnel), over which the agent's
   * absolute-form interceptor sends the origin's requests; every other origin is dialled by
   * {@link connect}.
   */
  readonly connector: buildConnector.connector = (options, callback) => {
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    const proxy = options.protocol === 'http:' ? this.forwardingProxy(options.hostname, port) : undefined;
    const socket = proxy === undefined ? this.connect({ host: options.hostname, port, tls: options.protocol === 'https:' }) : this.#connectForwarding(proxy, unbracket(options.hostname), port);
    socket.then(
      (s) => callback(null, s),
      (err: Error) => callback(err, null),
    );
  };

  /**
   * An undici interceptor for the agent using {@link connector}: a request to a plain-HTTP
   * origin with a {@link forwardingProxy} is rewritten to absolute-form with the proxy's
   * credentials (the connector sends it to the proxy). Other requests pass unchanged.
   */
  readonly absoluteForm: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (options, handler) => {
    // Without an upstream proxy (the usual case) nothing is parsed or looked up per request.
    if (this.#proxies === undefined || options.method === 'CONNECT' || options.origin === undefined) return dispatch(options, handler);
    const origin = typeof options.origin === 'string' ? new URL(options.origin) : options.origin;
    if (origin.protocol !== 'http:') return dispatch(options, handler);
    const proxy = this.forwardingProxy(origin.hostname, origin.port === '' ? 80 : Number(origin.port));
    return dispatch(proxy === undefined ? options : absoluteFormRequest(proxy, origin, options), handler);
  };

  /** A connection to `proxy` for absolute-form requests to `host:port`, the destination checked as {@link #connectThrough} does. */
  async #connectForwarding(proxy: UpstreamProxy, host: string, port: number): Promise<Socket> {
    await this.#admitForProxy(host, port);
    return connectToProxy(proxy, host, port, { timeoutMs: this.#connectTimeoutMs, secureContext: this.#secureContext });
  }

  /**
   * The checks of a destination reached through an upstream proxy: an IP literal, and every
   * address a name resolves to here when the deny list is not empty, against the deny list
   * and the proxy's own listeners. Returns the checked addresses, or undefined when nothing
   * was resolved (empty deny list and a name).
   */
  async #admitForProxy(host: string, port: number): Promise<string[] | undefined> {
    if (isIP(host) === 0 && this.#deny.size === 0) return undefined;
    const addresses = await this.admit(host);
    this.#refuseLoop(host, addresses, port);
    return addresses;
  }

  /**
   * Dials `target` through an upstream proxy. The destination is checked first as far as it
   * can be from here: an IP literal, and every address the name resolves to here, against the
   * deny list and the proxy's own listeners (a name that does not resolve here fails, as a
   * direct dial would). With an empty deny list nothing is resolved here. A `socks5://` proxy
   * is then given the checked address; `http(s)://` and `socks5h://` proxies are given the
   * name and resolve it themselves, so their answer is not checked (a name that resolves
   * differently there, or after the check, is not caught: their own policy governs it).
   */
  async #connectThrough(proxy: UpstreamProxy, host: string, target: UpstreamTarget): Promise<Socket | TLSSocket> {
    const deadline = Date.now() + this.#connectTimeoutMs;
    const addresses = await this.#admitForProxy(host, target.port);
    const dialHost = proxy.resolvesLocally && addresses !== undefined ? addresses[0]! : host;
    const socket = await openThroughProxy(proxy, dialHost, target.port, { timeoutMs: this.#connectTimeoutMs, secureContext: this.#secureContext });
    return target.tls ? this.#startTls(socket, host, deadline - Date.now()) : socket;
  }

  /** Throws `forwarding_loop` (508) when any of `addresses` at `port` is one of the proxy's own listeners. */
  #refuseLoop(host: string, addresses: readonly string[], port: number): void {
    const own = this.#ownListeners().filter((listener) => listener.port === port);
    if (own.length === 0) return;
    for (const address of addresses) {
      if (own.some((listener) => listensOn(listener.address, address))) {
        throw new ProxyError(ErrorCodes.UPSTREAM_DENIED, `upstream ${host}:${port} (${address}) is one of this proxy's listeners`, {
          status: 508,
          reason: 'forwarding_loop',
        });
      }
    }
  }

  #startTls(socket: Socket, host: string, timeoutMs: number): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const tlsSocket = tlsConnect({
        socket,
        host,
        // SNI carries names only (RFC 6066); an IP literal is still verified against the certificate.
        ...(isIP(host) === 0 ? { servername: host } : {}),
        checkServerIdentity,
        secureContext: this.#secureContext,
        ALPNProtocols: ['http/1.1'],
      });
      const fail = (err: unknown): void => {
        clearTimeout(timer);
        tlsSocket.destroy();
        reject(
          new ProxyError(ErrorCodes.UPSTREAM_UNREACHABLE, `upstream TLS with ${host} failed: ${errorCode(err)}`, {
            status: 502,
            reason: 'upstream_tls',
            cause: err,
          }),
        );
      };
      const timer = setTimeout(() => fail(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })), Math.max(0, timeoutMs));
      tlsSocket.once('error', fail);
      tlsSocket.once('secureConnect', () => {
        clearTimeout(timer);
        tlsSocket.off('error', fail);
        resolve(tlsSocket);
      });
    });
  }
}

/** A resolver asking only `server` (`ip[:port]`). */
function dnsResolver(server: string): dns.Resolver {
  const resolver = new dns.Resolver({ timeout: RESOLVER_TIMEOUT_MS, tries: RESOLVER_TRIES });
  try {
    resolver.setServers([server]);
  } catch (err) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `upstream resolver "${server}" is not an ip[:port] address`, { cause: err });
  }
  return resolver;
}

/** TLS 1.2+, trusting the default roots plus the extra bundle (each certificate in it parsed: TLS would skip a bad one silently). */
function upstreamTlsContext(extraCa: string | Buffer | undefined): SecureContext {
  if (extraCa === undefined) return createSecureContext({ minVersion: 'TLSv1.2' });
  const blocks = extraCa.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error('no certificate');
    for (const block of blocks) new X509Certificate(block);
  } catch (err) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, 'upstream CA bundle holds no valid PEM certificate', { cause: err });
  }
  return createSecureContext({ minVersion: 'TLSv1.2', ca: [...getCACertificates('default'), ...blocks] });
}

function connectTcp(address: string, port: number, timeoutMs: number, pooledReads: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const options = { host: address, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 };
    const socket = pooledReads ? connectPooled(options) : netConnect(options);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), Math.max(0, timeoutMs));
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

async function lookupAll(name: string): Promise<string[]> {
  const results = await dns.lookup(name, { all: true, order: 'ipv4first' });
  return results.map((r) => r.address);
}

/** A and AAAA through the configured server; fails only when both fail. */
async function resolveBoth(resolver: dns.Resolver, name: string): Promise<string[]> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
  if (v4.status === 'rejected' && v6.status === 'rejected') throw v4.reason;
  return [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A short, secret-free description of a socket or DNS error: its code, else its class. */
function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : 'unknown error';
}

/**
 * True when a listener bound to `bound` accepts connections to `address`: the same address
 * (IPv4-mapped IPv6 written as IPv4), or any local address when bound to every interface.
 */
function listensOn(bound: string, address: string): boolean {
  const target = plainIp(address);
  if (bound === '0.0.0.0' || bound === '::') return isLocalAddress(target);
  return plainIp(bound) === target;
}

/** An IP literal without brackets, an IPv4-mapped IPv6 address as its IPv4 form. */
function plainIp(address: string): string {
  const ip = unbracket(address).toLowerCase();
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** True for loopback addresses and the addresses of this machine's interfaces. */
function isLocalAddress(address: string): boolean {
  if (LOOPBACK.contains(address)) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => plainIp(i.address) === address) === true);
}

const LOOPBACK = CidrSet.parse(['127.0.0.0/8', '::1/128']);
