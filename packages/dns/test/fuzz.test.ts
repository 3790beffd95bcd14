import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode, type DecodedPacket } from 'dns-packet';
import { startDnsServer, type DnsTestServer } from '@proxy/test-kit';
import { startTestServer, type TestDnsServer } from './support.js';

/** A small seeded PRNG (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const next = random(0x5eed);
const int = (max: number): number => Math.floor(next() * max);
const bytes = (length: number): Buffer => Buffer.from(Array.from({ length }, () => int(256)));

const VALID_NAMES = ['api.example.com', 'static.test', 'alias.test', 'db.corp.test', 'Mixed.Case.Example'];
const TYPES = ['A', 'AAAA', 'TXT', 'CNAME', 'MX'] as const;

function validQuery(id = int(0x10000)): Buffer {
  return encode({
    type: 'query',
    id,
    flags: 1 << 8,
    questions: [{ name: VALID_NAMES[int(VALID_NAMES.length)] as string, type: TYPES[int(TYPES.length)] as (typeof TYPES)[number] }],
    ...(next() < 0.5 ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: int(5000), extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] } : {}),
  });
}

/** Random bytes, valid queries cut short, valid queries with flipped bytes, and responses. */
function fuzzPacket(): Buffer {
  const kind = int(4);
  if (kind === 0) return bytes(int(700));
  const query = validQuery();
  if (kind === 1) return query.subarray(0, int(query.length));
  if (kind === 2) {
    for (let flips = 1 + int(3); flips > 0; flips--) query[int(query.length)] = int(256);
    return query;
  }
  query[2] = (query[2] ?? 0) | 0x80; // QR: a response, which a server must not answer
  return query;
}

function framed(message: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

/** Sends a query for `name` and resolves with its answer (matched by id and name: fuzz answers arrive too). */
function udpExchange(socket: UdpSocket, port: number, id: number, name: string): Promise<DecodedPacket> {
  const message = encode({ type: 'query', id, flags: 1 << 8, questions: [{ name, type: 'A' }] });
  return new Promise((resolve) => {
    const onMessage = (reply: Buffer): void => {
      const packet = decode(reply);
      if (packet.id !== id || packet.questions?.[0]?.name !== name) return;
      socket.off('message', onMessage);
      resolve(packet);
    };
    socket.on('message', onMessage);
    socket.send(message, port, '127.0.0.1');
  });
}

let upstream: DnsTestServer;
let dns: TestDnsServer;

beforeAll(async () => {
  upstream = await startDnsServer({ records: { 'db.corp.test': { A: ['192.0.2.7'] } } });
  dns = await startTestServer({
    upstreamResolver: upstream.resolver,
    passthrough: ['*.corp.test'],
    records: [
      { name: 'static.test', type: 'A', value: '192.0.2.1' },
      { name: 'alias.test', type: 'CNAME', value: 'static.test' },
    ],
  });
});

afterAll(async () => {
  await Promise.all([dns?.server.close(), upstream?.close()]);
});

describe('fuzz', () => {
  it('survives thousands of random, truncated and mutated packets over UDP and TCP, then still answers', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    // In batches, each followed by a query whose answer shows the batch was processed (UDP
    // packets on one socket are handled in arrival order; a burst would overflow the buffer).
    for (let batch = 0; batch < 40; batch++) {
      for (let i = 0; i < 100; i++) udp.send(fuzzPacket(), dns.port, '127.0.0.1');
      const sync = await udpExchange(udp, dns.port, 60000 + batch, 'sync.example.com');
      expect(sync.answers?.[0]).toMatchObject({ name: 'sync.example.com', data: '10.0.0.1' });
    }
    const afterUdp = { ...dns.server.stats };
    expect(afterUdp.malformed).toBeGreaterThan(1000);

    const connections = Array.from({ length: 20 }, async (_, index) => {
      const socket = connect({ host: '127.0.0.1', port: dns.port });
      socket.on('error', () => socket.destroy()); // the server may close first
      socket.resume(); // discard the answers, so the end of the stream is seen
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      // Even connections: well-framed fuzz messages. Odd ones: frames mixed with raw noise (the
      // framing desynchronizes), the stream cut at a random point. Both in random-sized writes.
      const frames = Array.from({ length: 50 }, () => (index % 2 === 0 || next() < 0.8 ? framed(fuzzPacket()) : bytes(int(40))));
      const stream = Buffer.concat(frames);
      const cut = index % 2 === 0 ? stream : stream.subarray(0, int(stream.length));
      for (let offset = 0; offset < cut.length; ) {
        const size = 1 + int(300);
        socket.write(cut.subarray(offset, offset + size));
        offset += size;
      }
      socket.end();
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    });
    await Promise.all(connections);

    const udpAnswer = await udpExchange(udp, dns.port, 4242, 'after.example.com');
    expect(udpAnswer.answers?.[0]).toMatchObject({ name: 'after.example.com', type: 'A', data: '10.0.0.1' });
    const passthrough = await udpExchange(udp, dns.port, 4343, 'db.corp.test');
    expect(passthrough.answers?.[0]).toMatchObject({ data: '192.0.2.7' });
    udp.close();

    const tcpAnswer = await new Promise<DecodedPacket>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: dns.port }, () => {
        socket.write(framed(encode({ type: 'query', id: 4444, flags: 1 << 8, questions: [{ name: 'static.test', type: 'A' }] })));
      });
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        resolve(decode(chunk.subarray(2)));
        socket.destroy();
      });
    });
    expect(tcpAnswer.answers?.[0]).toMatchObject({ name: 'static.test', data: '192.0.2.1' });

    const { stats } = dns.server;
    expect(stats.malformed).toBeGreaterThan(afterUdp.malformed + 100);
    expect(stats.queries).toBeGreaterThan(100);
    expect(dns.logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});
