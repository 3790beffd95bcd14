import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { createTestPki } from '@proxy/test-kit';
import { Client } from 'undici';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { connectPooled, READ_BUFFER_BYTES, spliceReads } from './pooled-read-socket.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server that runs `onConnection` for each connection; resolves with its port. */
async function serve(onConnection: (socket: Socket) => void): Promise<number> {
  const server = createServer(onConnection);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Writes `payload` in 64 KiB pieces, honouring back-pressure, then ends. */
function sendAll(socket: Socket, payload: Buffer): void {
  let at = 0;
  const more = (): void => {
    while (at < payload.length) {
      const piece = payload.subarray(at, at + 65_536);
      at += piece.length;
      if (!socket.write(piece)) {
        socket.once('drain', more);
        return;
      }
    }
    socket.end();
  };
  more();
}

/** Reads `socket` to its end, pausing now and then as a slow reader would. */
function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let count = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (++count % 5 === 0) {
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      }
    });
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * An upstream server sending `payload`, a pooled connection to it spliced to a client socket of
 * a relay server, and a reader of that client: resolves with what the reader received.
 */
async function relay(payload: Buffer, before?: (upstream: Socket) => Promise<void>): Promise<Buffer> {
  const upstreamPort = await serve((socket) => sendAll(socket, payload));
  const relayPort = await serve((client) => {
    const upstream = connectPooled({ host: '127.0.0.1', port: upstreamPort });
    upstream.once('connect', () => {
      void (before?.(upstream) ?? Promise.resolve()).then(() => {
        expect(spliceReads(upstream, client)).toBe(true);
      });
    });
  });
  return readAll(connect({ host: '127.0.0.1', port: relayPort }));
}

describe('connectPooled', () => {
  it('is an ordinary readable stream until spliced, under back-pressure', async () => {
    const payload = randomBytes(3 * 1024 * 1024);
    const port = await serve((socket) => sendAll(socket, payload));
    const received = await readAll(connectPooled({ host: '127.0.0.1', port }));
    expect(digest(received)).toBe(digest(payload));
  });

  it('spliced, relays every byte in order to a slow client', async () => {
    const payload = randomBytes(20 * 1024 * 1024);
    const received = await relay(payload);
    expect(received.length).toBe(payload.length);
    expect(digest(received)).toBe(digest(payload));
  });

  it('writes the bytes read before the splice first', async () => {
    const payload = randomBytes(256 * 1024);
    // Wait until some bytes were read (and pushed) before splicing.
    const received = await relay(payload, (upstream) => new Promise((r) => upstream.once('readable', () => r())));
    expect(digest(received)).toBe(digest(payload));
  });

  it('never sends what a reused buffer held before: only the bytes each read filled', async () => {
    // A first tunnel fills pooled buffers with one secret-looking byte pattern...
    const first = Buffer.alloc(4 * READ_BUFFER_BYTES, 'S');
    expect((await relay(first)).equals(first)).toBe(true);
    // ...a second one carries small reads through the same buffers.
    const upstreamPort = await serve((socket) => {
      let n = 0;
      const timer = setInterval(() => {
        socket.write('ab');
        if (++n === 20) {
          clearInterval(timer);
          socket.end();
        }
      }, 2);
    });
    const relayPort = await serve((client) => {
      const upstream = connectPooled({ host: '127.0.0.1', port: upstreamPort });
      upstream.once('connect', () => spliceReads(upstream, client));
    });
    const received = await readAll(connect({ host: '127.0.0.1', port: relayPort }));
    expect(received.toString()).toBe('ab'.repeat(20));
  });

  it('carries TLS when wrapped before any splice (a tunnel whose upstream needs TLS after all)', async () => {
    const pki = await createTestPki({ names: ['localhost'] });
    onTestFinished(() => pki.remove());
    const payload = randomBytes(1024 * 1024);
    const server = createTlsServer({ cert: pki.cert, key: pki.key }, (socket) => sendAll(socket as unknown as Socket, payload));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const raw = connectPooled({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    await new Promise((r) => raw.once('connect', r));
    const secure = tlsConnect({ socket: raw, servername: 'localhost', ca: pki.caCert });
    const received = await readAll(secure as unknown as Socket);
    expect(digest(received)).toBe(digest(payload));
  });

  it('serves an HTTP client before any splice (a tunnel with plain HTTP inside)', async () => {
    const port = await serve((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello'));
    });
    const client = new Client(`http://127.0.0.1:${port}`, {
      connect: (_options, callback) => {
        const socket = connectPooled({ host: '127.0.0.1', port });
        socket.once('connect', () => callback(null, socket));
      },
    });
    const response = await client.request({ path: '/', method: 'GET' });
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('hello');
    await client.close();
  });

  it('leaves a socket it did not open to pipe', async () => {
    const port = await serve((socket) => socket.end());
    const plain = connect({ host: '127.0.0.1', port });
    const other = connect({ host: '127.0.0.1', port });
    expect(spliceReads(plain, other)).toBe(false);
    plain.destroy();
    other.destroy();
  });
});
