import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ErrorCodes, ProxyError } from '@proxy/core';
import type { HeaderList, RequestMode, TunnelInfo } from '@proxy/core';
import type { Dispatcher } from 'undici';
import {
  defaultPort,
  formatAuthority,
  hasDotSegment,
  isAbsoluteForm,
  parseAbsoluteForm,
  parseAuthority,
  parseOriginForm,
  type Authority,
  type OriginForm,
} from './request-target.js';
import type { UpstreamTarget } from './upstream-guard.js';

/** The destination of a request and its target, as the listener that received it worked out. */
export interface Route {
  readonly scheme: 'http' | 'https';
  /** Normal form (see `parseAuthority`): what rules match and the guard dials. */
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly query: string;
}

/** A request the engine refuses before any transform sees it. */
export interface Refusal {
  readonly status: number;
  /** Machine-readable reason for the audit record. */
  readonly reason: string;
  /** Short client-facing text; never holds a secret. */
  readonly message: string;
  /** The destination host, when the request named one clearly enough to record. */
  readonly host?: string;
}

/** A connection's own way to its upstream (a tunnel's), used instead of the engine's shared pool. */
export interface DedicatedUpstream {
  /** Carries the connection's forwarded requests. */
  readonly dispatcher: Dispatcher;
  /** Opens a connection for a WebSocket upgrade. */
  connect(target: UpstreamTarget): Promise<Socket>;
}

/**
 * How requests reach the one Fastify app through a listener or an intercepted connection:
 * which mode they are in, how their destination is named, and what the listener adds to or
 * takes from their headers. The request path after it is shared.
 */
export interface Ingress {
  readonly mode: RequestMode;
  /** Time allowed for the upstream's response headers. */
  readonly headersTimeoutMs: number;
  /** The TLS server name the client sent on this connection (intercepted TLS). */
  readonly sni?: string | undefined;
  /** The tunnel this connection travels in. */
  readonly tunnel?: TunnelInfo | undefined;
  /** Set when the connection has its own upstream (a tunnel); otherwise the shared pool is used. */
  readonly upstream?: DedicatedUpstream | undefined;
  /** Works out where `req` goes, or why it is refused. `target` is the request-target as received. */
  route(req: IncomingMessage, target: string): Route | Refusal;
  /**
   * Turns the client's headers into those the pipeline sees and the upstream receives:
   * the listener's own fields removed, `Host` set to the destination, forwarding fields added.
   */
  rewriteHeaders(headers: HeaderList, route: Route, clientAddress: string): void;
}

/** True for a {@link Refusal}. */
export function isRefusal(value: Route | Refusal): value is Refusal {
  return 'status' in value;
}

const refuse = (status: number, reason: string, message: string): Refusal => ({ status, reason, message });

/** CONNECT opens a tunnel, which only the tunnel listener serves. */
const refuseConnect = (): Refusal => refuse(405, 'connect_not_supported', 'CONNECT is not served on this listener');

/**
 * The plain-HTTP forward listener: the destination is the absolute-form request URI (as
 * `curl -x` sends it) or, for origin-form requests (DNS interception), the Host header.
 * When both name a host, they must name the same one (421 otherwise).
 */
export class ForwardIngress implements Ingress {
  readonly mode = 'http' as const;
  readonly headersTimeoutMs: number;

  constructor(headersTimeoutMs: number) {
    this.headersTimeoutMs = headersTimeoutMs;
  }

  route(req: IncomingMessage, target: string): Route | Refusal {
    if (req.method === 'CONNECT') return refuseConnect();
    const hostValues = hostHeaderValues(req);
    if (hostValues.length > 1) return refuse(400, 'duplicate_host', 'more than one Host header');
    const hostHeader = hostValues[0];

    if (isAbsoluteForm(target)) {
      const uri = parseAbsoluteForm(target);
      if (uri === undefined) return refuse(400, 'unsupported_scheme', 'only http:// and https:// request URIs are proxied here');
      const destination = parseAuthority(uri.authority, defaultPort(uri.scheme));
      if (destination === undefined) return refuse(400, 'invalid_uri_host', 'invalid host in request URI');
      if (hostHeader !== undefined) {
        const named = parseAuthority(hostHeader, defaultPort(uri.scheme));
        if (named === undefined) return refuse(400, 'invalid_host', 'invalid Host header');
        if (named.host !== destination.host || named.port !== destination.port) {
          return { ...refuse(421, 'host_mismatch', 'request URI and Host header name different hosts'), host: destination.host };
        }
      }
      return withTarget(uri.scheme, destination, uri);
    }

    const origin = parseOriginForm(target);
    if (origin === undefined) return refuse(400, 'invalid_target', 'request target must be an absolute URI or a path');
    if (hostHeader === undefined || hostHeader.trim() === '') return refuse(400, 'missing_host', 'missing Host header');
    const destination = parseAuthority(hostHeader, 80);
    if (destination === undefined) return refuse(400, 'invalid_host', 'invalid Host header');
    return withTarget('http', destination, origin);
  }

