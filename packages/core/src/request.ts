import { Readable } from 'node:stream';
import type { BodyBudget } from './body-budget.js';
import { ErrorCodes, ProxyError } from './errors.js';
import type { HeaderList } from './headers.js';

/**
 * How a request reached the proxy. `tunnel` is the host-only request that decides whether a
 * CONNECT or SOCKS5 tunnel opens: the requests inside the tunnel are seen (and decided) one by
 * one afterwards, in mode `mitm` or `http` (or `sni-only` for TLS passed through unread).
 */
export type RequestMode = 'http' | 'mitm' | 'sni-only' | 'reverse' | 'tunnel';

/** The tunnel a request travelled in (CONNECT or SOCKS5), when it did. */
export interface TunnelInfo {
  readonly protocol: 'connect' | 'socks5';
  /** The `host:port` the client asked the tunnel for. */
  readonly target: string;
  /**
   * The host-level decision that opened the tunnel, on the requests inside it. Absent on the
   * `tunnel` request that is being decided.
   */
  readonly decision?: 'allow';
}

/**
 * Lazy access to a message body. Nothing is buffered unless a transform calls `read()`;
 * otherwise the engine streams the body through untouched.
 */
export interface MessageBody {
  /** True when the message carries a body (a non-zero Content-Length, or chunked framing). */
  readonly present: boolean;
  /** The declared Content-Length, or undefined when absent or chunked. */
  readonly declaredLength: number | undefined;
  /** True when the body arrived with chunked transfer coding. */
  readonly chunked: boolean;
  /** True once the body has been read or replaced: the engine then sends `bytes`. */
  readonly buffered: boolean;
  /** The buffered body, once read or replaced. */
  readonly bytes: Buffer | undefined;
  /**
   * The most bytes the body may have, read or replaced (0 = no limit). A transform that grows
   * a body (a placeholder swapped for a longer secret) checks the result against it before
   * building it.
   */
  readonly limit: number;
  /**
   * Buffers the whole body and returns it. Idempotent. A body over the configured limit
   * rejects with a `ProxyError` of code `PROXY_ERR_BODY_TOO_LARGE` (status 413): a body is
   * never silently truncated. When the proxy's memory for buffered bodies is spent it rejects
   * with the budget's error instead (503, or 413 for one connection asking too much).
   */
  read(): Promise<Buffer>;
  /**
   * Swaps the body. Content-Length is set to the new length and Transfer-Encoding removed.
   * Throws a `ProxyError` (`PROXY_ERR_BODY_TOO_LARGE`, 413) when the new body is over `limit`.
   */
  replace(body: Buffer | string): void;
  /**
   * The body as it arrives, for a transform that processes it piece by piece (an event stream
   * filtered event by event) instead of buffering it. Takes the body: it can be taken once, and
   * `read()` rejects afterwards. A body already buffered comes back as a stream of its bytes.
   */
  stream(): Readable;
  /**
   * Swaps the body for a stream whose length is not known in advance (Content-Length removed;
   * the message is sent chunked). Typically the result of piping {@link stream} through a
   * transform stream.
   */
  replaceStream(body: Readable): void;
  /** The stream `replaceStream()` swapped in, if any: the engine sends it instead of the original body. */
  readonly replacementStream: Readable | undefined;
  /**
   * Why `read()` failed (body over the limit, stream error), if it did. The body stream is then
   * spent: whoever forwards the message must answer with this error's status instead, even when
   * the transform that read the body chose to carry on. After a body over `limit` the rest of
   * the body is drained (the connection can serve the next request); after a budget refusal it
   * is left unread, and the answer should close the connection.
   */
  readonly readError: ProxyError | undefined;
}

/**
 * The one view of a request that every transform sees, whatever listener it came from.
 * `host` is the destination that will be dialled (lowercase, no trailing dot, IPv6 without
 * brackets); rules are matched against it. Transforms may change `method`, `path`, `query`,
 * `headers` and the body; the destination changes only when a transform re-targets the
 * request (`RetargetDecision`), which the pipeline does for it.
 */
export interface ProxyRequest {
  /** Unique id of this request, also written to its audit record. */
  readonly id: string;
  method: string;
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  /** The request path, without the query, as received (percent-encoding preserved). */
  path: string;
  /** The raw query string without the leading `?` (empty when there is none). */
  query: string;
  readonly headers: HeaderList;
  /** The client's address (IP, without port). */
  readonly clientAddress: string;
  readonly mode: RequestMode;
  /** The TLS SNI the client sent, when the request came over intercepted TLS. */
  readonly sni: string | undefined;
  readonly tunnel: TunnelInfo | undefined;
  readonly body: MessageBody;
  /** `Date.now()` when the request arrived. */
  readonly receivedAt: number;
  /**
   * The most bytes the request line and headers may take when forwarded (413 beyond). A
   * transform that grows them (a placeholder swapped for a longer secret) checks the result
   * against it before building it; the engine checks the whole head once the pipeline is done.
   */
  readonly maxHeadBytes: number;
}

