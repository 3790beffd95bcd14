import { pino } from 'pino';
import type { DestinationStream } from 'pino';
import { DEFAULT_MAX_LOG_BACKLOG_BYTES } from '@proxy/config';

/** A log destination that can be flushed (pino's `logger.flush` calls it) and bounds its backlog. */
export interface FlushableDestination extends DestinationStream {
  flush(cb: (err?: Error) => void): void;
  /** The bounds and drop count of the lines waiting for the output (`log.max_backlog_bytes`). */
  readonly backlog: LogBacklog;
}

/**
 * How far a log destination's output may fall behind, and what it dropped beyond that. A
 * workload drives the proxy's log volume (an audit record per request), and the reader of the
 * proxy's output (a terminal, a log shipper, a full disk behind a pipe) can stall: lines then
 * wait in memory, and without a bound they would grow until the process ran out of memory,
 * taking every workload's traffic down with it. Past `maxBytes` of waiting lines, new lines are
 * dropped and counted instead (`proxy_log_dropped_lines_total`); once the output has caught
 * up, the listener is told how many were lost, so the gap is written into the log itself.
 */
export class LogBacklog {
  /** Bytes of waiting lines past which new lines are dropped (the schema's default until the config sets it). */
  maxBytes: number;
  #dropped = 0;
  #unreported = 0;
  #onCaughtUp: ((dropped: number) => void) | undefined;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Lines dropped since the process started. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** True when `size` more bytes fit beside the `waiting` ones. */
  fits(waiting: number, size: number): boolean {
    return waiting + size <= this.maxBytes;
  }

  /** Counts `text` (one line, or a batch of whole lines) as dropped. */
  drop(text: string): void {
    let lines = 0;
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines++;
    // pino ends every record with a newline; anything else still counts as one line.
    lines = Math.max(lines, 1);
    this.#dropped += lines;
    this.#unreported += lines;
  }

  /** The output has caught up (nothing waits): the listener hears of the lines dropped since it last did. */
  caughtUp(): void {
    if (this.#unreported === 0 || this.#onCaughtUp === undefined) return;
    const dropped = this.#unreported;
    this.#unreported = 0;
    this.#onCaughtUp(dropped);
  }

  /** Sets the one listener {@link caughtUp} calls with the count of lines dropped meanwhile. */
  onCaughtUp(listener: (dropped: number) => void): void {
    this.#onCaughtUp = listener;
  }
}

/**
 * A file descriptor (stdout 1, stderr 2) as an asynchronous pino destination whose `flush(cb)`
 * calls back only once every line written so far has reached the file descriptor. sonic-boom's
 * own `flush` calls back at once when it keeps no minimum length, while a write may still be in
 * flight: a process that exits in that callback (the shutdown's last "stopped" line, the last
 * audit records) would lose those lines. sonic-boom emits `drain` each time its buffer empties;
 * until then the lines are pending. A write error (the reader went away) releases the waiters
 * too: those lines cannot be delivered, and shutdown must not hang on them.
 *
 * The lines sonic-boom holds (written to it, not yet reported by its `write` events) are bounded
 * by {@link LogBacklog}: past `maxBacklogBytes`, a line is dropped and counted.
 */
export function createFdDestination(fd: number, maxBacklogBytes = DEFAULT_MAX_LOG_BACKLOG_BYTES): FlushableDestination {
  const stream = pino.destination({ dest: fd, sync: false });
  const backlog = new LogBacklog(maxBacklogBytes);
  let waiting = 0;
  let waiters: ((err?: Error) => void)[] = [];
  const release = (err?: Error): void => {
    waiting = 0;
    const callbacks = waiters;
    waiters = [];
    for (const cb of callbacks) cb(err);
  };
  stream.on('write', (bytes: number) => {
    waiting = Math.max(0, waiting - bytes);
  });
  stream.on('drain', () => {
    release();
    backlog.caughtUp();
  });
  stream.on('error', (err: Error) => release(err));
  stream.on('close', () => release());
  return {
    backlog,
    write(line: string) {
      const size = Buffer.byteLength(line);
      if (!backlog.fits(waiting, size)) {
        backlog.drop(line);
        return false;
      }
      waiting += size;
      return stream.write(line);
    },
    flush(cb) {
      if (waiting > 0) waiters.push(cb);
      else cb();
    },
  };
}
