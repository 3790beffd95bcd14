import type { Duplex } from 'node:stream';

/** What a parser made of the bytes buffered so far. */
export type Parsed<T> =
  | { readonly done: true; readonly value: T; /** Bytes to drop from the buffer (0 to only peek). */ readonly consumed: number }
  | { readonly done: false; /** Set when the bytes can never become valid. */ readonly problem?: string };

/** Why a prelude could not be read. */
export class PreludeError extends Error {
  /** `closed`: the peer left; `timeout`; `too_large`: over the byte limit; `invalid`: the parser refused the bytes. */
  readonly kind: 'closed' | 'timeout' | 'too_large' | 'invalid';
  /** The parser's problem, for `invalid`. */
  readonly problem: string | undefined;

  constructor(kind: PreludeError['kind'], problem?: string) {
    super(problem === undefined ? `prelude ${kind}` : `prelude ${kind}: ${problem}`);
    this.name = 'PreludeError';
    this.kind = kind;
    this.problem = problem;
  }
}

/** Limits of a {@link PreludeReader}. */
export interface PreludeLimits {
  /** Most bytes buffered while a message is incomplete. */
  readonly maxBytes: number;
  /** Time allowed for the whole prelude, from the reader's creation. */
  readonly timeoutMs: number;
}

/**
 * Reads the first messages of a raw connection (a SOCKS5 handshake, a TLS ClientHello, the
 * first byte inside a tunnel) before it is handed on, with a byte limit and one deadline for
 * the whole prelude. Between reads the socket is paused, so nothing is lost; `release()`
 * returns what was read but not consumed, for the next owner of the socket.
 */
export class PreludeReader {
  readonly #socket: Duplex;
  readonly #limits: PreludeLimits;
  readonly #deadline: number;
  #buffer: Buffer;

  /** `initial`: bytes already read from the socket by someone else (e.g. the head of a CONNECT). */
  constructor(socket: Duplex, limits: PreludeLimits, initial: Buffer = Buffer.alloc(0)) {
    this.#socket = socket;
    this.#limits = limits;
    this.#deadline = Date.now() + limits.timeoutMs;
    this.#buffer = initial;
  }

  /** Waits until `parse` accepts the buffered bytes; resolves with its value. Rejects with a {@link PreludeError}. */
  read<T>(parse: (bytes: Buffer) => Parsed<T>): Promise<T> {
    const socket = this.#socket;
    return new Promise<T>((resolve, reject) => {
      const attempt = (): boolean => {
        const parsed = parse(this.#buffer);
        if (parsed.done) {
          this.#buffer = this.#buffer.subarray(parsed.consumed);
          resolve(parsed.value);
          return true;
        }
        if (parsed.problem !== undefined) return fail(new PreludeError('invalid', parsed.problem));
        if (this.#buffer.length >= this.#limits.maxBytes) return fail(new PreludeError('too_large'));
        return false;
      };
      const fail = (err: PreludeError): true => {
        reject(err);
        return true;
      };
      if (attempt()) return;
      if (socket.destroyed || socket.readableEnded) {
        fail(new PreludeError('closed'));
        return;
      }

      const onData = (chunk: Buffer): void => {
        this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
        if (attempt()) stop();
      };
      const onClosed = (): void => {
        stop();
        fail(new PreludeError('closed'));
      };
      const timer = setTimeout(() => {
        stop();
        fail(new PreludeError('timeout'));
      }, Math.max(0, this.#deadline - Date.now()));
      const stop = (): void => {
        clearTimeout(timer);
        socket.pause();
        socket.off('data', onData).off('end', onClosed).off('close', onClosed).off('error', onClosed);
      };
      socket.on('data', onData).on('end', onClosed).on('close', onClosed).on('error', onClosed);
      socket.resume();
    });
  }

  /** The bytes read but not consumed; the socket stays paused for its next owner. */
  release(): Buffer {
    this.#socket.pause();
    const rest = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    return rest;
  }
}

/** A parser that peeks at the first byte without consuming it. */
export function firstByte(bytes: Buffer): Parsed<number> {
  return bytes.length === 0 ? { done: false } : { done: true, value: bytes[0]!, consumed: 0 };
}