/** Default of {@link ProxyRequest.maxHeadBytes}: 64 KiB, four times what Node accepts from a client. */
export const DEFAULT_MAX_HEAD_BYTES = 65_536;

/**
 * The bytes the request line and header fields of `request` take on the wire
 * (`METHOD path?query HTTP/1.1`, then `name: value` lines), without the `Host` line the
 * dispatcher adds.
 */
export function requestHeadBytes(request: Pick<ProxyRequest, 'method' | 'path' | 'query' | 'headers'>): number {
  let total = request.method.length + request.path.length + request.query.length + 12;
  const headers = request.headers;
  for (let i = 0; i < headers.size; i++) total += headers.keyAt(i)!.length + headers.valueAt(i)!.length + 4;
  return total;
}

/** The error of a head that grew past {@link ProxyRequest.maxHeadBytes}. */
export function headTooLarge(limit: number): ProxyError {
  return new ProxyError(ErrorCodes.HEAD_TOO_LARGE, `the request line and headers exceed proxy.max_request_header_bytes (${limit} bytes)`, {
    status: 413,
    reason: 'header_too_large',
  });
}

/** The upstream response as response transforms see it. */
export interface ProxyResponse {
  status: number;
  readonly headers: HeaderList;
  readonly body: MessageBody;
}

/** `scheme://host[:port]/path?query` of a request, with the default port omitted. */
export function requestUrl(req: Pick<ProxyRequest, 'scheme' | 'host' | 'port' | 'path' | 'query'>): string {
  const defaultPort = req.scheme === 'https' ? 443 : 80;
  const host = req.host.includes(':') ? `[${req.host}]` : req.host;
  const port = req.port === defaultPort ? '' : `:${req.port}`;
  return `${req.scheme}://${host}${port}${req.path}${req.query ? `?${req.query}` : ''}`;
}

/** Options for {@link createMessageBody}. */
export interface MessageBodyOptions {
  /** The headers of the message; framing headers are fixed up on `replace()`. */
  readonly headers: HeaderList;
  /** The body stream, or null when the message has no body. */
  readonly stream: Readable | null;
  /** Largest body `read()` will buffer, in bytes; 0 means no limit. */
  readonly limit: number;
  /** Which limit applies, for the error message (e.g. `proxy.max_request_body_bytes`). */
  readonly limitName: string;
  /** Memory the buffered body is counted against; without one only `limit` applies. */
  readonly budget?: BodyBudget;
  /**
   * True for a response: its body runs until the stream ends even without Content-Length or
   * chunked framing (a close-delimited body), so it is present unless Content-Length is 0.
   */
  readonly untilClose?: boolean;
}

/** Creates the lazy body of a message. Used by the engine and by the Fastify adapter. */
export function createMessageBody(options: MessageBodyOptions): MessageBody {
  return new LazyBody(options);
}

class LazyBody implements MessageBody {
  readonly #opts: MessageBodyOptions;
  #bytes: Buffer | undefined;
  #reading: Promise<Buffer> | undefined;
  #taken = false;
  #replacement: Readable | undefined;
  #error: ProxyError | undefined;
  readonly declaredLength: number | undefined;
  readonly chunked: boolean;

  constructor(opts: MessageBodyOptions) {
    this.#opts = opts;
    const te = opts.headers.get('transfer-encoding');
    this.chunked = te !== undefined && /(^|,)\s*chunked\s*$/i.test(te);
    const cl = opts.headers.get('content-length');
    this.declaredLength = !this.chunked && cl !== undefined && /^\d+$/.test(cl.trim()) ? Number(cl.trim()) : undefined;
  }

