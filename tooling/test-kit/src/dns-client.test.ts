import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { decode, encode, type DecodedPacket } from 'dns-packet';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { queryDns, startDnsServer, type DnsTestServer } from './index.js';

let server: DnsTestServer;

beforeAll(async () => {
  server = await startDnsServer({
    ttl: 42,
    records: {
      'api.example.test': { A: ['192.0.2.1', '192.0.2.2'], AAAA: ['2001:db8::1'] },
      'alias.example.test': { CNAME: 'api.example.test' },
      'long.example.test': { TXT: ['y'.repeat(400)] },
    },
  });
});

afterAll(async () => {
  await server.close();
});

/** A scripted UDP peer: records each query and answers it with whatever `reply` returns. */
interface RawUdpServer {
  readonly port: number;
  readonly queries: DecodedPacket[];
  close(): Promise<void>;
}

let raw: { close(): Promise<void> } | undefined;

afterEach(async () => {
  await raw?.close();
  raw = undefined;
});

async function rawUdpServer(reply: (query: DecodedPacket) => readonly Buffer[]): Promise<RawUdpServer> {
  const socket: UdpSocket = createSocket('udp4');
  const queries: DecodedPacket[] = [];
  socket.on('message', (message, peer) => {
    const query = decode(message);
    queries.push(query);
    for (const datagram of reply(query)) socket.send(datagram, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const server = { port: socket.address().port, queries, close: () => new Promise<void>((resolve) => socket.close(() => resolve())) };
  raw = server;
  return server;
}

/** A scripted TCP peer: `onData` gets the connection and every byte received on it so far. */
async function rawTcpServer(onData: (socket: Socket, received: Buffer) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const tcp: Server = createServer((socket) => {
    sockets.add(socket);
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      onData(socket, received);
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  raw = {
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
  return (tcp.address() as AddressInfo).port;
}

/** A response to `query` with one A record, optionally with another id or an OPT record. */
function answerFor(query: DecodedPacket, address: string, extra: { id?: number; ednsUdpSize?: number } = {}): Buffer {
  return encode({
    type: 'response',
    id: extra.id ?? query.id ?? 0,
    flags: 1 << 15,
    questions: query.questions ?? [],
    answers: [{ type: 'A', name: query.questions?.[0]?.name ?? '', ttl: 9, data: address }],
    additionals:
      extra.ednsUdpSize === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: extra.ednsUdpSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
}

describe('queryDns against the DNS test server', () => {
  it.each(['udp', 'tcp'] as const)('asks over %s and returns the decoded answer with TTLs and header flags', async (transport) => {
    const before = server.queries.length;
    const response = await queryDns({ port: server.port, name: 'alias.example.test', transport });
    expect(server.queries.slice(before)).toEqual([{ name: 'alias.example.test', type: 'A', protocol: transport }]);
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags).toEqual({ qr: true, aa: true, tc: false, rd: true, ra: true, ad: false, cd: false });
    expect(response.questions).toEqual([{ name: 'alias.example.test', type: 'A', class: 'IN' }]);
    expect(response.answers).toEqual([
      { name: 'alias.example.test', type: 'CNAME', ttl: 42, data: 'api.example.test' },
      { name: 'api.example.test', type: 'A', ttl: 42, data: '192.0.2.1' },
      { name: 'api.example.test', type: 'A', ttl: 42, data: '192.0.2.2' },
    ]);
    expect(response.ednsUdpSize).toBeUndefined();
  });

  it('asks for the given type and decodes TXT strings', async () => {
    expect((await queryDns({ port: server.port, name: 'api.example.test', type: 'AAAA' })).answers).toEqual([
      { name: 'api.example.test', type: 'AAAA', ttl: 42, data: '2001:db8::1' },
    ]);
    const txt = await queryDns({ port: server.port, name: 'long.example.test', type: 'TXT', transport: 'tcp' });
    expect(txt.answers).toEqual([{ name: 'long.example.test', type: 'TXT', ttl: 42, data: ['y'.repeat(255), 'y'.repeat(145)] }]);
  });

  it('returns NXDOMAIN as the rcode rather than rejecting', async () => {
    const response = await queryDns({ port: server.port, name: 'nope.example.test' });
    expect(response.rcode).toBe('NXDOMAIN');
    expect(response.answers).toEqual([]);
  });
});

describe('queryDns on the wire', () => {
  it('adds an OPT record with the requested UDP size only when asked, and reads the one in the answer', async () => {
    const peer = await rawUdpServer((query) => [answerFor(query, '192.0.2.9', { ednsUdpSize: 1232 })]);
    const withEdns = await queryDns({ port: peer.port, name: 'edns.test', ednsUdpSize: 4096 });
    const withoutEdns = await queryDns({ port: peer.port, name: 'plain.test', type: 'TXT', recursionDesired: false });
    const [first, second] = peer.queries;
    expect(first?.additionals).toMatchObject([{ type: 'OPT', udpPayloadSize: 4096 }]);
    expect(first?.flag_rd).toBe(true);
    expect(second?.additionals).toEqual([]);
    expect(second?.flag_rd).toBe(false);
    expect(second?.questions).toEqual([{ name: 'plain.test', type: 'TXT', class: 'IN' }]);
    expect(withEdns.ednsUdpSize).toBe(1232);
    expect(withEdns.additionals).toEqual([]);
    expect(withEdns.size).toBe(answerFor(first!, '192.0.2.9', { ednsUdpSize: 1232 }).length);
    expect(withoutEdns.answers.map((a) => a.data)).toEqual(['192.0.2.9']);
  });

  it('ignores a UDP datagram with another id and takes the answer to its own query', async () => {
    const peer = await rawUdpServer((query) => [answerFor(query, '203.0.113.66', { id: ((query.id ?? 0) + 1) & 0xffff }), answerFor(query, '192.0.2.10')]);
    const response = await queryDns({ port: peer.port, name: 'spoofed.test' });
    expect(response.id).toBe(peer.queries[0]?.id);
    expect(response.answers.map((a) => a.data)).toEqual(['192.0.2.10']);
  });

  it('rejects after the timeout when no answer comes', async () => {
    const peer = await rawUdpServer(() => []);
    await expect(queryDns({ port: peer.port, name: 'silent.test', timeoutMs: 200 })).rejects.toThrow(/no DNS answer for silent\.test A .* within 200 ms/);
    expect(peer.queries).toHaveLength(1);
  });

  it('frames the TCP query with its length and reassembles an answer that arrives a byte at a time', async () => {
    const prefixes: number[] = [];
    const port = await rawTcpServer((socket, received) => {
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      prefixes.push(received.readUInt16BE(0), received.length - 2);
      const reply = answerFor(decode(received.subarray(2)), '192.0.2.11');
      const framed = Buffer.concat([Buffer.from([reply.length >> 8, reply.length & 0xff]), reply]);
      const drip = (offset: number): void => {
        if (offset < framed.length) socket.write(framed.subarray(offset, offset + 1), () => setImmediate(drip, offset + 1));
      };
      socket.setNoDelay(true);
      drip(0);
    });
    const response = await queryDns({ port, name: 'slow.test', transport: 'tcp' });
    expect(prefixes[0]).toBe(prefixes[1]);
    expect(response.answers.map((a) => a.data)).toEqual(['192.0.2.11']);
  });

  it('rejects when the TCP server closes before a whole answer', async () => {
    const port = await rawTcpServer((socket) => socket.end(Buffer.from([0, 40, 1, 2, 3])));
    await expect(queryDns({ port, name: 'cut.test', transport: 'tcp' })).rejects.toThrow(/closed the connection after 5 bytes/);
  });
});
