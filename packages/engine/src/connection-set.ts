import type { Duplex } from 'node:stream';

/** One connection's place in a {@link ConnectionSet}: a link of a doubly linked list. */
interface Member {
  connection: Duplex | undefined;
  previous: Member | undefined;
  next: Member | undefined;
}

/**
 * Long-lived connections the engine ends at shutdown (spliced WebSockets, TCP tunnels,
 * connections still in their handshake). Each leaves the set when it closes; `onEmpty` is
 * called when the last one did, so shutdown can stop waiting early.
 *
 * The members form a linked list whose links are cleared when a connection leaves, rather
 * than a `Set`: a long-lived `Set` with an entry added and deleted per connection is rehashed
 * over and over, and V8 keeps each replaced table linked to its successor with the entries it
 * held. Once such a table has been moved to the old generation, it keeps closed connections
 * (their sockets, TLS state and buffers) and every later table alive until the next full
 * collection (see `#inFlight` in engine.ts).
 */
export class ConnectionSet {
  #first: Member | undefined;
  #size = 0;
  readonly #onEmpty: () => void;
  /** Marks a connection as in this set (a connection may be in two sets: its listener's and the spliced ones). */
  readonly #mark = Symbol('proxy.connectionSet');

  constructor(onEmpty: () => void = () => undefined) {
    this.#onEmpty = onEmpty;
  }

  /** Number of open connections in the set. */
  get size(): number {
    return this.#size;
  }

  /** Adds `connection` until it closes (once: a connection already in the set is not added again). */
  add(connection: Duplex): void {
    const marked = connection as Duplex & Record<symbol, true>;
    if (connection.destroyed || marked[this.#mark]) return;
    const member: Member = { connection, previous: undefined, next: this.#first };
    if (this.#first !== undefined) this.#first.previous = member;
    this.#first = member;
    this.#size++;
    marked[this.#mark] = true;
    connection.once('close', () => this.#remove(member));
  }

  /** Destroys every connection in the set. */
  destroyAll(): void {
    const connections: Duplex[] = [];
    for (let member = this.#first; member !== undefined; member = member.next) connections.push(member.connection!);
    for (const connection of connections) connection.destroy();
  }

  #remove(member: Member): void {
    if (member.connection === undefined) return;
    if (member.previous === undefined) this.#first = member.next;
    else member.previous.next = member.next;
    if (member.next !== undefined) member.next.previous = member.previous;
    // A removed link points nowhere, so that it keeps nothing alive once it is garbage.
    member.connection = undefined;
    member.previous = undefined;
    member.next = undefined;
    this.#size--;
    if (this.#size === 0) this.#onEmpty();
  }
}
