import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/** One request exactly as the upstream received it. */
export interface ReceivedRequest {
  readonly method: string;
  /** The request target as sent (origin-form: path and query). */
  readonly url: string;
  /** The headers as sent: name, value, name, value... with the sender's casing. */
  readonly rawHeaders: readonly string[];
  /** Every byte of the body. */
  readonly body: Buffer;
  /** The Host header (any casing), without its port. */
  readonly hostname: string;
  /** The first value of the header named exactly `name` (case-sensitive), or undefined. */
  header(name: string): string | undefined;
}

/** Checks a request's signature; returns why it is wrong, or undefined when it is right. */
export type SignatureCheck = (request: ReceivedRequest) => string | undefined;

/** A signature-checking upstream. */
export interface HmacUpstream {
  readonly port: number;
  /** Every request received, in order (recorded once its body has arrived). */
  readonly requests: ReceivedRequest[];
  close(): Promise<void>;
}

/**
 * Starts an upstream that, like the API it stands for, recomputes each request's signature
 * from what it received and answers 200 `{ ok: true, rawHeaders, framing }` only when it
 * matches, otherwise 401 `{ ok: false, why }`. The check is chosen by the first path segment
 * (`/intro/...` -> `checks.intro`); a path with no check is 404. With `tls` it serves HTTPS.
 */
export async function startHmacUpstream(checks: Readonly<Record<string, SignatureCheck>>, tls?: { cert: string; key: string }): Promise<HmacUpstream> {
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received = receivedRequest(req, Buffer.concat(chunks));
      requests.push(received);
      const check = checks[received.url.split('/')[1] ?? ''];
      const why = check === undefined ? 'no check for this path' : check(received);
      const framing = { 'content-length': req.headers['content-length'] ?? null, 'transfer-encoding': req.headers['transfer-encoding'] ?? null };
      const body = why === undefined ? { ok: true, rawHeaders: req.rawHeaders, framing } : { ok: false, why };
      res.writeHead(why === undefined ? 200 : check === undefined ? 404 : 401, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  };
  const server: Server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function receivedRequest(req: IncomingMessage, body: Buffer): ReceivedRequest {
  const rawHeaders = [...req.rawHeaders];
  return {
    method: req.method ?? '',
    url: req.url ?? '',
    rawHeaders,
    body,
    hostname: (req.headers.host ?? '').replace(/:\d+$/, ''),
    header(name) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i] === name) return rawHeaders[i + 1];
      return undefined;
    },
  };
}
