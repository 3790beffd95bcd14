import { connect as netConnect, type NetConnectOpts, type Socket } from 'node:net';

/** Size of one pooled read buffer: a TLS record's payload, the unit a tunnel mostly carries. */
export const READ_BUFFER_BYTES = 16 * 1024;

/** How many idle read buffers the pool keeps (1 MiB); more are left to the garbage collector. */
const MAX_FREE_READ_BUFFERS = 64;

/**
 * Read buffers handed from one spliced connection to the next. A buffer is taken for a read
 * and given back once the bytes read into it were written on: it never holds data anyone can
 * still see, and only the part a read filled is ever written, so what it held before never
 * leaves the process.
 */
class ReadBufferPool {
  readonly #free: Buffer[] = [];

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  }

  give(buffer: Buffer): void {
    if (this.#free.length < MAX_FREE_READ_BUFFERS) this.#free.push(buffer);
  }
}

const pool = new ReadBufferPool();

/** The reader of each socket {@link connectPooled} opened. */
const readers = new WeakMap<Socket, PooledReader>();

/**
 * Opens a TCP connection whose reads land in pooled, reused buffers (`net.connect`'s
 * `onread`), for a connection that may be spliced to a client unread (a tunnel's upstream).
 *
 * Node otherwise allocates a new buffer outside V8's heap for every read. Relaying a tunnel's
 * bytes then allocates as many bytes as it carries, and V8 runs a full collection each time
 * 64 MB of such buffers has piled up: with 64 KiB responses that is several times a second,
 * each pausing every connection for 5-15 ms, and up to ~70 MiB of RSS in buffers waiting for it
 * (bench/README.md). Once {@link spliceReads} hands it a client, each read is written to that
 * client as it is and its buffer is reused once written, so relaying allocates nothing per read.
 *
 * Until then, the socket is an ordinary readable stream: each read is copied out and pushed
 * (`data`, `read()`, `pipe` and TLS on top work as usual), so a connection dialled before the
 * proxy knows how it will be used can still go to an HTTP client or be wrapped in TLS. The
 * price is one pooled buffer held per open connection (16 KiB).
 */
export function connectPooled(options: NetConnectOpts): Socket {
  const reader = new PooledReader();
  const socket = netConnect({ ...options, onread: { buffer: () => pool.take(), callback: (bytes, buffer) => reader.read(bytes, buffer as Buffer) } });
  reader.socket = socket;
  readers.set(socket, reader);
  return socket;
}

/**
 * Writes everything `upstream` reads from now on to `client`, straight from its pooled buffers,
 * when {@link connectPooled} opened it (false, and nothing done, otherwise: pipe it instead).
 * Bytes it read earlier and nobody consumed are written first. Reading pauses while `client` is
 * over its high-water mark and resumes on its `drain`; the end of `upstream` ends `client`, as
 * `pipe` would. The caller still handles `close` and `error`.
 */
export function spliceReads(upstream: Socket, client: Socket): boolean {
  const reader = readers.get(upstream);
  if (reader === undefined) return false;
  for (let chunk = upstream.read() as Buffer | null; chunk !== null; chunk = upstream.read() as Buffer | null) client.write(chunk);
  reader.target = client;
  upstream.once('end', () => client.end());
  // Nothing consumes the stream side any more: let it reach its end.
  upstream.resume();
  return true;
}

/** The `onread` callback of one pooled socket: copy-and-push until spliced, then write-through. */
class PooledReader {
  socket: Socket | undefined;
  target: Socket | undefined;

  read(bytes: number, buffer: Buffer): boolean {
    const target = this.target;
    if (target === undefined) {
      const copy = Buffer.from(buffer.subarray(0, bytes));
      pool.give(buffer);
      return this.socket?.push(copy) ?? false;
    }
    if (target.destroyed) return false;
    // Given back only after a write that completed: a failed one leaves it to the collector.
    const more = target.write(buffer.subarray(0, bytes), (err) => {
      if (err === undefined || err === null) pool.give(buffer);
    });
    if (!more) target.once('drain', () => this.socket?.resume());
    return more;
  }
}
