import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { createNoopMeter, type Meter } from '@opentelemetry/api';
import { BytePool, bufferBudgetExhausted, ErrorCodes, ProxyError } from '@proxy/core';
import type { AuditRecord, HttpClient, Logger, Pipeline } from '@proxy/core';
import { Agent, type Dispatcher } from 'undici';
import { BodyBudgets, DEFAULT_CLIENT_LIMITS, proxyServerOptions, type ClientLimits } from './client-limits.js';
import { ConnectionSet } from './connection-set.js';
import { clientAddressOf, type ExchangeHost } from './exchange.js';
import { guardedHttpClient } from './http-client.js';
import { ConnectionHttpLayer, serveProxyApp, type ServeOptions } from './http-layer.js';
import { HttpMetrics } from './http-metrics.js';
import { ForwardIngress, ReverseIngress, type Ingress } from './ingress.js';
import { parseListenAddress, type ListenAddress } from './listen-address.js';
import { HttpListener, InterceptingListener, type Listener, type ListenerKind } from './listener.js';
import { PreludeReader } from './prelude-reader.js';
import { ProxyApp } from './proxy-app.js';
import { interceptTls, PRELUDE_LIMITS, type InterceptionContext, type LeafCertificateSource, type TlsMode } from './tls-interception.js';
import { TunnelGateway } from './tunnel-gateway.js';
import { UpstreamGuard, type BoundAddress, type DeniedUpstreamForm } from './upstream-guard.js';
import type { UpstreamProxySettings } from './upstream-proxy-routes.js';
import type { UpgradeContext } from './websocket-upgrade.js';

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
  /** Most bytes a transform's `body.read()` buffers from a request; 413 beyond (0 = no limit of its own; the budgets still apply). */
  readonly maxRequestBodyBytes: number;
  /** Most bytes a response transform's `body.read()` buffers; 0 = unlimited. */
  readonly maxResponseBodyBytes: number;
  /** Time allowed until the upstream's response headers; 504 beyond. */
  readonly upstreamResponseHeaderTimeoutMs: number;
  /** Upstream addresses never dialled (`proxy.upstream_deny_cidrs`, already defaulted by config). */
  readonly upstreamDenyCidrs: readonly string[];
  /** How a request to a denied address is answered: `reject` (403, the default) or iron-proxy's `error` (502); see `DeniedUpstreamForm`. */
  readonly upstreamDeniedAs?: DeniedUpstreamForm;
  /** `"ip:port"` or `"ip"` (port 53): resolve upstream names with this DNS server instead of the OS. */
  readonly upstreamResolver?: string;
  /** Extra PEM CA certificates trusted for upstream TLS besides the system roots. */
  readonly upstreamCa?: string | Buffer;
  /** Forward proxies every upstream connection goes through (`proxy.upstream_proxy`), unless `noProxy` exempts it. */
  readonly upstreamProxy?: UpstreamProxySettings;
  /** TLS listener (`proxy.https_listen`): clients reach it by DNS pointed at the proxy; the SNI names the destination (port 443). */
  readonly httpsListen?: string;
  /** Tunnel listener (`proxy.tunnel_listen`): HTTP CONNECT and SOCKS5 on one port. */
  readonly tunnelListen?: string;
  /** `tls.mode`: terminate client TLS with minted leaves (`mitm`, the default) or pass it through unread (`sni-only`). */
  readonly tlsMode?: TlsMode;
  /** Leaf certificates for `mitm`; required when `httpsListen` or `tunnelListen` is set in that mode. */
  readonly certificates?: LeafCertificateSource;
  /** What one client may take (timeouts, connections, buffered bytes); unset fields take `DEFAULT_CLIENT_LIMITS`. */
  readonly clientLimits?: Partial<ClientLimits>;
  /**
   * Where the HTTP instruments are created (`http.server.request.duration`,
   * `http.server.active_requests`, `http.client.request.duration`); default: a no-op meter.
   */
  readonly meter?: Meter;
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
  readonly kind: ListenerKind;
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
  /**
   * Registers another TCP address this process listens on, outside the engine (the DNS
   * server's TCP port, the metrics endpoint, a management API): the upstream guard then
   * refuses to dial it, as it refuses the engine's own listeners (508 `forwarding_loop`), so a
   * workload cannot reach the process's other services through the proxy. Call it once the
   * listener is bound (`0.0.0.0` / `::` stand for every local address).
   */
  addOwnAddress(address: BoundAddress): void;
  /** Stop accepting, let in-flight requests finish for up to `graceMs` (default 10 s), then close everything. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Builds the engine: one Fastify app every listener feeds, one guarded undici agent every
 * upstream request goes through (a tunnel's requests use the connection dialled for it).
 * Validates the listen addresses, the pinned upstreams, the deny list and the TLS settings now
 * (a `ProxyError` with code `PROXY_ERR_CONFIG_INVALID`); nothing listens until `listen()`.
 */
