/**
 * Counts acknowledgements (`/sse-ack` hits) and lets gated streams wait for one. An ack that
 * arrives before anyone waits is kept as a credit, so a fast client cannot lose an event.
 */
export class AckGate {
  #credits = 0;
  readonly #waiters: (() => void)[] = [];

  /** Resolves once an acknowledgement is available, consuming it. */
  wait(): Promise<void> {
    if (this.#credits > 0) {
      this.#credits--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Records one acknowledgement: wakes the oldest waiter, or keeps it as a credit. */
  ack(): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter();
    else this.#credits++;
  }

  /** Wakes every waiter (used when the server closes). */
  releaseAll(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
}