  rewriteHeaders(headers: HeaderList, route: Route): void {
    setHost(headers, formatAuthority(route, route.scheme));
  }
}

/** Options of a {@link ReverseIngress}. */
export interface ReverseIngressOptions {
  readonly scheme: 'http' | 'https';
  /** Pinned upstream `host[:port]`; when set the selection header is never consulted. */
  readonly upstreamHost: string | undefined;
  /** Header naming the upstream when not pinned; `Host` means the Host line. */
  readonly hostHeader: string;
  readonly headersTimeoutMs: number;
}

/**
 * A reverse (sidecar) listener: every request goes to the pinned upstream, or to the one the
 * selection header names. The selection header never reaches the upstream; the client's
 * address is appended to `X-Forwarded-For`.
 */
export class ReverseIngress implements Ingress {
  readonly mode = 'reverse' as const;
  readonly headersTimeoutMs: number;
  readonly #scheme: 'http' | 'https';
  readonly #pinned: Authority | undefined;
  readonly #header: string;
  readonly #headerIsHost: boolean;

  /** Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) when the pinned upstream is not `host[:port]`. */
  constructor(options: ReverseIngressOptions) {
    this.#scheme = options.scheme;
    this.#header = options.hostHeader;
    this.#headerIsHost = options.hostHeader.toLowerCase() === 'host';
    this.headersTimeoutMs = options.headersTimeoutMs;
    if (options.upstreamHost !== undefined) {
      this.#pinned = parseAuthority(options.upstreamHost, defaultPort(options.scheme));
      if (this.#pinned === undefined) {
        throw new ProxyError(ErrorCodes.CONFIG_INVALID, `reverse listener: invalid upstream_host "${options.upstreamHost}"`);
      }
    }
  }