export function createEngine(options: EngineOptions): Engine {
  return new ProxyEngine(options);
}

const DEFAULT_GRACE_MS = 10_000;

/** What to open: the https listener has no ingress of its own (each connection is bound by its SNI). */
type ListenerSpec =
  | {
      readonly kind: 'http' | 'reverse' | 'tunnel';
      readonly index: number | undefined;
      readonly address: ListenAddress;
      /** The ingress of the listener's own HTTP requests. */
      readonly ingress: Ingress;
      readonly tls: ReverseListenerOptions['tls'];
    }
  | { readonly kind: 'https'; readonly index: undefined; readonly address: ListenAddress };

class ProxyEngine implements Engine {
  readonly http: HttpClient;
  readonly #logger: Logger;
  readonly #guard: UpstreamGuard;
  /** Where the listeners (and the process's other servers) are bound: the guard refuses to dial them (forwarding loops). */
  readonly #bound: BoundAddress[] = [];
  readonly #agent: Dispatcher;
  readonly #app: ProxyApp;
  readonly #host: ExchangeHost;
  readonly #specs: ListenerSpec[];
  readonly #listeners: Listener[] = [];
  /**
   * Exchanges admitted and not yet retired. A count, not a `Set` of them: a long-lived `Set`
   * with an entry added and deleted per request is rehashed every few dozen requests, and V8
   * keeps each replaced table linked to the next one with the entries it held. Once a full
   * collection has moved such a table to the old generation, the dead table keeps the
   * requests it held (their whole graphs) alive through every young collection, and the
   * replaced tables chain: a third of all allocation ended up promoted and young collections
   * took 5-20 ms instead of 1-2 (bench/README.md, "Promoted garbage").
   */
  #inFlight = 0;
  /** Spliced connections (WebSockets, passthrough and SNI-only tunnels): shutdown waits for them. */
  readonly #tunnels = new ConnectionSet(() => this.#checkDrained());
  readonly #upgrades: UpgradeContext;
  readonly #tlsMode: TlsMode;
  readonly #certificates: LeafCertificateSource | undefined;
  readonly #headersTimeoutMs: number;
  readonly #limits: ClientLimits;
  #pipeline: Pipeline | undefined;
  #state: 'new' | 'listening' | 'closing' = 'new';
  #closed: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(options: EngineOptions) {
    this.#logger = options.logger.child({ component: 'engine' });
    this.#specs = listenerSpecs(options);
    this.#tlsMode = options.tlsMode ?? 'mitm';
    this.#certificates = options.certificates;
    this.#headersTimeoutMs = options.upstreamResponseHeaderTimeoutMs;
    this.#limits = { ...DEFAULT_CLIENT_LIMITS, ...options.clientLimits };
    checkTlsOptions(options, this.#tlsMode);
    this.#guard = new UpstreamGuard({
      denyCidrs: options.upstreamDenyCidrs,
      ...(options.upstreamDeniedAs === undefined ? {} : { deniedAs: options.upstreamDeniedAs }),
      ...(options.upstreamResolver === undefined ? {} : { resolver: options.upstreamResolver }),
      ...(options.upstreamCa === undefined ? {} : { ca: options.upstreamCa }),
      ...(options.upstreamProxy === undefined ? {} : { upstreamProxy: options.upstreamProxy }),
      ownListeners: () => this.#bound,
    });
    // Plain-HTTP requests through an http(s) upstream proxy go to it in absolute-form (the guard's connector dials the proxy for those origins).
    this.#agent = new Agent({ connect: this.#guard.connector, allowH2: false, bodyTimeout: 0 }).compose(this.#guard.absoluteForm);
    this.http = guardedHttpClient(this.#agent);

    const onAudit = options.onAudit;
    const logger = this.#logger;
    const currentPipeline = (): Pipeline | undefined => this.#pipeline;
    this.#host = {
      get pipeline() {
        return currentPipeline();
      },
      maxRequestBodyBytes: options.maxRequestBodyBytes,
      limits: this.#limits,
      budgets: new BodyBudgets(this.#limits, new BytePool(this.#limits.maxBufferedBodyBytes, bufferBudgetExhausted)),
      metrics: new HttpMetrics(options.meter ?? createNoopMeter()),
      onAudit: (record) => {
        try {
          onAudit(record);
        } catch (err) {
          logger.error({ request_id: record.request_id, error_class: err instanceof Error ? err.name : typeof err }, 'audit sink failed');
        }
      },
      admit: () => void this.#inFlight++,
      retire: () => this.#retire(),
    };
    this.#app = new ProxyApp({
      host: this.#host,
      dispatcher: this.#agent,
      maxResponseBodyBytes: options.maxResponseBodyBytes,
      logger: this.#logger,
      closing: () => this.#state === 'closing',
    });
    this.#upgrades = { host: this.#host, guard: this.#guard, logger: this.#logger, tunnels: this.#tunnels };
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
        const listener = this.#createListener(spec);
        this.#limitConnections(listener, spec.kind);
        this.#listeners.push(listener);
        const bound = await bind(listener.server, spec.address);
        this.#bound.push({ address: bound.address, port: bound.port });
        addresses.push({ kind: spec.kind, address: bound.address, port: bound.port, ...(spec.index === undefined ? {} : { index: spec.index }) });
        this.#logger.debug({ listener: spec.kind, address: bound.address, port: bound.port }, 'listener open');
      }
    } catch (err) {
      await this.close(0);
      throw err;
    }
    return addresses;
  }

  addOwnAddress(address: BoundAddress): void {
    this.#bound.push({ address: address.address, port: address.port });
  }

  close(graceMs = DEFAULT_GRACE_MS): Promise<void> {
    this.#closed ??= this.#shutdown(graceMs);
    return this.#closed;
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#state = 'closing';
    const serversClosed = this.#listeners
      .filter((l) => l.server.listening)
      .map((l) => new Promise<void>((resolve) => l.server.close(() => resolve())));
    for (const listener of this.#listeners) listener.closeIdleConnections();
    await this.#drain(graceMs);
    for (const listener of this.#listeners) listener.closeAllConnections();
    this.#tunnels.destroyAll();
    await Promise.all(serversClosed);
    await this.#agent.destroy();
    await this.#app.fastify.close();
  }

  /** Resolves when no request, connection decision or splice is in flight, or after `graceMs`. */
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
    return this.#inFlight === 0 && this.#tunnels.size === 0;
  }

  #retire(): void {
    this.#inFlight--;
    if (this.#state !== 'closing') return;
    // A response just finished: its keep-alive connection is idle now and may go.
    for (const listener of this.#listeners) listener.closeIdleConnections();
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#state === 'closing' && this.#idle()) this.#drained?.();
  }

  /**
   * Caps the connections a listener holds (`maxConnections`): Node closes any beyond on arrival.
   * Each refusal is counted and logged at most once a second, so a flood cannot flood the log.
   */
  #limitConnections(listener: Listener, kind: ListenerKind): void {
    if (this.#limits.maxConnections <= 0) return;
    listener.server.maxConnections = this.#limits.maxConnections;
    let dropped = 0;
    let lastLog = 0;
    listener.server.on('drop', (data?: { remoteAddress?: string }) => {
      dropped++;
      const now = Date.now();
      if (now - lastLog < 1_000) return;
      lastLog = now;
      this.#logger.warn(
        { listener: kind, remote_addr: data?.remoteAddress, reason: 'connection_limit', dropped, max_connections: this.#limits.maxConnections },
        'listener at its connection limit: new connections closed',
      );
      dropped = 0;
    });
  }

  #createListener(spec: ListenerSpec): Listener {
    switch (spec.kind) {
      case 'http':
      case 'reverse':
        return this.#createHttpListener(spec.ingress, spec.tls, spec.kind);
      case 'https': {
        const context: InterceptionContext = { ...this.#interception(), layer: new ConnectionHttpLayer(this.#serveOptions('https')) };
        const serve = (socket: Socket): Promise<void> =>
          interceptTls(context, socket, new PreludeReader(socket, PRELUDE_LIMITS), { port: 443, clientAddress: clientAddressOf(socket) });
        return new InterceptingListener(context.layer, serve, this.#logger, 'https');
      }
      case 'tunnel': {
        const gateway = new TunnelGateway(this.#interception(), spec.ingress, this.#serveOptions('tunnel'));
        return new InterceptingListener(gateway.layer, (socket) => gateway.accept(socket), this.#logger, 'tunnel');
      }
    }
  }

  #createHttpListener(ingress: Ingress, tls: ReverseListenerOptions['tls'], kind: ListenerKind): Listener {
    const serverOptions = proxyServerOptions(this.#limits);
    const server: Server = tls ? createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key }) : createHttpServer(serverOptions);
    serveProxyApp(server, { ...this.#serveOptions(kind), ingressOf: () => ingress });
    return new HttpListener(server);
  }

  #serveOptions(listener: ListenerKind): Omit<ServeOptions, 'ingressOf'> {
    return { app: this.#app, upgrades: this.#upgrades, logger: this.#logger, listener, serverOptions: proxyServerOptions(this.#limits) };
  }

  /** What TLS interception needs from the engine; each listener adds its HTTP layer. */
  #interception(): Omit<InterceptionContext, 'layer'> {
    return {
      host: this.#host,
      guard: this.#guard,
      logger: this.#logger,
      tlsMode: this.#tlsMode,
      certificates: this.#certificates,
      spliced: this.#tunnels,
      headersTimeoutMs: this.#headersTimeoutMs,
    };
  }
}

/** Refuses TLS settings that cannot work: an unknown mode, or interception without certificates. */
function checkTlsOptions(options: EngineOptions, mode: TlsMode): void {
  if (mode !== 'mitm' && mode !== 'sni-only') {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `tls.mode: unknown mode "${String(mode)}" (expected mitm or sni-only)`);
  }
  const intercepts = options.httpsListen !== undefined || options.tunnelListen !== undefined;
  if (mode === 'mitm' && intercepts && options.certificates === undefined) {
    throw new ProxyError(
      ErrorCodes.CONFIG_INVALID,
      'tls.mode mitm needs a CA (tls.ca_cert, tls.ca_key) to serve proxy.https_listen or proxy.tunnel_listen',
    );
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
  if (options.httpsListen !== undefined) {
    specs.push({ kind: 'https', index: undefined, address: parseListenAddress(options.httpsListen, 'proxy.https_listen') });
  }
  if (options.tunnelListen !== undefined) {
    specs.push({
      kind: 'tunnel',
      index: undefined,
      address: parseListenAddress(options.tunnelListen, 'proxy.tunnel_listen'),
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

function bind(server: NetServer, address: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
