/** A map bounded to `capacity` entries that evicts the least recently used one. */
export class LruCache<K, V> {
  /** Insertion order of a Map is the recency order: a read re-inserts, the first key is the eldest. */
  readonly #entries = new Map<K, V>();
  readonly #capacity: number;

  /** `capacity` 0 keeps nothing. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value under `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  /** Stores `value` as the most recently used entry, evicting the least recently used beyond capacity. */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    for (const eldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#capacity) break;
      this.#entries.delete(eldest);
    }
  }
}