  get present(): boolean {
    if (this.#replacement !== undefined) return true;
    if (this.#bytes !== undefined) return this.#bytes.length > 0;
    if (this.#opts.stream === null) return false;
    return this.#opts.untilClose === true ? this.declaredLength !== 0 : this.chunked || (this.declaredLength ?? 0) > 0;
  }

  get buffered(): boolean {
    return this.#bytes !== undefined;
  }


  get bytes(): Buffer | undefined {
    return this.#bytes;
  }

  get limit(): number {
    return this.#opts.limit;
  }

  read(): Promise<Buffer> {
    if (this.#bytes !== undefined) return Promise.resolve(this.#bytes);
    if (this.#taken) return Promise.reject(new ProxyError(ErrorCodes.BAD_REQUEST, 'the body was taken as a stream and cannot be read again', { status: 500, reason: 'body_taken' }));
    this.#reading ??= this.#consume().then((b) => {
      this.#bytes ??= b;
      return this.#bytes;
    });
    return this.#reading;
  }

  replace(body: Buffer | string): void {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const { limit, limitName } = this.#opts;
    if (limit > 0 && bytes.length > limit) throw this.#tooLarge(`the replaced body exceeds ${limitName} (${limit} bytes)`);
    this.#bytes = bytes;
    this.#replacement = undefined;
    this.#opts.headers.delete('transfer-encoding');
    this.#opts.headers.set('Content-Length', String(bytes.length));
  }

  stream(): Readable {
    if (this.#bytes !== undefined) return Readable.from([this.#bytes]);
    if (this.#taken || this.#reading !== undefined) throw new Error('the body was already read or taken');
    this.#taken = true;
    const { stream } = this.#opts;
    return stream !== null && this.present ? stream : Readable.from([]);
  }

  replaceStream(body: Readable): void {
    this.#replacement = body;
    this.#bytes = undefined;
    this.#opts.headers.delete('content-length');
  }

  get replacementStream(): Readable | undefined {
    return this.#replacement;
  }

  get readError(): ProxyError | undefined {
    return this.#error;
  }

  #tooLarge(message: string): ProxyError {
    return new ProxyError(ErrorCodes.BODY_TOO_LARGE, message, { status: 413, reason: 'body_too_large' });
  }

  #consume(): Promise<Buffer> {
    const { stream, limit, limitName, budget } = this.#opts;
    if (stream === null || !this.present) return Promise.resolve(Buffer.alloc(0));
    const fail = (error: ProxyError): Promise<never> => {
      this.#error = error;
      if (error.reason === 'body_too_large') {
        // Drain the rest without keeping it, so the connection stays usable for the answer.
        stream.on('data', () => {});
        stream.resume();
      } else {
        // Out of memory budget: read nothing more; the answer closes the connection.
        stream.pause();
      }
      return Promise.reject(this.#error);
    };
    const overLimit = (): ProxyError => this.#tooLarge(`body exceeds ${limitName} (${limit} bytes)`);
    if (limit > 0 && this.declaredLength !== undefined && this.declaredLength > limit) return fail(overLimit());
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const onData = (chunk: Buffer | string): void => {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        total += buf.length;
        const refused = limit > 0 && total > limit ? overLimit() : budget?.reserve(buf.length);
        if (refused !== undefined) {
          cleanup();
          chunks.length = 0;
          fail(refused).catch(reject);
          return;
        }
        chunks.push(buf);
      };
      const onEnd = (): void => {
        cleanup();
        resolve(Buffer.concat(chunks, total));
      };
      const onError = (err: Error): void => {
        cleanup();
        this.#error = new ProxyError(ErrorCodes.BAD_REQUEST, 'the request body could not be read', { status: 400, reason: 'body_read_failed', cause: err });
        reject(this.#error);
      };
      const cleanup = (): void => {
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('error', onError);
      };
      stream.on('data', onData);
      stream.on('end', onEnd);
      stream.on('error', onError);
      stream.resume();
    });
  }
}

/** Everything needed to build a {@link ProxyRequest}. */
export interface ProxyRequestInit {
  readonly id?: string;
  readonly method: string;
  readonly scheme: 'http' | 'https';
  /** Destination host; normalized (lowercase, no trailing dot, no brackets). */
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly query: string;
  readonly headers: HeaderList;
  readonly clientAddress: string;
  readonly mode: RequestMode;
  readonly sni?: string | undefined;
  readonly tunnel?: TunnelInfo | undefined;
  /** The body stream, or null when there is none. */
  readonly bodyStream: Readable | null;
  /** `proxy.max_request_body_bytes`: the most `body.read()` buffers (0 = unlimited). */
  readonly maxBodyBytes: number;
  /** Memory a buffered body is counted against (the engine's budgets); none by default. */
  readonly bodyBudget?: BodyBudget;
  /** `proxy.max_request_header_bytes`; default {@link DEFAULT_MAX_HEAD_BYTES}. */
  readonly maxHeadBytes?: number;
  readonly receivedAt?: number;
}

let sequence = 0;
const idPrefix = Math.floor(Date.now() / 1000).toString(36);

/** A short unique request id (`<boot>-<seq>`); cheap enough for the hot path. */
export function nextRequestId(): string {
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${idPrefix}-${sequence.toString(36)}`;
}

/** Builds the request view the pipeline runs on. */
export function createProxyRequest(init: ProxyRequestInit): ProxyRequest {
  let host = init.host.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return {
    id: init.id ?? nextRequestId(),
    method: init.method,
    scheme: init.scheme,
    host,
    port: init.port,
    path: init.path,
    query: init.query,
    headers: init.headers,
    clientAddress: init.clientAddress,
    mode: init.mode,
    sni: init.sni,
    tunnel: init.tunnel,
    body: createMessageBody({
      headers: init.headers,
      stream: init.bodyStream,
      limit: init.maxBodyBytes,
      limitName: 'proxy.max_request_body_bytes',
      ...(init.bodyBudget === undefined ? {} : { budget: init.bodyBudget }),
    }),
    receivedAt: init.receivedAt ?? Date.now(),
    maxHeadBytes: init.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES,
  };
}
