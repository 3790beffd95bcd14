import type { IncomingMessage, ServerOptions } from 'node:http';
import { BudgetLease, BytePool, connectionBudgetExceeded, DEFAULT_MAX_HEAD_BYTES } from '@proxy/core';
import { isWebSocketUpgrade } from './hop-by-hop.js';

/**
 * What one client may take from the proxy: time to send a request, connections, and memory
 * for the bodies transforms buffer. Every listener applies the same limits.
 */
export interface ClientLimits {
  /** Time from a connection's first byte (or the end of the previous request) to the end of the request headers; 408 beyond. */
  readonly headerTimeoutMs: number;
  /** Time to receive a whole request, headers and body; 408 beyond. 0 = no limit. */
  readonly requestTimeoutMs: number;
  /** Longest silence while a request body is arriving; 408 (or the connection closed) beyond. */
  readonly bodyIdleTimeoutMs: number;
  /** Connections one listener holds at once; more are closed on arrival. 0 = no limit. */
  readonly maxConnections: number;
  /** The most bytes a forwarded request line and headers may take (413 beyond). */
  readonly maxHeadBytes: number;
  /** Bytes all buffered bodies of the process may take together (503 beyond). 0 = no limit. */
  readonly maxBufferedBodyBytes: number;
  /** Bytes the buffered bodies of one client connection (pipelined requests) may take together (413 beyond). 0 = no limit. */
  readonly maxConnectionBufferedBytes: number;
}

/** The defaults, also documented in the README's "Limits" table. */
export const DEFAULT_CLIENT_LIMITS: ClientLimits = Object.freeze({
  headerTimeoutMs: 30_000,
  requestTimeoutMs: 300_000,
  bodyIdleTimeoutMs: 60_000,
  maxConnections: 1024,
  maxHeadBytes: DEFAULT_MAX_HEAD_BYTES,
  maxBufferedBodyBytes: 128 * 1024 * 1024,
  maxConnectionBufferedBytes: 2 * 1024 * 1024,
});

/**
 * `node:http` settings of every server that feeds the app. Node turns its header timeout off
 * when the request timeout is 0, so both are always set explicitly; connections are checked
 * against them often enough that a timeout is enforced within about a second.
 */
export function proxyServerOptions(limits: ClientLimits): ServerOptions {
  const headersTimeout = limits.requestTimeoutMs > 0 ? Math.min(limits.headerTimeoutMs, limits.requestTimeoutMs) : limits.headerTimeoutMs;
  return {
    // The engine answers a missing Host itself (with an audit record).
    requireHostHeader: false,
    headersTimeout,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 2))),
    // Only WebSocket upgrades switch protocols; any other Upgrade header is ignored (hop-by-hop).
    shouldUpgradeCallback: (req: IncomingMessage) => isWebSocketUpgrade(req.headers),
  };
}

/** Where a client connection carries the pool its requests' bodies share. */
const CONNECTION_POOL = Symbol('proxy.connectionPool');

type PooledSocket = object & { [CONNECTION_POOL]?: BytePool };

/**
 * The memory budgets of buffered bodies: one pool for the process, one per client connection
 * (pipelined requests on one connection are read while earlier ones wait for their upstream).
 */
export class BodyBudgets {
  readonly #limits: ClientLimits;
  readonly #process: BytePool;

  constructor(limits: ClientLimits, process: BytePool) {
    this.#limits = limits;
    this.#process = process;
  }

  /** The process-wide pool. */
  get process(): BytePool {
    return this.#process;
  }

  /** A lease for one request's body: its connection's pool, then the process's. */
  forRequest(connection: object): BudgetLease {
    const socket = connection as PooledSocket;
    socket[CONNECTION_POOL] ??= new BytePool(this.#limits.maxConnectionBufferedBytes, connectionBudgetExceeded);
    return new BudgetLease([socket[CONNECTION_POOL], this.#process]);
  }

  /** A lease for one response's body: the process's pool only (the client did not choose its size). */
  forResponse(): BudgetLease {
    return new BudgetLease([this.#process]);
  }
}
