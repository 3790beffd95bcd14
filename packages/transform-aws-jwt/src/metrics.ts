import type { Counter, Meter, UpDownCounter } from '@opentelemetry/api';
import type { CacheOutcome } from './token-cache.js';

/**
 * Instrument names, as aws-outbound-jwt-proxy exports them. Counters are named without the
 * `_total` suffix, which the Prometheus exporter appends.
 */
export const MetricNames = {
  /** Counter of STS `GetWebIdentityToken` calls: `audience`, `result` (`ok`|`error`), `error_class` on errors. */
  TOKEN_FETCH: 'token_fetch_count',
  /** Counter of requests served a cached token: `audience`. */
  TOKEN_CACHE_HIT: 'token_cache_hit_count',
  /** Counter of requests that waited for STS because no valid token was cached: `audience`. */
  TOKEN_CACHE_MISS: 'token_cache_miss_count',
  /** Gauge (up/down counter) of audience sets with a cache entry. */
  TOKEN_CACHED_AUDIENCES: 'token_cached_audiences',
  /** Counter of audience sets evicted by `max_cached_audiences`. */
  TOKEN_CACHE_EVICTION: 'token_cache_eviction_count',
} as const;

/** The `aws_jwt` instruments of one transform instance. */
export class TokenMetrics {
  readonly #fetches: Counter;
  readonly #hits: Counter;
  readonly #misses: Counter;
  readonly #evictions: Counter;
  readonly #cached: UpDownCounter;

  constructor(meter: Meter) {
    this.#fetches = meter.createCounter(MetricNames.TOKEN_FETCH, { description: 'STS GetWebIdentityToken calls, by audience and result' });
    this.#hits = meter.createCounter(MetricNames.TOKEN_CACHE_HIT, { description: 'Requests served a cached web-identity token' });
    this.#misses = meter.createCounter(MetricNames.TOKEN_CACHE_MISS, { description: 'Requests that waited for STS to mint a web-identity token' });
    this.#evictions = meter.createCounter(MetricNames.TOKEN_CACHE_EVICTION, {
      description: 'Audience sets evicted from the token cache (max_cached_audiences)',
    });
    // An up/down counter rather than an observable gauge: two generations of the transform
    // (during a reload) then add up instead of reporting over each other.
    this.#cached = meter.createUpDownCounter(MetricNames.TOKEN_CACHED_AUDIENCES, { description: 'Audience sets in the token cache' });
  }

  /** One STS call ended; `errorClass` is set when it failed. */
  fetched(audience: string, errorClass?: string): void {
    this.#fetches.add(1, errorClass === undefined ? { audience, result: 'ok' } : { audience, result: 'error', error_class: errorClass });
  }

  /** One request for `audience` (the set joined with `,`) was served (`hit`, `refresh`) or waited (`miss`). */
  served(audience: string, outcome: CacheOutcome): void {
    (outcome === 'miss' ? this.#misses : this.#hits).add(1, { audience });
  }

  evicted(): void {
    this.#evictions.add(1);
  }

  cachedAudiences(delta: number): void {
    this.#cached.add(delta);
  }
}
