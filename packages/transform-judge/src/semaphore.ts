/**
 * A counting semaphore whose waiters give up: `acquire` waits for a slot at most `timeoutMs`
 * (or until `signal` aborts), so a request never queues forever behind a slow LLM. Waiters are
 * served in arrival order.
 */
export class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(slots: number) {
    this.#free = slots;
  }

  /**
   * Resolves to a release function once a slot is free, or to undefined when none freed up
   * within `timeoutMs` or `signal` aborted first.
   */
  acquire(timeoutMs: number, signal: AbortSignal): Promise<(() => void) | undefined> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(this.#releaser());
    }
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const give = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', quit);
        resolve(this.#releaser());
      };
      const quit = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', quit);
        const at = this.#waiters.indexOf(give);
        if (at >= 0) this.#waiters.splice(at, 1);
        resolve(undefined);
      };
      const timer = setTimeout(quit, timeoutMs);
      signal.addEventListener('abort', quit, { once: true });
      this.#waiters.push(give);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      // The slot passes straight to the next waiter; otherwise it is free again.
      if (next !== undefined) next();
      else this.#free++;
    };
  }
}
