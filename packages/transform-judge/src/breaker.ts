import type { Clock } from '@proxy/core';

/** What the breaker lets a caller do. */
export type BreakerAdmission = 'call' | 'probe' | 'open';

/**
 * A consecutive-failure circuit breaker. Closed, it admits every call; `threshold` failures in a
 * row open it for `cooldownMs`, during which nothing is admitted. After the cooldown exactly one
 * call is admitted as a probe (half-open): its success closes the breaker, its failure opens it
 * for a fresh cooldown. Any success resets the failure count.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #clock: Clock;
  #failures = 0;
  /** When the breaker opened; undefined while closed. */
  #openedAt: number | undefined;
  #probing = false;

  constructor(threshold: number, cooldownMs: number, clock: Clock) {
    this.#threshold = threshold;
    this.#cooldownMs = cooldownMs;
    this.#clock = clock;
  }

  /** `call` (closed), `probe` (the one call of the half-open state) or `open` (do not call). */
  admit(): BreakerAdmission {
    if (this.#openedAt === undefined) return 'call';
    if (this.#probing || this.#clock.now() - this.#openedAt < this.#cooldownMs) return 'open';
    this.#probing = true;
    return 'probe';
  }

  /** Records the outcome of an admitted call. */
  record(admission: Exclude<BreakerAdmission, 'open'>, success: boolean): void {
    if (admission === 'probe') this.#probing = false;
    if (success) {
      this.#failures = 0;
      this.#openedAt = undefined;
      return;
    }
    this.#failures++;
    if (admission === 'probe' || this.#failures >= this.#threshold) this.#openedAt = this.#clock.now();
  }

  /** Gives back a probe that never reached the provider (the request was cancelled first). */
  release(admission: Exclude<BreakerAdmission, 'open'>): void {
    if (admission === 'probe') this.#probing = false;
  }
}
