import type { Duplex } from 'node:stream';

/**
 * Long-lived connections the engine ends at shutdown (spliced WebSockets, TCP tunnels,
 * connections still in their handshake). Each leaves the set when it closes; `onEmpty` is
 * called when the last one did, so shutdown can stop waiting early.
 */
export class ConnectionSet {
  readonly #members = new Set<Duplex>();
  readonly #onEmpty: () => void;

  constructor(onEmpty: () => void = () => undefined) {
    this.#onEmpty = onEmpty;
  }

  /** Number of open connections in the set. */
  get size(): number {
    return this.#members.size;
  }

  /** Adds `connection` until it closes. */
  add(connection: Duplex): void {
    if (connection.destroyed || this.#members.has(connection)) return;
    this.#members.add(connection);
    connection.once('close', () => this.#remove(connection));
  }

  /** Destroys every connection in the set. */
  destroyAll(): void {
    for (const connection of [...this.#members]) connection.destroy();
  }

  #remove(connection: Duplex): void {
    if (this.#members.delete(connection) && this.#members.size === 0) this.#onEmpty();
  }
}
