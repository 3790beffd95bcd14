import { getHeapStatistics } from 'node:v8';
import { v8GcFunction, type GcFunction } from './v8-gc.js';

/** Settings of {@link startExternalMemoryPacer}; the defaults are the measured ones. */
export interface ExternalMemoryPacerOptions {
  /** Growth of external memory over its lowest point since the last collection that starts a young collection. Default 4 MiB. */
  readonly stepBytes?: number;
  /** Sampling period while buffers are being allocated. Default 10 ms. */
  readonly busyIntervalMs?: number;
  /** Sampling period while external memory stands still. Default 50 ms. */
  readonly quietIntervalMs?: number;
}

/** A running pacer. */
export interface ExternalMemoryPacer {
  /** Young collections the pacer has started so far. */
  readonly collections: number;
  /** Stops sampling. */
  stop(): void;
}

const MIB = 1024 * 1024;
/** Growth between two samples that counts as buffers being allocated. */
const BUSY_GROWTH_BYTES = 256 * 1024;
/** Quiet samples in a row before sampling slows down again. */
const QUIET_SAMPLES_TO_SLOW_DOWN = 10;

/**
 * Runs a young-generation collection (a scavenge) whenever the memory of buffers outside
 * V8's heap has grown by `stepBytes` (4 MiB) since its lowest point, so that relaying large
 * bodies does not pile up dead read buffers.
 *
 * Why: V8 schedules a scavenge when its new space fills, that is by heap allocation alone.
 * Every socket read in Node's HTTP server and in undici is a new buffer outside the heap, freed
 * only when the scavenge after it finds it dead. With 64 KiB bodies the proxy reads several
 * times more buffer bytes than it allocates heap bytes, so 30-40 MiB of dead buffers waited for
 * each scavenge and peak RSS rose by as much (bench/README.md, "Dead read buffers"). A smaller
 * young generation would scavenge sooner too, but costs CPU in every mode; this costs a
 * scavenge only where buffers are allocated fast. Small bodies never reach the step.
 *
 * External memory is sampled every 10 ms while it grows and every 50 ms while it stands still
 * (an unref'd timer: it never keeps the process alive). Returns undefined, and does nothing,
 * when `PROXY_RUNTIME_FLAGS=off` (the operator runs V8 as it comes).
 */
export function startExternalMemoryPacer(options: ExternalMemoryPacerOptions = {}): ExternalMemoryPacer | undefined {
  if (process.env.PROXY_RUNTIME_FLAGS === 'off') return undefined;
  return new Pacer(v8GcFunction(), options.stepBytes ?? 4 * MIB, options.busyIntervalMs ?? 10, options.quietIntervalMs ?? 50);
}

/** The memory V8 accounts outside its heap: array buffers' backing stores and the like. */
function externalBytes(): number {
  return getHeapStatistics().external_memory;
}

class Pacer implements ExternalMemoryPacer {
  readonly #gc: GcFunction;
  readonly #step: number;
  readonly #busyMs: number;
  readonly #quietMs: number;
  #lowest = externalBytes();
  #previous = this.#lowest;
  #quietSamples = QUIET_SAMPLES_TO_SLOW_DOWN;
  #collections = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(gc: GcFunction, step: number, busyMs: number, quietMs: number) {
    this.#gc = gc;
    this.#step = step;
    this.#busyMs = busyMs;
    this.#quietMs = quietMs;
    this.#schedule();
  }

  get collections(): number {
    return this.#collections;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    const busy = this.#quietSamples < QUIET_SAMPLES_TO_SLOW_DOWN;
    this.#timer = setTimeout(() => this.#sample(), busy ? this.#busyMs : this.#quietMs);
    this.#timer.unref();
  }

  #sample(): void {
    const now = externalBytes();
    this.#quietSamples = now - this.#previous >= BUSY_GROWTH_BYTES ? 0 : this.#quietSamples + 1;
    this.#previous = now;
    // A collection V8 ran by itself lowers the mark too: the step counts from there.
    this.#lowest = Math.min(this.#lowest, now);
    if (now - this.#lowest >= this.#step) {
      this.#gc({ type: 'minor' });
      this.#collections++;
      // Dead buffers are released by a sweeper after the collection; later samples lower the mark further.
      this.#lowest = externalBytes();
    }
    if (this.#timer !== undefined) this.#schedule();
  }
}
