/**
 * The DNS server: UDP and TCP on one port, every query answered by {@link QueryAnswerer},
 * oversized UDP answers truncated, malformed packets dropped and counted.
 */
import { isIPv4, isIPv6, type Socket } from 'node:net';
import { compileHostGlob, ErrorCodes, ProxyError, type Logger } from '@proxy/core';
import { QueryAnswerer } from './answer.js';
import { InterceptAudit, type DnsInterceptEvent } from './intercept-audit.js';
import { unmapIpv4 } from './ip.js';
import { bindUdpAndTcp, listenError, parseListenAddress, type BoundSockets, type ListenAddress } from './listen.js';
import { rcodeName, rcodeOf, readQuery, truncateResponse, udpLimitOf } from './message.js';
import { StaticRecords, type StaticRecord } from './static-records.js';
import { FrameReader, frame } from './tcp-frames.js';
import { isOwnAddress, parseResolverAddress, systemResolvers, UpstreamResolver, type ResolverAddress } from './upstream.js';

/** Options of {@link createDnsServer}; the `dns.*` config section maps onto them (see the README). */
export interface DnsServerOptions {
  /** `dns.listen`: `":53"` (every interface), `"127.0.0.1:5353"`, `"[::1]:0"`. */
  readonly listen: string;
  /** `dns.proxy_ip`: the IPv4 address intercepted A queries get. */
  readonly proxyIp: string;
  /** `dns.proxy_ipv6`: the IPv6 address intercepted AAAA queries get; without it they get no answer. */
  readonly proxyIpv6?: string;
  /** `dns.upstream_resolver`: `"ip:port"` or `"ip"` (port 53); default the system's resolvers (`dns.getServers()`). */
  readonly upstreamResolver?: string;
  /** `dns.passthrough`: host globs (core's `compileHostGlob`) forwarded to the upstream resolver. */
  readonly passthrough: readonly string[];
  /** `dns.records`: static records, answered before passthrough and interception. */
  readonly records: readonly StaticRecord[];
  /** TTL of synthesized answers (intercepted and static), in seconds; default 60. */
  readonly ttlSeconds?: number;
  /** Every query is logged at debug level; intercepted names at info when there is no `onIntercept`. */
  readonly logger: Logger;
  /**
   * Receives the audit of intercepted names: the first query of a (name, type, client), then at
   * most one event per `auditWindowMs` for that key, with the count of queries since the last.
   * Without it, the events are logged at info level.
   */
  readonly onIntercept?: (event: DnsInterceptEvent) => void;
  /** The audit window; default 60 000 ms. */
  readonly auditWindowMs?: number;
  /** How long an upstream resolver has to answer (UDP and the TCP retry together); default 2000 ms. */
  readonly upstreamTimeoutMs?: number;
  /** A TCP connection without a query in flight is closed after this long without data; default 10 000 ms. */
  readonly tcpIdleTimeoutMs?: number;
  /** Queries answered per TCP connection before it is closed; default 100. */
  readonly tcpMaxQueriesPerConnection?: number;
}

/** Counters since the server started. */
export interface DnsServerStats {
  /** Queries decoded and answered. */
  readonly queries: number;
  /** Packets dropped because they are not DNS queries (undecodable, or a response). */
  readonly malformed: number;
  /** UDP answers too large for the client, sent truncated (TC) so it retries over TCP. */
  readonly truncated: number;
}

/** A DNS server; nothing is bound until `listen()`. */
export interface DnsServer {
  /**
   * Binds UDP and TCP on the same port. Rejects with a `ProxyError` naming the fix when the
   * port needs privilege (EACCES) or is taken (EADDRINUSE); see {@link listenError}.
   */
  listen(): Promise<{ address: string; port: number }>;
  /** Live counters. */
  readonly stats: DnsServerStats;
  /** Stops answering: closes both sockets and every TCP connection, aborts upstream exchanges, flushes the audit. */
  close(): Promise<void>;
}

/**
 * Builds a DNS server from `options`. Validates everything now and throws a `ProxyError`
 * (`PROXY_ERR_CONFIG_INVALID`) for a bad listen address, proxy address, resolver, glob, record
 * or limit.
 */
export function createDnsServer(options: DnsServerOptions): DnsServer {
  return new BuiltInDnsServer(options);
}

const DEFAULT_TTL_SECONDS = 60;
const DEFAULT_AUDIT_WINDOW_MS = 60_000;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 2_000;
const DEFAULT_TCP_IDLE_TIMEOUT_MS = 10_000;
const DEFAULT_TCP_MAX_QUERIES = 100;
/** Distinct (name, type, client) keys the audit tracks at once. */
const AUDIT_MAX_KEYS = 10_000;

type Protocol = 'udp' | 'tcp';

