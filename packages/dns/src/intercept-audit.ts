/**
 * The audit of intercepted names, rate-limited so a workload that resolves the same name in a
 * loop cannot flood the log: one event for the first query of a (name, type, client) and then at
 * most one per window per key, carrying how many queries it stands for.
 */

/** One audit event: an intercepted name, and how many queries it stands for. */
export interface DnsInterceptEvent {
  /** The queried name, lowercased, without a trailing dot. */
  readonly name: string;
  /** The query type (`A`, `AAAA`, `HTTPS`, ...). */
  readonly type: string;
  /** The client's IP address. */
  readonly client: string;
  /** The address answered (`proxy_ip` / `proxy_ipv6`), or null for an empty NOERROR answer. */
  readonly answer: string | null;
  /** Queries since the previous event for this key (1 for the first). */
  readonly count: number;
}

interface Entry {
  readonly name: string;
  readonly type: string;
  readonly client: string;
  answer: string | null;
  lastReportAt: number;
  /** Queries since the last report. */
  pending: number;
}

/** Options for {@link InterceptAudit}. */
export interface InterceptAuditOptions {
  /** Receives every event. */
  readonly report: (event: DnsInterceptEvent) => void;
  /** The shortest time between two events of one key. */
  readonly windowMs: number;
  /** The most keys tracked; beyond it the oldest is reported (if pending) and forgotten. */
  readonly maxKeys: number;
  readonly now: () => number;
}

/**
 * Counts intercepted queries per (name, type, client) and reports them: at once for a key seen
 * for the first time (or again after a quiet window), otherwise batched. `sweep()` (run it every
 * window) reports the counts of keys whose window has passed and forgets them; `flush()`
 * reports every pending count.
 */
export class InterceptAudit {
  readonly #options: InterceptAuditOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(options: InterceptAuditOptions) {
    this.#options = options;
  }

  /** Counts one intercepted query. */
  record(name: string, type: string, client: string, answer: string | null): void {
    const key = `${name}\u0000${type}\u0000${client}`;
    const now = this.#options.now();
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      this.#evictOldestWhenFull();
      this.#entries.set(key, { name, type, client, answer, lastReportAt: now, pending: 0 });
      this.#options.report({ name, type, client, answer, count: 1 });
      return;
    }
    entry.answer = answer;
    entry.pending++;
    if (now - entry.lastReportAt >= this.#options.windowMs) this.#reportPending(entry, now);
  }

  /** Reports and forgets every key whose window has passed. */
  sweep(): void {
    const now = this.#options.now();
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastReportAt < this.#options.windowMs) continue;
      this.#reportPending(entry, now);
      this.#entries.delete(key);
    }
  }

  /** Reports every pending count and forgets every key (at shutdown). */
  flush(): void {
    const now = this.#options.now();
    for (const entry of this.#entries.values()) this.#reportPending(entry, now);
    this.#entries.clear();
  }

  #evictOldestWhenFull(): void {
    if (this.#entries.size < this.#options.maxKeys) return;
    const [key, entry] = this.#entries.entries().next().value as [string, Entry];
    this.#reportPending(entry, this.#options.now());
    this.#entries.delete(key);
  }

  #reportPending(entry: Entry, now: number): void {
    if (entry.pending === 0) return;
    const { name, type, client, answer, pending } = entry;
    entry.pending = 0;
    entry.lastReportAt = now;
    this.#options.report({ name, type, client, answer, count: pending });
  }
}
