/**
 * An ordered, case-preserving, multi-value list of HTTP header fields: the one header view
 * every transform sees. Names are matched case-insensitively; the casing a field was received
 * or set with is what goes on the wire (HTTP/1.x).
 */
export class HeaderList {
  #names: string[] = [];
  #values: string[] = [];
  /** The names lowercased once, when added: every lookup compares these. */
  #keys: string[] = [];

  /**
   * Builds a list from Node's `rawHeaders` layout: `[name, value, name, value, ...]`. Buffer
   * items (undici's raw response headers) are read as latin1, the bytes as received.
   */
  static fromRaw(raw: readonly (string | Uint8Array)[]): HeaderList {
    const list = new HeaderList();
    for (let i = 0; i + 1 < raw.length; i += 2) list.append(latin1(raw[i]!), latin1(raw[i + 1]!));
    return list;
  }

  /** Builds a list from `[name, value]` pairs or a plain record. */
  static from(init: Iterable<readonly [string, string]> | Record<string, string | readonly string[]>): HeaderList {
    const list = new HeaderList();
    if (Symbol.iterator in init) {
      for (const [n, v] of init as Iterable<readonly [string, string]>) list.append(n, v);
    } else {
      for (const [n, v] of Object.entries(init)) {
        if (typeof v === 'string') list.append(n, v);
        else for (const one of v) list.append(n, one);
      }
    }
    return list;
  }

  /** Number of fields (a multi-value header counts once per value). */
  get size(): number {
    return this.#names.length;
  }

  /** The first value of `name`, or undefined. */
  get(name: string): string | undefined {
    const i = this.#indexOf(name, 0);
    return i < 0 ? undefined : this.#values[i];
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const out: string[] = [];
    for (let i = this.#indexOf(name, 0); i >= 0; i = this.#indexOf(name, i + 1)) out.push(this.#values[i]!);
    return out;
  }

  has(name: string): boolean {
    return this.#indexOf(name, 0) >= 0;
  }

  /** Replaces every field named `name` (any casing) with one field, sent with this casing. */
  set(name: string, value: string): void {
    this.delete(name);
    this.append(name, value);
  }

  append(name: string, value: string): void {
    this.#names.push(name);
    this.#values.push(value);
    this.#keys.push(keyOf(name));
  }

  /** Removes every field named `name`; returns whether any was removed. */
  delete(name: string): boolean {
    let removed = false;
    const key = name.toLowerCase();
    for (let i = this.#indexOfKey(key, 0); i >= 0; i = this.#indexOfKey(key, i)) {
      this.deleteAt(i);
      removed = true;
    }
    return removed;
  }

  /** The field at `index` as `[name, value]`. */
  at(index: number): readonly [string, string] | undefined {
    if (index < 0 || index >= this.#names.length) return undefined;
    return [this.#names[index]!, this.#values[index]!];
  }

  /** The name of the field at `index`, lowercased (what lookups compare); undefined past the end. */
  keyAt(index: number): string | undefined {
    return this.#keys[index];
  }

  /** The value of the field at `index`; undefined past the end. */
  valueAt(index: number): string | undefined {
    return this.#values[index];
  }

  /**
   * Rewrites the field at `index`; `name` changes its name (a lookup by the old name no
   * longer finds it) or only the casing it is sent with.
   */
  setAt(index: number, value: string, name?: string): void {
    if (index < 0 || index >= this.#names.length) throw new RangeError(`no header field at index ${index}`);
    this.#values[index] = value;
    if (name !== undefined) {
      this.#names[index] = name;
      this.#keys[index] = keyOf(name);
    }
  }

  /** Removes the field at `index`. */
  deleteAt(index: number): void {
    this.#names.splice(index, 1);
    this.#values.splice(index, 1);
    this.#keys.splice(index, 1);
  }

  /** The distinct field names, first casing seen, in order. */
  names(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (let i = 0; i < this.#names.length; i++) {
      const k = this.#keys[i]!;
      if (!seen.has(k)) {
        seen.add(k);
        out.push(this.#names[i]!);
      }
    }
    return out;
  }

  *entries(): IterableIterator<[string, string]> {
    for (let i = 0; i < this.#names.length; i++) yield [this.#names[i]!, this.#values[i]!];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** Node/undici raw layout: `[name, value, name, value, ...]`. */
  toRaw(): string[] {
    const out = new Array<string>(this.#names.length * 2);
    for (let i = 0; i < this.#names.length; i++) {
      out[2 * i] = this.#names[i]!;
      out[2 * i + 1] = this.#values[i]!;
    }
    return out;
  }

  clone(): HeaderList {
    const copy = new HeaderList();
    copy.#names = [...this.#names];
    copy.#values = [...this.#values];
    copy.#keys = [...this.#keys];
    return copy;
  }

  #indexOf(name: string, from: number): number {
    return this.#indexOfKey(name.toLowerCase(), from);
  }

  #indexOfKey(key: string, from: number): number {
    return this.#keys.indexOf(key, from);
  }
}

/**
 * Lowercased names by the casing they arrive in: a proxy sees the same few dozen spellings
 * (`Content-Type`, `user-agent`) on every request, so each is lowercased once. Bounded: the
 * cache is emptied when full, so a client sending ever-new names cannot grow it.
 */
const lowercased = new Map<string, string>();
const LOWERCASED_CACHE_SIZE = 512;

function keyOf(name: string): string {
  let key = lowercased.get(name);
  if (key === undefined) {
    key = name.toLowerCase();
    if (lowercased.size >= LOWERCASED_CACHE_SIZE) lowercased.clear();
    lowercased.set(name, key);
  }
  return key;
}

function latin1(item: string | Uint8Array): string {
  if (typeof item === 'string') return item;
  return (Buffer.isBuffer(item) ? item : Buffer.from(item.buffer, item.byteOffset, item.byteLength)).toString('latin1');
}
