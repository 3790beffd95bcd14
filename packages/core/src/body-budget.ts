import { ErrorCodes, ProxyError } from './errors.js';

/**
 * Memory a message body may take while a transform buffers it (`body.read()`). The body asks
 * for every chunk before keeping it; a refusal ends the read with the error returned, so a
 * flood of half-sent bodies can never hold more than the budgets allow.
 */
export interface BodyBudget {
  /** Reserves `bytes`. Returns the error to fail the read with when they cannot be had (nothing is reserved then). */
  reserve(bytes: number): ProxyError | undefined;
}

/**
 * A pool of bytes shared by many bodies (all the bodies of the process, or of one client
 * connection). Reservations are given back by whoever made them, once the message is done.
 */
export class BytePool {
  readonly #capacity: number;
  readonly #refusal: () => ProxyError;
  #used = 0;

  /**
   * `capacity` in bytes (0 = unlimited); `refusal` builds the error a reservation that does not
   * fit fails with.
   */
  constructor(capacity: number, refusal: () => ProxyError) {
    this.#capacity = capacity;
    this.#refusal = refusal;
  }

  /** Bytes reserved now. */
  get used(): number {
    return this.#used;
  }

  /** The pool's size in bytes (0 = unlimited). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Takes `bytes` when they fit; otherwise takes nothing and returns the refusal. */
  reserve(bytes: number): ProxyError | undefined {
    if (this.#capacity > 0 && this.#used + bytes > this.#capacity) return this.#refusal();
    this.#used += bytes;
    return undefined;
  }

  /** Gives back `bytes` reserved earlier. */
  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/**
 * What one message exchange reserved from a chain of pools (its connection's, then the
 * process's): a reservation must fit in every pool, and `releaseAll()` gives everything back
 * when the exchange is over.
 */
export class BudgetLease implements BodyBudget {
  readonly #pools: readonly BytePool[];
  #held = 0;

  constructor(pools: readonly BytePool[]) {
    this.#pools = pools;
  }

  /** Bytes this lease holds. */
  get held(): number {
    return this.#held;
  }

  reserve(bytes: number): ProxyError | undefined {
    for (let i = 0; i < this.#pools.length; i++) {
      const refused = this.#pools[i]!.reserve(bytes);
      if (refused !== undefined) {
        for (let j = 0; j < i; j++) this.#pools[j]!.release(bytes);
        return refused;
      }
    }
    this.#held += bytes;
    return undefined;
  }

  /** Gives back everything this lease reserved. Idempotent. */
  releaseAll(): void {
    if (this.#held === 0) return;
    for (const pool of this.#pools) pool.release(this.#held);
    this.#held = 0;
  }
}

/** The refusal of the process-wide pool: the proxy is busy buffering other bodies (503). */
export function bufferBudgetExhausted(): ProxyError {
  return new ProxyError(ErrorCodes.BODY_BUDGET_EXHAUSTED, 'the proxy is buffering as many bodies as proxy.max_buffered_body_bytes allows', {
    status: 503,
    reason: 'body_buffer_budget_exhausted',
  });
}

/** The refusal of a connection's pool: one client connection asked for too much at once (413). */
export function connectionBudgetExceeded(): ProxyError {
  return new ProxyError(ErrorCodes.BODY_TOO_LARGE, 'the bodies on this connection exceed proxy.max_connection_buffered_bytes', {
    status: 413,
    reason: 'connection_buffer_exceeded',
  });
}
