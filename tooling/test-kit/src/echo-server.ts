import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { AckGate } from './ack-gate.js';
import { hostForUrl } from './host.js';

/** One request as the echo server received it. */
export interface EchoRequestRecord {
  method: string;
  /** The request target exactly as sent (origin-form or absolute-form). */
  url: string;
  /** The path part of `url`, without the query. */
  path: string;
  /** The raw query string, without the leading `?` (empty when there is none). */
  query: string;
  /** Node's lowercase header map (duplicates joined, `set-cookie` as an array). */
  headers: Record<string, string | string[]>;
  /** The headers as sent: name, value, name, value... with the client's casing. */
  rawHeaders: string[];
  /** The body as utf8 text, at most the first {@link MAX_KEPT_BODY_BYTES} bytes. */
  body: string;
  /** The full body length in bytes, however long it was. */
  bodyBytes: number;
}

/** A running echo upstream. */
export interface EchoServer {
  /** Base URL, e.g. `http://127.0.0.1:40123` (`https://` when started with `tls`). */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  /** Every request received, in order; a record appears when the request head arrives. */
  readonly requests: EchoRequestRecord[];
  /** Number of TCP connections accepted so far (tests prove "no connection reached the server"). */
  readonly connections: number;
  /** Closes the listener, every open connection and every WebSocket. */
  close(): Promise<void>;
}

/** Options for {@link startEchoServer}. */
export interface EchoServerOptions {
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** Port to bind; default 0 (ephemeral). */
  port?: number;
  /** Serve HTTPS with this PEM certificate and key instead of plain HTTP. */
  tls?: { cert: string; key: string };
}

/** Bodies longer than this are only counted; the text kept in the record stops here. */
export const MAX_KEPT_BODY_BYTES = 1024 * 1024;

const BYTES_CHUNK = 64 * 1024;

/**
 * Starts an upstream that answers every request 200 `application/json` with the request it
 * received (`{ method, url, path, query, headers, rawHeaders, body, bodyBytes }`).
 *
 * Special paths: `/status/<code>` answers that status (3xx adds `Location: /redirected`);
 * `/delay/<ms>` waits before sending headers; `/bytes/<n>` streams n bytes;
 * `/sse?events=N&gate=1` streams N `data: <i>` events, with `gate=1` sending each next event
 * only after a request to `/sse-ack`. A WebSocket upgrade on any path echoes messages back.
 */
export async function startEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const host = options.host ?? '127.0.0.1';
  const requests: EchoRequestRecord[] = [];
  const gate = new AckGate();
  const sockets = new Set<Socket>();
  let connections = 0;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const record = recordOf(req);
    requests.push(record);
    void respond(req, res, record, gate).catch(() => res.destroy());
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createHttpServer(handler);

  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    requests.push(recordOf(req));
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = options.tls ? 'https' : 'http';

  return {
    url: `${scheme}://${hostForUrl(host)}:${port}`,
    port,
    host,
    requests,
    get connections() {
      return connections;
    },
    async close() {
      gate.releaseAll();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function recordOf(req: IncomingMessage): EchoRequestRecord {
  const url = req.url ?? '';
  const { path, query } = splitTarget(url);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = value;
  }
  return { method: req.method ?? '', url, path, query, headers, rawHeaders: [...req.rawHeaders], body: '', bodyBytes: 0 };
}

/** Splits a request target (origin-form or absolute-form) into path and raw query. */
function splitTarget(target: string): { path: string; query: string } {
  let rest = target;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length) || '/';
  const q = rest.indexOf('?');
  return q < 0 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}

async function readBody(req: IncomingMessage, record: EchoRequestRecord): Promise<void> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    record.bodyBytes += chunk.length;
    if (keptBytes < MAX_KEPT_BODY_BYTES) {
      const part = chunk.subarray(0, MAX_KEPT_BODY_BYTES - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
  }
  record.body = Buffer.concat(kept).toString('utf8');
}

async function respond(req: IncomingMessage, res: ServerResponse, record: EchoRequestRecord, gate: AckGate): Promise<void> {
  await readBody(req, record);
  const { path } = record;
  const params = new URLSearchParams(record.query);

  if (path === '/sse-ack') {
    gate.ack();
    return sendJson(res, 200, record);
  }
  if (path === '/sse') return streamEvents(res, Number(params.get('events') ?? '1'), params.get('gate') === '1', gate);

  const status = /^\/status\/(\d{3})$/.exec(path);
  if (status) {
    const code = Number(status[1]);
    if (code >= 300 && code < 400) res.setHeader('location', '/redirected');
    if (code === 204 || code === 304 || req.method === 'HEAD') {
      res.writeHead(code).end();
      return;
    }
    return sendJson(res, code, record);
  }

  const delay = /^\/delay\/(\d+)$/.exec(path);
  if (delay) {
    await sleep(Number(delay[1]));
    return sendJson(res, 200, record);
  }

  const bytes = /^\/bytes\/(\d+)$/.exec(path);
  if (bytes) return streamBytes(res, Number(bytes[1]));

  sendJson(res, 200, record);
}

function sendJson(res: ServerResponse, status: number, record: EchoRequestRecord): void {
  const body = JSON.stringify(record);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function streamEvents(res: ServerResponse, events: number, gated: boolean, gate: AckGate): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  for (let i = 0; i < events; i++) {
    if (i > 0 && gated) await gate.wait();
    if (res.destroyed) return;
    res.write(`data: ${i}\n\n`);
  }
  res.end();
}

async function streamBytes(res: ServerResponse, total: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  const chunk = Buffer.alloc(Math.min(BYTES_CHUNK, total), 0x61);
  let left = total;
  while (left > 0 && !res.destroyed) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= part.length;
    if (!res.write(part)) await drainedOrClosed(res);
  }
  res.end();
}

/** Resolves when `res` drains or closes, leaving no listener behind. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}
