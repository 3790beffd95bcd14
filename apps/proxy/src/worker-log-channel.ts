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
import type { DestinationStream } from 'pino';

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
 */
export class WorkerLogChannel implements DestinationStream {
  readonly #send: SendToPrimary;
  #pending: string[] = [];
  #scheduled = false;

  constructor(send: SendToPrimary) {
    this.#send = send;
  }

  /** Queues one complete line (pino writes each record whole, ending in `\n`). */
  write(line: string): void {
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
    this.#pending = [];
    try {
      this.#send({ type: 'proxy:log', lines }, () => callback());
    } catch {
      callback();
    }
  }
}
