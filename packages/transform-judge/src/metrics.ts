import type { Counter, Meter } from '@opentelemetry/api';

/** Instrument names. Counters are named without the `_total` suffix, which the Prometheus exporter appends. */
export const MetricNames = {
  /** Counter of judged requests: `instance`, `decision` (`ALLOW`, `DENY`, `FALLBACK_ALLOW`, `FALLBACK_DENY`), `source` (`model`, `cache`, `fallback`). */
  DECISIONS: 'judge_decisions',
  /** Counter of fallbacks: `instance`, `cause` (`error`, `timeout`, `malformed`, `breaker_open`, `no_slot`). */
  FALLBACKS: 'judge_fallbacks',
} as const;

/** Why a fallback applied. */
export type FallbackCause = 'error' | 'timeout' | 'malformed' | 'breaker_open' | 'no_slot';

/** The instruments of one judge instance. */
export class JudgeMetrics {
  readonly #decisions: Counter;
  readonly #fallbacks: Counter;
  readonly #instance: string;

  constructor(meter: Meter, instance: string) {
    this.#instance = instance;
    this.#decisions = meter.createCounter(MetricNames.DECISIONS, { description: 'Requests judged, by instance, decision and where the decision came from' });
    this.#fallbacks = meter.createCounter(MetricNames.FALLBACKS, { description: 'Judge fallbacks, by instance and cause' });
  }

  decided(decision: string, source: 'model' | 'cache' | 'fallback'): void {
    this.#decisions.add(1, { instance: this.#instance, decision, source });
  }

  fellBack(cause: FallbackCause): void {
    this.#fallbacks.add(1, { instance: this.#instance, cause });
  }
}
