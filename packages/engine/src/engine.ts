import { STATUS_CODES, createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AuditRecord, HttpClient, Logger, Pipeline } from '@proxy/core';
import { Agent } from 'undici';
import type { Exchange, ExchangeHost } from './exchange.js';
import { isWebSocketUpgrade } from './hop-by-hop.js';
import { guardedHttpClient } from './http-client.js';
import { ForwardIngress, ReverseIngress, type Ingress } from './ingress.js';
import { parseListenAddress, type ListenAddress } from './listen-address.js';
import { ProxyApp } from './proxy-app.js';
import { UpstreamGuard } from './upstream-guard.js';
import { proxyWebSocketUpgrade, type UpgradeContext } from './websocket-upgrade.js';

/** Options of {@link createEngine}. */
export interface EngineOptions {
  /** Operational logs (core's pino-compatible logger). Audit records go to `onAudit`. */
  readonly logger: Logger;
  /** Called once per request, after the response finished (or failed). */
  readonly onAudit: (record: AuditRecord) => void;
  /** Plain-HTTP forward listener (`proxy.http_listen`), e.g. `"127.0.0.1:0"` or `":80"`; omit for none. */
  readonly httpListen?: string;
  /** Reverse (sidecar) listeners. */
  readonly reverse?: readonly ReverseListenerOptions[];
  /** Most bytes a transform's `body.read()` buffers from a request; 413 beyond. */
  readonly maxRequestBodyBytes: number;
  /** Most bytes a response transform's `body.read()` buffers; 0 = unlimited. */
  readonly maxResponseBodyBytes: number;
  /** Time allowed until the upstream's response headers; 504 beyond. */
  readonly upstreamResponseHeaderTimeoutMs: number;
  /** Upstream addresses never dialled (`proxy.upstream_deny_cidrs`, already defaulted by config). */
  readonly upstreamDenyCidrs: readonly string[];
  /** `"ip:port"` or `"ip"` (port 53): resolve upstream names with this DNS server instead of the OS. */
  readonly upstreamResolver?: string;
  /** Extra PEM CA certificates trusted for upstream TLS besides the system roots. */
  readonly upstreamCa?: string | Buffer;
}

