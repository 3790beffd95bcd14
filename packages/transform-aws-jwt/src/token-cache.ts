import type { Clock } from '@proxy/core';
import { normalizeAudiences } from './audience.js';
import type { MintedToken } from './token-mint-error.js';

/**
 * How a token was served: `hit` from the cache; `refresh` from the cache while a background
 * refresh was started; `miss` after waiting for STS (no valid token was cached).
 */
export type CacheOutcome = 'hit' | 'miss' | 'refresh';

/** What {@link TokenCache} needs. */
export interface TokenCacheOptions {
  /** Mints a token for a normalized audience set; `trigger` says whether a request waits for it. */
  mint(audiences: readonly string[], trigger: 'miss' | 'refresh'): Promise<MintedToken>;
  readonly clock: Clock;
  /** How long before expiry a token is refreshed. */
  readonly refreshSkewMs: number;
  /** Largest number of audience sets kept; the least recently used is evicted beyond it. */
  readonly maxEntries: number;
  /** Called once per evicted audience set. */
  onEvict?(): void;
  /** Called with +1 / -1 as audience sets enter and leave the cache. */
  onSizeChange?(delta: number): void;
}

/** The cache entry of one audience set. */
interface Entry {
  readonly key: string;
  readonly audiences: readonly string[];
  token: MintedToken | undefined;
  /** The STS call in flight for this set, shared by every request that waits for it. */
  inflight: Promise<MintedToken> | undefined;
  /** No background refresh starts before this time (ms). */
  nextRefreshAt: number;
}

/** Longest pause between two refresh attempts of one audience set after a failed one. */
const MAX_REFRESH_RETRY_MS = 10_000;

/**
 * Web-identity tokens per normalized audience set (sorted, de-duplicated), bounded by a least
 * recently used eviction.
 *
 * - A miss waits for STS; concurrent misses of one set share one call.
 * - A token is refreshed `refreshSkewMs` before it expires, in the background: the request
 *   that notices the window is served the cached token at once and starts the refresh.
 * - A failed refresh keeps the cached token in use until it expires; the next attempt waits
 *   `min(10s, refreshSkewMs / 5)`, so a failing STS is not called on every request.
 * - A set whose call failed without a valid token to fall back on is dropped.
 */
export class TokenCache {
  readonly #options: TokenCacheOptions;
  readonly #retryMs: number;
  /** Map order is recency order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: TokenCacheOptions) {
    this.#options = options;
    this.#retryMs = Math.min(MAX_REFRESH_RETRY_MS, options.refreshSkewMs / 5);
  }

  /** Number of audience sets cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** A token for the audience set (in any order, repeats allowed). Rejects when none can be minted. */
  async get(audiences: readonly string[]): Promise<{ token: string; outcome: CacheOutcome }> {
    const entry = this.#touch(normalizeAudiences(audiences));
    const now = this.#options.clock.now();
    const cached = entry.token;
    if (cached !== undefined && now < cached.expiresAt) {
      if (now < entry.nextRefreshAt || entry.inflight !== undefined) return { token: cached.token, outcome: 'hit' };
      // The promise is kept on the entry; its failure is reported by `mint` and leaves the cached token in place.
      this.#fetch(entry, 'refresh').catch(() => undefined);
      return { token: cached.token, outcome: 'refresh' };
    }
    const minted = await (entry.inflight ?? this.#fetch(entry, 'miss'));
    return { token: minted.token, outcome: 'miss' };
  }

  /** Forgets every token. */
  clear(): void {
    const size = this.#entries.size;
    this.#entries.clear();
    if (size > 0) this.#options.onSizeChange?.(-size);
  }

  /** The entry of a normalized set, created when absent, marked most recently used. */
  #touch(audiences: readonly string[]): Entry {
    const key = audiences.join('\n');
    let entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      return entry;
    }
    entry = { key, audiences, token: undefined, inflight: undefined, nextRefreshAt: 0 };
    this.#entries.set(key, entry);
    this.#options.onSizeChange?.(1);
    while (this.#entries.size > this.#options.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
      this.#options.onSizeChange?.(-1);
      this.#options.onEvict?.();
    }
    return entry;
  }

  #fetch(entry: Entry, trigger: 'miss' | 'refresh'): Promise<MintedToken> {
    const { clock } = this.#options;
    const inflight = this.#options
      .mint(entry.audiences, trigger)
      .then(
        (minted) => {
          entry.token = minted;
          entry.nextRefreshAt = Math.max(minted.expiresAt - this.#options.refreshSkewMs, clock.now() + this.#retryMs);
          return minted;
        },
        (err: unknown) => {
          const now = clock.now();
          entry.nextRefreshAt = now + this.#retryMs;
          if ((entry.token === undefined || entry.token.expiresAt <= now) && this.#entries.get(entry.key) === entry) {
            this.#entries.delete(entry.key);
            this.#options.onSizeChange?.(-1);
          }
          throw err;
        },
      )
      .finally(() => {
        if (entry.inflight === inflight) entry.inflight = undefined;
      });
    entry.inflight = inflight;
    return inflight;
  }
}
