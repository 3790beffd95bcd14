import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, encode, type DecodedPacket } from 'dns-packet';
import { startTestServer, type TestDnsServer } from './support.js';

const RECURSION_DESIRED = 1 << 8;

function query(id: number, name: string, type: 'A' | 'AAAA' = 'A'): Buffer {
  return encode({ type: 'query', id, flags: RECURSION_DESIRED, questions: [{ name, type }] });
}

function framed(message: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

/** A raw TCP client: collects every framed response and notes when the server closes. */
interface RawClient {
  readonly socket: Socket;
  readonly responses: DecodedPacket[];
  /** Resolves once `count` responses arrived. */
  received(count: number): Promise<DecodedPacket[]>;
  /** Resolves when the connection is closed. */
  readonly closed: Promise<void>;
}

async function rawClient(port: number): Promise<RawClient> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const responses: DecodedPacket[] = [];
  const waiters: { count: number; resolve: (r: DecodedPacket[]) => void }[] = [];
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const end = 2 + pending.readUInt16BE(0);
      responses.push(decode(pending.subarray(2, end)));
      pending = pending.subarray(end);
    }
    for (const waiter of waiters.filter((w) => responses.length >= w.count)) waiter.resolve(responses.slice(0, waiter.count));
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    responses,
    closed,
    received: (count) =>
      responses.length >= count ? Promise.resolve(responses.slice(0, count)) : new Promise((resolve) => waiters.push({ count, resolve })),
  };
}

let dns: TestDnsServer | undefined;

afterEach(async () => {
  await dns?.server.close();
  dns = undefined;
});

describe('DNS over TCP', () => {
  it('answers several queries sent in one write', async () => {
    dns = await startTestServer({ records: [{ name: 'static.test', type: 'A', value: '192.0.2.1' }] });
    const client = await rawClient(dns.port);
    client.socket.write(Buffer.concat([framed(query(1, 'a.example.com')), framed(query(2, 'static.test')), framed(query(3, 'b.example.com'))]));
    const responses = await client.received(3);
    const byId = new Map(responses.map((r) => [r.id, r]));
    expect([...byId.keys()].sort()).toEqual([1, 2, 3]);
    expect(byId.get(1)?.answers?.[0]).toMatchObject({ name: 'a.example.com', type: 'A', data: '10.0.0.1' });
    expect(byId.get(2)?.answers?.[0]).toMatchObject({ name: 'static.test', type: 'A', data: '192.0.2.1' });
    client.socket.destroy();
  });

  it('reassembles queries that arrive a byte at a time', async () => {
    dns = await startTestServer();
    const client = await rawClient(dns.port);
    client.socket.setNoDelay(true);
    const bytes = Buffer.concat([framed(query(7, 'slow.example.com')), framed(query(8, 'slow.example.com', 'AAAA'))]);
    for (const byte of bytes) {
      client.socket.write(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const responses = await client.received(2);
    expect(responses.map((r) => r.id).sort()).toEqual([7, 8]);
    expect(responses.find((r) => r.id === 7)?.answers?.[0]).toMatchObject({ data: '10.0.0.1' });
    client.socket.destroy();
  });

  it('answers a query whose client half-closes right after sending it', async () => {
    dns = await startTestServer();
    const client = await rawClient(dns.port);
    client.socket.end(framed(query(9, 'halfclose.example.com')));
    await client.closed;
    expect(client.responses.map((r) => r.id)).toEqual([9]);
  });

  it('closes a connection after the per-connection query limit, answering the queries up to it', async () => {
    dns = await startTestServer({ tcpMaxQueriesPerConnection: 3 });
    const client = await rawClient(dns.port);
    client.socket.write(Buffer.concat([1, 2, 3, 4, 5].map((id) => framed(query(id, `q${id}.example.com`)))));
    await client.closed;
    expect(client.responses.map((r) => r.id).sort()).toEqual([1, 2, 3]);
    expect(dns.server.stats.queries).toBe(3);
  });

  it('closes an idle connection', async () => {
    dns = await startTestServer({ tcpIdleTimeoutMs: 100 });
    const client = await rawClient(dns.port);
    client.socket.write(framed(query(1, 'idle.example.com')));
    await client.received(1);
    await client.closed;
    expect(client.socket.destroyed).toBe(true);
  });

  it('skips a malformed message inside a well-framed stream and answers the next one', async () => {
    dns = await startTestServer();
    const client = await rawClient(dns.port);
    client.socket.write(Buffer.concat([framed(Buffer.from('not a dns message')), framed(query(4, 'after.example.com'))]));
    const [response] = await client.received(1);
    expect(response?.id).toBe(4);
    expect(dns.server.stats.malformed).toBe(1);
    client.socket.destroy();
  });
});