class BuiltInDnsServer implements DnsServer {
  readonly #options: DnsServerOptions;
  readonly #logger: Logger;
  readonly #address: ListenAddress;
  readonly #records: StaticRecords;
  readonly #passthrough: readonly ((host: string) => boolean)[];
  readonly #configuredUpstream: ResolverAddress | undefined;
  readonly #ttlSeconds: number;
  readonly #auditWindowMs: number;
  readonly #upstreamTimeoutMs: number;
  readonly #tcpIdleTimeoutMs: number;
  readonly #tcpMaxQueries: number;
  readonly #counters = { queries: 0, malformed: 0, truncated: 0 };
  readonly #audit: InterceptAudit;
  readonly #shutdown = new AbortController();
  readonly #connections = new Set<Socket>();
  #state: 'new' | 'binding' | 'listening' | 'closed' = 'new';
  #sockets: BoundSockets | undefined;
  #answerer: QueryAnswerer | undefined;
  #auditTimer: NodeJS.Timeout | undefined;

  constructor(options: DnsServerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#address = parseListenAddress(options.listen);
    if (!isIPv4(options.proxyIp)) throw invalid(`dns.proxy_ip: "${options.proxyIp}" is not an IPv4 address`);
    if (options.proxyIpv6 !== undefined && !isIPv6(options.proxyIpv6)) {
      throw invalid(`dns.proxy_ipv6: "${options.proxyIpv6}" is not an IPv6 address`);
    }
    this.#records = new StaticRecords(options.records);
    this.#passthrough = options.passthrough.map((glob, i) => {
      try {
        return compileHostGlob(glob);
      } catch (error) {
        throw invalid(`dns.passthrough[${i}]: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    this.#configuredUpstream = options.upstreamResolver === undefined ? undefined : parseResolverAddress(options.upstreamResolver);
    this.#ttlSeconds = positiveInteger(options.ttlSeconds, DEFAULT_TTL_SECONDS, 'ttlSeconds');
    this.#auditWindowMs = positiveInteger(options.auditWindowMs, DEFAULT_AUDIT_WINDOW_MS, 'auditWindowMs');
    this.#upstreamTimeoutMs = positiveInteger(options.upstreamTimeoutMs, DEFAULT_UPSTREAM_TIMEOUT_MS, 'upstreamTimeoutMs');
    this.#tcpIdleTimeoutMs = positiveInteger(options.tcpIdleTimeoutMs, DEFAULT_TCP_IDLE_TIMEOUT_MS, 'tcpIdleTimeoutMs');
    this.#tcpMaxQueries = positiveInteger(options.tcpMaxQueriesPerConnection, DEFAULT_TCP_MAX_QUERIES, 'tcpMaxQueriesPerConnection');
    this.#audit = new InterceptAudit({
      report: (event) => this.#reportIntercept(event),
      windowMs: this.#auditWindowMs,
      maxKeys: AUDIT_MAX_KEYS,
      now: Date.now,
    });
  }

  get stats(): DnsServerStats {
    return this.#counters;
  }

  async listen(): Promise<{ address: string; port: number }> {
    if (this.#state !== 'new') throw new Error(`the DNS server cannot listen: it is ${this.#state}`);
    this.#state = 'binding';
    let sockets: BoundSockets;
    try {
      sockets = await bindUdpAndTcp(this.#address, (socket) => this.#serveTcp(socket));
    } catch (error) {
      this.#state = 'new';
      throw listenError(error, this.#options.listen);
    }
    if (this.#shutdown.signal.aborted) {
      await closeSockets(sockets);
      throw new Error('the DNS server was closed while binding');
    }
    this.#sockets = sockets;
    this.#answerer = new QueryAnswerer({
      records: this.#records,
      isPassthrough: (name) => this.#passthrough.some((matches) => matches(name)),
      upstream: new UpstreamResolver(this.#upstreamServers(sockets), this.#upstreamTimeoutMs),
      proxyIp: this.#options.proxyIp,
      proxyIpv6: this.#options.proxyIpv6,
      ttlSeconds: this.#ttlSeconds,
      onIntercept: (name, type, client, answer) => this.#audit.record(name, type, client, answer),
    });
    sockets.udp.on('message', (message, peer) => this.#serveUdp(message, peer.address, peer.port));
    sockets.udp.on('error', (error) => this.#logger.warn({ err: error.message }, 'dns: UDP socket error'));
    this.#auditTimer = setInterval(() => this.#audit.sweep(), this.#auditWindowMs);
    this.#auditTimer.unref();
    this.#state = 'listening';
    this.#logger.info({ address: sockets.address, port: sockets.port }, 'dns: listening (udp and tcp)');
    return { address: sockets.address, port: sockets.port };
  }

  async close(): Promise<void> {
    const sockets = this.#sockets;
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#sockets = undefined;
    this.#shutdown.abort(new Error('the DNS server is closing'));
    clearInterval(this.#auditTimer);
    this.#audit.flush();
    if (sockets === undefined) return;
    for (const socket of this.#connections) socket.destroy();
    await closeSockets(sockets);
  }

  /** The configured resolver or the system's, without any that is this server (a forwarding loop). */
  #upstreamServers(bound: BoundSockets): ResolverAddress[] {
    const candidates = this.#configuredUpstream === undefined ? systemResolvers() : [this.#configuredUpstream];
    const servers = candidates.filter((server) => !isOwnAddress(server, bound));
    if (servers.length < candidates.length) {
      this.#logger.warn(
        { skipped: candidates.filter((server) => !servers.includes(server)).map((s) => `${s.host}:${s.port}`) },
        'dns: an upstream resolver is this server itself (forwarding would loop); skipped. Set dns.upstream_resolver.',
      );
    }
    if (servers.length === 0 && this.#passthrough.length > 0) {
      this.#logger.warn({}, 'dns: no upstream resolver; passthrough names are answered SERVFAIL');
    }
    return servers;
  }

  #serveUdp(message: Buffer, address: string, port: number): void {
    void this.#handle(message, 'udp', unmapIpv4(address)).then((response) => {
      const sockets = this.#sockets;
      if (response === undefined || sockets === undefined) return;
      sockets.udp.send(response, port, address, (error) => {
        if (error) this.#logger.debug({ err: error.message, client: address }, 'dns: UDP send failed');
      });
    });
  }

  /**
   * Serves one TCP connection: length-prefixed queries, several per connection (answered as
   * they complete, RFC 7766), closed after `tcpMaxQueriesPerConnection` queries, when the client
   * ends its side, or after `tcpIdleTimeoutMs` without data (once answers in flight are sent).
   */
  #serveTcp(socket: Socket): void {
    if (this.#state === 'closed') {
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', (error) => this.#logger.debug({ err: error.message }, 'dns: TCP connection error'));
    const client = unmapIpv4(socket.remoteAddress ?? '');
    const reader = new FrameReader();
    let received = 0;
    let inFlight = 0;
    let closing = false;
    const closeWhenAnswered = (): void => {
      closing = true;
      if (inFlight === 0) socket.end();
    };
    socket.setTimeout(this.#tcpIdleTimeoutMs, () => {
      if (inFlight === 0) socket.destroy();
      else closing = true;
    });
    socket.on('end', closeWhenAnswered);
    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      for (const message of reader.push(chunk)) {
        received++;
        inFlight++;
        void this.#handle(message, 'tcp', client).then((response) => {
          inFlight--;
          if (response !== undefined && socket.writable) socket.write(frame(response));
          if (closing && inFlight === 0) socket.end();
        });
        if (received >= this.#tcpMaxQueries) {
          socket.pause();
          closeWhenAnswered();
          return;
        }
      }
    });
  }

  /** Decodes and answers one message; undefined when it is dropped. Never rejects. */
  async #handle(message: Buffer, protocol: Protocol, client: string): Promise<Buffer | undefined> {
    const answerer = this.#answerer;
    if (answerer === undefined) return undefined; // not listening yet
    const query = readQuery(message);
    if (query === undefined) {
      this.#counters.malformed++;
      return undefined;
    }
    const question = query.questions[0];
    try {
      const answered = await answerer.answer(query, client, this.#shutdown.signal);
      this.#counters.queries++;
      let response = answered.response;
      const truncated = protocol === 'udp' && response.length > udpLimitOf(query);
      if (truncated) {
        response = truncateResponse(query, response);
        this.#counters.truncated++;
      }
      this.#logger.debug(
        {
          name: question?.name,
          type: question?.type,
          client,
          protocol,
          source: answered.source,
          rcode: rcodeName(rcodeOf(response)),
          ...(truncated ? { truncated } : {}),
          ...(answered.failure === undefined ? {} : { failure: answered.failure }),
        },
        'dns query',
      );
      return response;
    } catch (error) {
      // A query dns-packet decodes but cannot encode back (its question cannot be echoed).
      this.#counters.malformed++;
      this.#logger.debug({ client, protocol, err: error instanceof Error ? error.message : String(error) }, 'dns: query dropped');
      return undefined;
    }
  }

  #reportIntercept(event: DnsInterceptEvent): void {
    const onIntercept = this.#options.onIntercept;
    if (onIntercept === undefined) {
      this.#logger.info({ ...event }, 'dns: intercepted');
      return;
    }
    try {
      onIntercept(event);
    } catch (error) {
      this.#logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'dns: onIntercept threw');
    }
  }
}

async function closeSockets(sockets: BoundSockets): Promise<void> {
  await Promise.all([
    new Promise<void>((resolve) => sockets.tcp.close(() => resolve())),
    new Promise<void>((resolve) => sockets.udp.close(() => resolve())),
  ]);
}

function positiveInteger(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw invalid(`${field}: ${value} is not a positive integer`);
  return value;
}

function invalid(message: string): ProxyError {
  return new ProxyError(ErrorCodes.CONFIG_INVALID, message, { reason: 'config_invalid' });
}
