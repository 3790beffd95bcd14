import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';

/** What a {@link RetainingExporter} reports about the collector. */
export interface RetainingExporterEvents {
  /** The first failed export after a success (or at start). */
  onFailing(error: Error | undefined): void;
  /** The first successful export after failures. */
  onRecovered(): void;
}

/** Backoff between attempts at one batch: doubling from the first to the last. */
export interface RetainingBackoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

const DEFAULT_BACKOFF: RetainingBackoff = { initialMs: 250, maxMs: 5000 };

/**
 * Keeps a batch the collector did not take and sends it again, with backoff, until the
 * collector takes it or the export is stopping: a collector that is away for a while loses
 * nothing. It holds one batch at a time, since the batch processor sends the next batch only
 * once this one is done; the records that arrive meanwhile wait in the processor's bounded
 * queue, and those beyond its bound are dropped there (and counted). Once {@link stopping} is
 * called, each batch is tried once more and then given up.
 */
export class RetainingExporter implements LogRecordExporter {
  readonly #inner: LogRecordExporter;
  readonly #events: RetainingExporterEvents;
  readonly #backoff: RetainingBackoff;
  #failing = false;
  #stopping = false;
  /** Ends the current backoff wait early (set while one runs). */
  #wake: (() => void) | undefined;

  constructor(inner: LogRecordExporter, events: RetainingExporterEvents, backoff: RetainingBackoff = DEFAULT_BACKOFF) {
    this.#inner = inner;
    this.#events = events;
    this.#backoff = backoff;
  }

  export(records: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    void this.#deliver(records).then(resultCallback);
  }

  /** From now on a batch the collector refuses is given up after one more attempt (the shutdown flush). */
  stopping(): void {
    this.#stopping = true;
    this.#wake?.();
  }

  forceFlush(): Promise<void> {
    // Retry a waiting batch now rather than at the end of its backoff.
    this.#wake?.();
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.stopping();
    return this.#inner.shutdown();
  }

  async #deliver(records: ReadableLogRecord[]): Promise<ExportResult> {
    let delay = this.#backoff.initialMs;
    for (;;) {
      const result = await new Promise<ExportResult>((resolve) => this.#inner.export(records, resolve));
      if (result.code === ExportResultCode.SUCCESS) {
        if (this.#failing) {
          this.#failing = false;
          this.#events.onRecovered();
        }
        return result;
      }
      if (!this.#failing) {
        this.#failing = true;
        this.#events.onFailing(result.error);
      }
      if (this.#stopping) return result;
      await this.#wait(delay);
      delay = Math.min(delay * 2, this.#backoff.maxMs);
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}
