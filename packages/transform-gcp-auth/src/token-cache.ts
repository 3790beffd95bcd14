import type { Clock } from '@proxy/core';

/** Most time before expiry at which a cached token is replaced (google-auth-library's own margin). */
export const EXPIRY_SKEW_MS = 5 * 60_000;

/** A minted token and when it expires (ms, by the transform's clock; undefined: never said). */
export interface MintedToken {
  readonly token: string;
  readonly expiresAt: number | undefined;
  readonly mintedAt: number;
}

/** How a token was served: from the cache, or minted for this request (or one it joined). */
export type TokenOutcome = 'hit' | 'miss';

/**
 * One cached token per credential generation.
 *
 * - A token is reused until it is within {@link EXPIRY_SKEW_MS} (at most half its lifetime) of
 *   expiry, by the injected clock: a request never carries a token about to expire.
 * - Concurrent requests that find no usable token share one mint.
 * - `generation` names the credential the token is minted from (a fingerprint of the keyfile):
 *   when it changes, the cached token and a mint in flight for the old one are dropped.
 */
export class TokenCache {
  readonly #clock: Clock;
  #generation: string | undefined;
  #token: MintedToken | undefined;
  #inflight: Promise<MintedToken> | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** A usable token for `generation`, minting with `mint` when there is none. Rejects as `mint` does. */
  async get(generation: string, mint: () => Promise<MintedToken>): Promise<{ token: string; outcome: TokenOutcome }> {
    if (generation !== this.#generation) {
      this.#generation = generation;
      this.#token = undefined;
      this.#inflight = undefined;
    }
    const cached = this.#token;
    if (cached !== undefined && this.#usable(cached)) return { token: cached.token, outcome: 'hit' };
    let inflight = this.#inflight;
    if (inflight === undefined) {
      const started = mint().then((minted) => {
        // A token minted from a credential replaced meanwhile serves the requests that waited for it, uncached.
        if (this.#generation === generation) this.#token = minted;
        return minted;
      });
      inflight = started.finally(() => {
        if (this.#inflight === inflight) this.#inflight = undefined;
      });
      this.#inflight = inflight;
    }
    const minted = await inflight;
    return { token: minted.token, outcome: 'miss' };
  }

  /** Forgets the cached token. */
  clear(): void {
    this.#token = undefined;
    this.#inflight = undefined;
  }

  #usable(token: MintedToken): boolean {
    if (token.expiresAt === undefined) return true;
    const skew = Math.min(EXPIRY_SKEW_MS, (token.expiresAt - token.mintedAt) / 2);
    return this.#clock.now() < token.expiresAt - skew;
  }
}