  route(req: IncomingMessage, target: string): Route | Refusal {
    if (req.method === 'CONNECT') return refuseConnect();
    const origin = parseOriginForm(target);
    if (origin === undefined) return refuse(400, 'invalid_target', 'request target must be a path');
    if (this.#pinned !== undefined) return withTarget(this.#scheme, this.#pinned, origin);

    const values = this.#headerIsHost ? hostHeaderValues(req) : headerValues(req, this.#header);
    if (values.length > 1) return refuse(400, 'duplicate_upstream_header', `more than one ${this.#header} header`);
    const value = values[0]?.trim();
    if (value === undefined || value === '') return refuse(400, 'missing_upstream_header', `missing ${this.#header} header`);
    const destination = parseAuthority(value, defaultPort(this.#scheme));
    if (destination === undefined) return refuse(400, 'invalid_upstream_header', `invalid ${this.#header} header`);
    return withTarget(this.#scheme, destination, origin);
  }

  rewriteHeaders(headers: HeaderList, route: Route, clientAddress: string): void {
    if (!this.#headerIsHost) headers.delete(this.#header);
    setHost(headers, formatAuthority(route, route.scheme));
    appendForwardedFor(headers, clientAddress);
  }
}

/** Options of a {@link BoundIngress}. */
export interface BoundIngressOptions {
  readonly mode: 'mitm' | 'http';
  readonly scheme: 'http' | 'https';
  /** The destination every request on the connection goes to (normal form). */
  readonly host: string;
  readonly port: number;
  readonly sni: string | undefined;
  readonly tunnel: TunnelInfo | undefined;
  readonly upstream: DedicatedUpstream | undefined;
  readonly headersTimeoutMs: number;
}

/**
 * A connection bound to one destination before its first request: TLS terminated for the
 * client's SNI (the https listener), or the inside of a tunnel (its target). Every request's
 * Host, and the authority of an absolute-form target, must name that host (case-insensitive,
 * port ignored); anything else is 421, never a second destination.
 */
export class BoundIngress implements Ingress {
  readonly mode: 'mitm' | 'http';
  readonly headersTimeoutMs: number;
  readonly sni: string | undefined;
  readonly tunnel: TunnelInfo | undefined;
  readonly upstream: DedicatedUpstream | undefined;
  readonly #scheme: 'http' | 'https';
  readonly #destination: Authority;
  readonly #mismatch: string;

  constructor(options: BoundIngressOptions) {
    this.mode = options.mode;
    this.headersTimeoutMs = options.headersTimeoutMs;
    this.sni = options.sni;
    this.tunnel = options.tunnel;
    this.upstream = options.upstream;
    this.#scheme = options.scheme;
    this.#destination = { host: options.host, port: options.port };
    this.#mismatch = options.tunnel === undefined ? 'Host does not match the TLS server name' : 'Host does not match the tunnel target';
  }

  route(req: IncomingMessage, target: string): Route | Refusal {
    if (req.method === 'CONNECT') return refuseConnect();
    const hostValues = hostHeaderValues(req);
    if (hostValues.length > 1) return refuse(400, 'duplicate_host', 'more than one Host header');
    const hostHeader = hostValues[0];
    if (hostHeader === undefined || hostHeader.trim() === '') return refuse(400, 'missing_host', 'missing Host header');
    const named = parseAuthority(hostHeader, this.#destination.port);
    if (named === undefined) return refuse(400, 'invalid_host', 'invalid Host header');
    if (named.host !== this.#destination.host) return this.#misdirected();

    let parts: OriginForm | undefined;
    if (isAbsoluteForm(target)) {
      const uri = parseAbsoluteForm(target);
      if (uri === undefined) return refuse(400, 'unsupported_scheme', 'only http:// and https:// request URIs are accepted');
      const authority = parseAuthority(uri.authority, defaultPort(uri.scheme));
      if (authority === undefined) return refuse(400, 'invalid_uri_host', 'invalid host in request URI');
      if (authority.host !== this.#destination.host) return this.#misdirected();
      parts = uri;
    } else {
      parts = parseOriginForm(target);
      if (parts === undefined) return refuse(400, 'invalid_target', 'request target must be a path');
    }
    return withTarget(this.#scheme, this.#destination, parts);
  }

  rewriteHeaders(headers: HeaderList, route: Route): void {
    setHost(headers, formatAuthority(route, route.scheme));
  }

  #misdirected(): Refusal {
    return { ...refuse(421, 'host_mismatch', this.#mismatch), host: this.#destination.host };
  }
}

function withTarget(scheme: 'http' | 'https', destination: Authority, target: { path: string; query: string }): Route | Refusal {
  if (hasDotSegment(target.path)) {
    return { ...refuse(400, 'dot_segment', 'path must not contain "." or ".." segments'), host: destination.host };
  }
  return { scheme, host: destination.host, port: destination.port, path: target.path, query: target.query };
}

function headerValues(req: IncomingMessage, name: string): string[] {
  const wanted = name.toLowerCase();
  const out: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const field = raw[i]!;
    if (field.length === wanted.length && field.toLowerCase() === wanted) out.push(raw[i + 1]!);
  }
  return out;
}

function hostHeaderValues(req: IncomingMessage): string[] {
  return headerValues(req, 'host');
}

/** Replaces the Host field in place (keeping its position), or appends one. */
function setHost(headers: HeaderList, value: string): void {
  for (let i = 0; i < headers.size; i++) {
    if (headers.at(i)![0].toLowerCase() === 'host') {
      headers.setAt(i, value);
      for (let j = headers.size - 1; j > i; j--) if (headers.at(j)![0].toLowerCase() === 'host') headers.deleteAt(j);
      return;
    }
  }
  headers.append('Host', value);
}

function appendForwardedFor(headers: HeaderList, clientAddress: string): void {
  const previous = headers.getAll('x-forwarded-for');
  if (previous.length === 0) {
    headers.append('X-Forwarded-For', clientAddress);
    return;
  }
  const first = headers.names().find((n) => n.toLowerCase() === 'x-forwarded-for')!;
  headers.delete('x-forwarded-for');
  headers.append(first, [...previous, clientAddress].join(', '));
}