/** One reverse (sidecar) listener. */
export interface ReverseListenerOptions {
  readonly listen: string;
  /** `"host[:port]"`: every request goes there; the selection header is never consulted. */
  readonly upstreamHost?: string;
  readonly upstreamScheme: 'http' | 'https';
  /** Header naming the upstream when not pinned (default `X-Upstream-Host`); `Host` = the Host line. */
  readonly hostHeader: string;
  /** Overrides `upstreamResponseHeaderTimeoutMs` for this listener. */
  readonly upstreamTimeoutMs?: number;
  /** Serve HTTPS on this listener. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

/** A listener's bound address, as `listen()` reports it. */
export interface ListenerAddress {
  readonly kind: 'http' | 'reverse';
  readonly address: string;
  readonly port: number;
  /** Position in `reverse` (reverse listeners only). */
  readonly index?: number;
}

/** The running proxy engine. */
export interface Engine {
  /** HTTP client for transforms' own calls (`TransformEnv.http`), dialling through the same guard. */
  readonly http: HttpClient;
  /** The pipeline new requests run on. In-flight requests keep the one they started with. Returns the previous one (the caller closes it). */
  setPipeline(pipeline: Pipeline): Pipeline | undefined;
  /** Opens every configured listener; on failure, closes those already open and throws. */
  listen(): Promise<ListenerAddress[]>;
  /** Stop accepting, let in-flight requests finish for up to `graceMs` (default 10 s), then close everything. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Builds the engine: one Fastify app every listener feeds, one guarded undici agent every
 * upstream request goes through. Validates the listen addresses, the pinned upstreams and the
 * deny list now (a `ProxyError` with code `PROXY_ERR_CONFIG_INVALID`); nothing listens until
 * `listen()`.
 */
export function createEngine(options: EngineOptions): Engine {
  return new ProxyEngine(options);
}

const DEFAULT_GRACE_MS = 10_000;

interface ListenerSpec {
  readonly kind: 'http' | 'reverse';
  readonly index: number | undefined;
  readonly address: ListenAddress;
  readonly ingress: Ingress;
  readonly tls: ReverseListenerOptions['tls'];
}

class ProxyEngine implements Engine {
  readonly http: HttpClient;
  readonly #logger: Logger;
  readonly #guard: UpstreamGuard;
  readonly #agent: Agent;
  readonly #app: ProxyApp;
  readonly #specs: ListenerSpec[];
  readonly #servers: Server[] = [];
  readonly #inFlight = new Set<Exchange>();
  readonly #tunnels = new Set<Duplex>();
  readonly #upgrades: UpgradeContext;
  #pipeline: Pipeline | undefined;
  #state: 'new' | 'listening' | 'closing' = 'new';
  #closed: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(options: EngineOptions) {
    this.#logger = options.logger.child({ component: 'engine' });
    this.#specs = listenerSpecs(options);
    this.#guard = new UpstreamGuard({
      denyCidrs: options.upstreamDenyCidrs,
      ...(options.upstreamResolver === undefined ? {} : { resolver: options.upstreamResolver }),
      ...(options.upstreamCa === undefined ? {} : { ca: options.upstreamCa }),
    });
    this.#agent = new Agent({ connect: this.#guard.connector, allowH2: false, bodyTimeout: 0 });
    this.http = guardedHttpClient(this.#agent);

    const onAudit = options.onAudit;
    const logger = this.#logger;
    const currentPipeline = (): Pipeline | undefined => this.#pipeline;
    const host: ExchangeHost = {
      get pipeline() {
        return currentPipeline();
      },
      maxRequestBodyBytes: options.maxRequestBodyBytes,
      onAudit: (record) => {
        try {
          onAudit(record);
        } catch (err) {
          logger.error({ request_id: record.request_id, error_class: err instanceof Error ? err.name : typeof err }, 'audit sink failed');
        }
      },
      admit: (exchange) => void this.#inFlight.add(exchange),
      retire: (exchange) => this.#retire(exchange),
    };
    this.#app = new ProxyApp({
      host,
      dispatcher: this.#agent,
      maxResponseBodyBytes: options.maxResponseBodyBytes,
      logger: this.#logger,
      closing: () => this.#state === 'closing',
    });
    this.#upgrades = { host, guard: this.#guard, logger: this.#logger, tunnels: this.#tunnels };
  }

  setPipeline(pipeline: Pipeline): Pipeline | undefined {
    const previous = this.#pipeline;
    this.#pipeline = pipeline;
    return previous;
  }

  async listen(): Promise<ListenerAddress[]> {
    if (this.#state !== 'new') throw new Error(`engine cannot listen: it is ${this.#state}`);
    this.#state = 'listening';
    await this.#app.fastify.ready();
    const addresses: ListenerAddress[] = [];
    try {
      for (const spec of this.#specs) {
        const server = this.#createServer(spec);
        this.#servers.push(server);
        const bound = await bind(server, spec.address);
        addresses.push({ kind: spec.kind, address: bound.address, port: bound.port, ...(spec.index === undefined ? {} : { index: spec.index }) });
        this.#logger.debug({ listener: spec.kind, address: bound.address, port: bound.port }, 'listener open');
      }
    } catch (err) {
      await this.close(0);
      throw err;
    }
    return addresses;
  }

  close(graceMs = DEFAULT_GRACE_MS): Promise<void> {
    this.#closed ??= this.#shutdown(graceMs);
    return this.#closed;
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#state = 'closing';
    const serversClosed = this.#servers.filter((s) => s.listening).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    await this.#drain(graceMs);
    for (const server of this.#servers) server.closeAllConnections();
    for (const tunnel of this.#tunnels) tunnel.destroy();
    await Promise.all(serversClosed);
    await this.#agent.destroy();
    await this.#app.fastify.close();
  }

  /** Resolves when no request or tunnel is in flight, or after `graceMs`. */
  async #drain(graceMs: number): Promise<void> {
    if (this.#idle()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => (this.#drained = resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    this.#drained = undefined;
  }

  #idle(): boolean {
    return this.#inFlight.size === 0 && this.#tunnels.size === 0;
  }

  #retire(exchange: Exchange): void {
    this.#inFlight.delete(exchange);
    if (this.#state !== 'closing') return;
    // A response just finished: its keep-alive connection is idle now and may go.
    for (const server of this.#servers) server.closeIdleConnections();
    if (this.#idle()) this.#drained?.();
  }

  #createServer(spec: ListenerSpec): Server {
    const options: ServerOptions = {
      // The engine answers a missing Host itself (with an audit record).
      requireHostHeader: false,
      // Uploads stream for as long as they take; the header timeout still guards slow clients.
      requestTimeout: 0,
      // Only WebSocket upgrades switch protocols; any other Upgrade header is ignored (hop-by-hop).
      shouldUpgradeCallback: (req: IncomingMessage) => isWebSocketUpgrade(req.headers),
    };
    const server: Server = spec.tls ? createHttpsServer({ ...options, cert: spec.tls.cert, key: spec.tls.key }) : createHttpServer(options);
    server.on('request', (req, res) => this.#app.handle(req, res, spec.ingress));
    const onSocketRequest = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      void proxyWebSocketUpgrade(this.#upgrades, spec.ingress, req, socket, head);
    };
    server.on('upgrade', onSocketRequest);
    server.on('connect', onSocketRequest);
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Bytes that are not an HTTP request: there is no request to audit, only a line to log.
      this.#logger.debug({ listener: spec.kind, code: err.code }, 'malformed request');
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    return server;
  }
}

function listenerSpecs(options: EngineOptions): ListenerSpec[] {
  const specs: ListenerSpec[] = [];
  if (options.httpListen !== undefined) {
    specs.push({
      kind: 'http',
      index: undefined,
      address: parseListenAddress(options.httpListen, 'proxy.http_listen'),
      ingress: new ForwardIngress(options.upstreamResponseHeaderTimeoutMs),
      tls: undefined,
    });
  }
  (options.reverse ?? []).forEach((r, index) => {
    specs.push({
      kind: 'reverse',
      index,
      address: parseListenAddress(r.listen, `proxy.reverse[${index}].listen`),
      ingress: new ReverseIngress({
        scheme: r.upstreamScheme,
        upstreamHost: r.upstreamHost,
        hostHeader: r.hostHeader,
        headersTimeoutMs: r.upstreamTimeoutMs ?? options.upstreamResponseHeaderTimeoutMs,
      }),
      tls: r.tls,
    });
  });
  return specs;
}

function bind(server: Server, address: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
