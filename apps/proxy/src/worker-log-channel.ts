/**
 * One log stream for a cluster of proxy processes (`proxy.workers` > 1). A worker never writes
 * its log lines and audit records to stdout or stderr itself: several processes writing one
 * pipe could interleave a line longer than the pipe's atomic write size (4 KiB) with another.
 * Instead each worker's logger writes into a {@link WorkerLogChannel}, which gathers the
 * complete lines of one event-loop turn and sends them to the primary as one IPC message; the
 * primary writes every batch, and its own lines, through one stream in arrival order, so each
 * line reaches the output whole. Lines are redacted by the worker's logger before they reach
 * the channel: no secret value crosses the IPC channel.
 */
import { DEFAULT_MAX_LOG_BACKLOG_BYTES } from '@proxy/config';
import { LogBacklog, type FlushableDestination } from './log-destination.js';

/** The IPC message that carries a batch of complete log lines from a worker to the primary. */
export interface LogBatchMessage {
  readonly type: 'proxy:log';
  /** Complete lines, each ending in `\n`. */
  readonly lines: string;
}

/** True when an IPC message is a {@link LogBatchMessage}. */
export function isLogBatch(message: unknown): message is LogBatchMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'proxy:log' && typeof (message as { lines?: unknown }).lines === 'string';
}

/** Sends an IPC message to the primary (`process.send`); the callback runs once it was written. */
export type SendToPrimary = (message: LogBatchMessage, callback: (error: Error | null) => void) => void;

/**
 * The worker side: a pino destination that batches the lines written during one event-loop
 * turn and sends them to the primary in one message. `flush(cb)` (pino's `logger.flush`) sends
 * what is pending and calls back once the channel has taken it, so a worker that exits after a
 * flush loses no line. When the channel to the primary is gone, lines are dropped: the primary
 * that would write them has exited.
 *
 * A primary that falls behind (its own output stalled) leaves batches queued in this worker's
 * IPC channel. The lines pending here and those sent but not yet taken by the channel are
 * bounded by the {@link LogBacklog}: past it, a line is dropped and counted.
 */
export class WorkerLogChannel implements FlushableDestination {
  readonly backlog = new LogBacklog(DEFAULT_MAX_LOG_BACKLOG_BYTES);
  readonly #send: SendToPrimary;
  #pending: string[] = [];
  #pendingBytes = 0;
  /** Bytes of the batches sent and not yet taken by the channel. */
  #inFlightBytes = 0;
  #scheduled = false;

  constructor(send: SendToPrimary) {
    this.#send = send;
  }

  /** Queues one complete line (pino writes each record whole, ending in `\n`). */
  write(line: string): void {
    const size = Buffer.byteLength(line);
    if (!this.backlog.fits(this.#pendingBytes + this.#inFlightBytes, size)) {
      this.backlog.drop(line);
      return;
    }
    this.#pendingBytes += size;
    this.#pending.push(line);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#sendPending(() => undefined));
  }

  /** Sends the pending lines now; `callback` runs once they were handed to the IPC channel. */
  flush(callback: (error?: Error) => void): void {
    this.#sendPending(callback);
  }

  #sendPending(callback: (error?: Error) => void): void {
    this.#scheduled = false;
    if (this.#pending.length === 0) {
      callback();
      return;
    }
    const lines = this.#pending.join('');
    const size = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#inFlightBytes += size;
    const taken = (): void => {
      this.#inFlightBytes -= size;
      if (this.#inFlightBytes + this.#pendingBytes === 0) this.backlog.caughtUp();
      callback();
    };
    try {
      this.#send({ type: 'proxy:log', lines }, taken);
    } catch {
      taken();
    }
  }
}
