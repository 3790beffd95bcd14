import { AuditBuilder, type TraceRecorder } from '@proxy/core';

/**
 * The audit annotation a transform writes when it obtains a credential for the upstream call
 * (a minted token): `ok` when it got one, another short word (`fetch_error`, ...) when it did
 * not and refused the request. The engine copies it to the `token.result` attribute of the
 * upstream-call histogram.
 */
export const TOKEN_RESULT_ANNOTATION = 'token_result';

/** A metric attribute value: a short lowercase word, so an annotation can never raise cardinality or leak text. */
const ATTRIBUTE_WORD = /^[a-z][a-z0-9_]{0,31}$/;

/** An exchange's audit record under construction, which also keeps its request traces readable. */
export class ExchangeAudit extends AuditBuilder {
  readonly #requestTraces: TraceRecorder[] = [];
  /** Set once the engine ended the request itself: what happens after (a transform's read failing) does not change the outcome. */
  #settled = false;

  /**
   * Records that the engine ended the request (`by` engine, `reason`), for good: later
   * rejections and failures caused by that ending are not recorded over it.
   */
  settle(reason: string): void {
    if (this.#settled) return;
    super.rejected('engine', reason);
    this.#settled = true;
  }

  override rejected(by: string, reason: string): void {
    if (!this.#settled) super.rejected(by, reason);
  }

  override failed(reason: string, by?: string): void {
    if (!this.#settled) super.failed(reason, by);
  }

  override stubbed(by: string, reason?: string): void {
    if (!this.#settled) super.stubbed(by, reason);
  }

  override requestTrace(name: string, now: number): TraceRecorder {
    const trace = super.requestTrace(name, now);
    this.#requestTraces.push(trace);
    return trace;
  }

  /** The last `token_result` a request transform annotated, when it is a short word. */
  tokenResult(): string | undefined {
    for (let i = this.#requestTraces.length - 1; i >= 0; i--) {
      const value = this.#requestTraces[i]!.entry.annotations?.[TOKEN_RESULT_ANNOTATION];
      if (typeof value === 'string' && ATTRIBUTE_WORD.test(value)) return value;
    }
    return undefined;
  }
}
