import type { IncomingMessage } from 'node:http';
import { ErrorCodes, ProxyError } from '@proxy/core';
import type { HeaderList, RequestMode } from '@proxy/core';
import {
  defaultPort,
  formatAuthority,
  hasDotSegment,
  isAbsoluteForm,
  parseAbsoluteForm,
  parseAuthority,
  parseOriginForm,
  type Authority,
} from './request-target.js';

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

/**
 * How requests reach the one Fastify app through a listener: which mode they are in, how
 * their destination is named, and what the listener adds to or takes from their headers.
 * TLS interception and tunnels add their own ingress kinds later; the request path is shared.
 */
export interface Ingress {
  readonly mode: RequestMode;
  /** Time allowed for the upstream's response headers. */
  readonly headersTimeoutMs: number;
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
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === wanted) out.push(raw[i + 1]!);
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
