import { pino } from 'pino';
import type { DestinationStream } from 'pino';

/** A log destination that can also be flushed (pino's `logger.flush` calls it). */
export interface FlushableDestination extends DestinationStream {
  flush(cb: (err?: Error) => void): void;
}

/**
 * A file descriptor (stdout 1, stderr 2) as an asynchronous pino destination whose `flush(cb)` calls back only
 * once every line written so far has reached the file descriptor. sonic-boom's own `flush` calls
 * back at once when it keeps no minimum length, while a write may still be in flight: a process
 * that exits in that callback (the shutdown's last "stopped" line, the last audit records) would
 * lose those lines. sonic-boom emits `drain` each time its buffer empties; until then the lines
 * are pending. A write error (the reader went away) releases the waiters too: those lines cannot
 * be delivered, and shutdown must not hang on them.
 */
export function createFdDestination(fd: number): FlushableDestination {
  const stream = pino.destination({ dest: fd, sync: false });
  let pending = false;
  let waiters: ((err?: Error) => void)[] = [];
  const release = (err?: Error): void => {
    pending = false;
    const callbacks = waiters;
    waiters = [];
    for (const cb of callbacks) cb(err);
  };
  stream.on('drain', () => release());
  stream.on('error', (err: Error) => release(err));
  stream.on('close', () => release());
  return {
    write(line: string) {
      pending = true;
      return stream.write(line);
    },
    flush(cb) {
      if (pending) waiters.push(cb);
      else cb();
    },
  };
}
