import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRequest } from '@proxy/core';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { DEFAULT_CLIENT_LIMITS } from '../src/index.js';
import { echoed, send, startEngine, type InlineTransform, type TestEngine } from './support.js';

/** A client on a raw socket: what it received, and when the proxy closed the connection. */
interface RawClient {
  readonly socket: Socket;
  readonly received: () => string;
  /** Resolves with the milliseconds from connecting to the close. */
  readonly closed: Promise<number>;
}

function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const closed = new Promise<number>((done) => socket.on('close', () => done(Date.now() - started)));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks).toString('latin1'), closed }));
    socket.once('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads every request body (as body_capture or secrets match_body would). */
const bodyReader: InlineTransform = {
  name: 'reader',
  transform: {
    async onRequest(request: ProxyRequest) {
      await request.body.read();
    },
  },
};

let echo: EchoServer;
let upstream: string;

beforeAll(async () => {
  echo = await startEchoServer();
  upstream = `http://127.0.0.1:${echo.port}`;
});

afterAll(async () => {
  await echo?.close();
});

describe('defaults', () => {
  it('guards every listener with finite header, request and body timeouts and a connection limit', () => {
    expect(DEFAULT_CLIENT_LIMITS.headerTimeoutMs).toBeGreaterThan(0);
    expect(DEFAULT_CLIENT_LIMITS.requestTimeoutMs).toBeGreaterThan(0);
    expect(DEFAULT_CLIENT_LIMITS.bodyIdleTimeoutMs).toBeGreaterThan(0);
    expect(DEFAULT_CLIENT_LIMITS.maxConnections).toBeGreaterThan(0);
    expect(DEFAULT_CLIENT_LIMITS.maxBufferedBodyBytes).toBeGreaterThan(0);
  });
});

describe('slow clients (slowloris)', () => {
  let proxy: TestEngine;

  beforeAll(async () => {
    proxy = await startEngine({ tunnelListen: '127.0.0.1:0', tlsMode: 'sni-only', clientLimits: { headerTimeoutMs: 1_000, bodyIdleTimeoutMs: 1_000 } });
  });

  afterEach(async () => {
    await proxy.use();
  });

  afterAll(async () => {
    await proxy?.close();
  });

  for (const kind of ['http', 'tunnel'] as const) {
    it(`closes a ${kind} listener connection that trickles header lines (408)`, async () => {
      const client = await rawClient(proxy.port(kind));
      const firstLine = kind === 'http' ? `GET ${upstream}/slow HTTP/1.1\r\n` : `CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\n`;
      client.socket.write(firstLine);
      // One header line every 300 ms, forever: each line is progress, but the head never ends.
      const trickle = setInterval(() => client.socket.write(`X-Slow-${Date.now()}: 1\r\n`), 300);
      try {
        const ms = await client.closed;
        expect(ms).toBeLessThan(4_000);
        expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
      } finally {
        clearInterval(trickle);
      }
      expect(proxy.logger.lines.some((l) => l.msg?.includes('client too slow') === true)).toBe(true);
    });
  }

  it('answers 408 with an audit record when a body stops arriving while a transform reads it', async () => {
    await proxy.use(bodyReader);
    const client = await rawClient(proxy.port());
    client.socket.write(`POST ${upstream}/stalled-read HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: 100\r\n\r\n0123456789`);
    const ms = await client.closed;
    expect(ms).toBeLessThan(4_000);
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
    const audit = await proxy.audit((a) => a.path === '/stalled-read');
    expect(audit).toMatchObject({ status_code: 408, action: 'reject', rejected_by: 'engine', reason: 'body_timeout' });
  });

  it('answers 408 and cancels the upstream call when a streamed body stops arriving', async () => {
    const client = await rawClient(proxy.port());
    client.socket.write(`POST ${upstream}/stalled-stream HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: 100\r\n\r\n0123456789`);
    await client.closed;
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
    const audit = await proxy.audit((a) => a.path === '/stalled-stream');
    expect(audit).toMatchObject({ status_code: 408, reason: 'body_timeout' });
  });

  it('keeps a connection whose body keeps arriving, however slowly, and one idle while the upstream answers', async () => {
    const client = await rawClient(proxy.port());
    client.socket.write(`POST ${upstream}/slow-but-steady HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: 8\r\n\r\n`);
    for (let i = 0; i < 8; i++) {
      await sleep(400);
      client.socket.write('x');
    }
    // The request is complete; the keep-alive connection may now sit idle past the body timeout.
    await sleep(1_500);
    expect(client.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(client.socket.destroyed).toBe(false);
    client.socket.write(`GET ${upstream}/second HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
    await sleep(300);
    expect(client.received().match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    client.socket.destroy();
  });
});

describe('connection limit', () => {
  it('closes connections beyond the limit on arrival and logs it', async () => {
    const proxy = await startEngine({ clientLimits: { maxConnections: 2 } });
    try {
      const held = [await rawClient(proxy.port()), await rawClient(proxy.port())];
      await sleep(100);
      const third = await rawClient(proxy.port());
      third.socket.write(`GET ${upstream}/third HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
      await third.closed;
      expect(third.received()).toBe('');
      expect(proxy.logger.lines.some((l) => l.level === 'warn' && (l.fields as { reason?: string }).reason === 'connection_limit')).toBe(true);
      for (const c of held) c.socket.destroy();
      await Promise.all(held.map((c) => c.closed));
      await sleep(100);
      const r = await send(proxy.port(), { target: `${upstream}/after` });
      expect(r.status).toBe(200);
    } finally {
      await proxy.close();
    }
  });
});

describe('memory for buffered bodies', () => {
  it('refuses with 503 and an audit record when every buffered body together would exceed the budget, and recovers', async () => {
    const proxy = await startEngine({ clientLimits: { maxBufferedBodyBytes: 64 * 1024, maxConnectionBufferedBytes: 0 } });
    try {
      await proxy.use(bodyReader);
      // A first client holds 48 KiB of an unfinished 60 KiB body.
      const holder = await rawClient(proxy.port());
      holder.socket.write(`POST ${upstream}/holder HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: ${60 * 1024}\r\n\r\n`);
      holder.socket.write(Buffer.alloc(48 * 1024, 0x61));
      await sleep(200);
      const second = await send(proxy.port(), { method: 'POST', target: `${upstream}/second`, body: Buffer.alloc(32 * 1024, 0x62) });
      expect(second.status).toBe(503);
      expect(await proxy.audit((a) => a.path === '/second')).toMatchObject({ status_code: 503, action: 'error', rejected_by: 'reader', reason: 'body_buffer_budget_exhausted' });
      // The holder finishes; its bytes go back to the pool.
      holder.socket.write(Buffer.alloc(12 * 1024, 0x61));
      await proxy.audit((a) => a.path === '/holder');
      holder.socket.destroy();
      const third = await send(proxy.port(), { method: 'POST', target: `${upstream}/third`, body: Buffer.alloc(32 * 1024, 0x63) });
      expect(third.status).toBe(200);
      expect(echoed(third.body).bodyBytes).toBe(32 * 1024);
    } finally {
      await proxy.close();
    }
  });

  it('refuses with 413 when pipelined requests on one connection would buffer more than its budget', async () => {
    const proxy = await startEngine({ clientLimits: { maxConnectionBufferedBytes: 48 * 1024 } });
    try {
      await proxy.use(bodyReader);
      const client = await rawClient(proxy.port());
      const body = 'p'.repeat(30 * 1024);
      // Two requests at once: while the first waits for its (slow) upstream, the second is read.
      const head = (path: string): string => `POST ${upstream}${path} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: ${body.length}\r\n\r\n`;
      client.socket.write(head('/delay/800') + body + head('/delay/801') + body);
      const second = await proxy.audit((a) => a.path === '/delay/801');
      expect(second).toMatchObject({ status_code: 413, reason: 'connection_buffer_exceeded' });
      client.socket.destroy();
    } finally {
      await proxy.close();
    }
  });
});

describe('head size after transforms', () => {
  it('refuses with 413 a request whose transforms grew its headers past the limit', async () => {
    const proxy = await startEngine({ clientLimits: { maxHeadBytes: 4096 } });
    try {
      await proxy.use({ name: 'grower', transform: { onRequest: (request) => void request.headers.set('X-Big', 'g'.repeat(8192)) } });
      const before = echo.requests.length;
      const r = await send(proxy.port(), { target: `${upstream}/grown` });
      expect(r.status).toBe(413);
      expect(echo.requests.length).toBe(before);
      expect(await proxy.audit((a) => a.path === '/grown')).toMatchObject({ action: 'reject', rejected_by: 'engine', reason: 'header_too_large' });
    } finally {
      await proxy.close();
    }
  });
});
