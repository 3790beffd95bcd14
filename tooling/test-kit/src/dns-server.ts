import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { decode, encode, type DecodedPacket } from 'dns-packet';
import { answerQuery, indexRecords, truncated, type DnsRecordSet } from './dns-answer.js';
import { hostForUrl } from './host.js';

/** One query the DNS test server received. */
export interface DnsQueryRecord {
  name: string;
  type: string;
  protocol: 'udp' | 'tcp';
}

/** A running DNS test server (UDP and TCP on the same port). */
export interface DnsTestServer {
  readonly address: string;
  readonly port: number;
  /** "127.0.0.1:PORT", usable as dns.upstream_resolver */
  readonly resolver: string;
  /** Every query received, in order. */
  readonly queries: DnsQueryRecord[];
  /** Closes both sockets and every open TCP connection. */
  close(): Promise<void>;
}

/** Options for {@link startDnsServer}. */
export interface DnsServerOptions {
  /** Records by name (case-insensitive, trailing dot optional). */
  records: Record<string, DnsRecordSet>;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** Port for both UDP and TCP; default 0 (one ephemeral port free on both). */
  port?: number;
  /** TTL of every answer, in seconds; default 60. */
  ttl?: number;
}

/** Largest DNS message sent over UDP; longer answers are truncated (TC) so clients retry over TCP. */
const MAX_UDP_MESSAGE = 512;
const PORT_ATTEMPTS = 20;

/**
 * Starts an authoritative DNS server for the given records, over UDP and TCP on one port.
 * Answers A/AAAA/TXT/CNAME (following CNAME chains), NXDOMAIN for unknown names, and sets TC
 * over UDP when the answer exceeds 512 bytes (the full answer is served over TCP).
 */
export async function startDnsServer(options: DnsServerOptions): Promise<DnsTestServer> {
  const host = options.host ?? '127.0.0.1';
  const table = indexRecords(options.records);
  const ttl = options.ttl ?? 60;
  const queries: DnsQueryRecord[] = [];

  const answer = (message: Buffer, protocol: 'udp' | 'tcp'): Buffer | undefined => {
    let query: DecodedPacket;
    try {
      query = decode(message);
    } catch {
      return undefined;
    }
    const question = query.questions?.[0];
    if (question) queries.push({ name: question.name, type: question.type, protocol });
    const response = answerQuery(query, table, ttl);
    const encoded = encode(response);
    return protocol === 'udp' && encoded.length > MAX_UDP_MESSAGE ? encode(truncated(response)) : encoded;
  };

  const { udp, tcp, port } = await bindBoth(host, options.port ?? 0);
  const sockets = new Set<Socket>();

  udp.on('message', (message, peer) => {
    const reply = answer(message, 'udp');
    if (reply) udp.send(reply, peer.port, peer.address);
  });
  tcp.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const reply = answer(pending.subarray(2, 2 + length), 'tcp');
        pending = pending.subarray(2 + length);
        if (!reply) {
          socket.destroy();
          return;
        }
        const frame = Buffer.alloc(2 + reply.length);
        frame.writeUInt16BE(reply.length, 0);
        reply.copy(frame, 2);
        socket.write(frame);
      }
    });
  });

  return {
    address: host,
    port,
    resolver: `${hostForUrl(host)}:${port}`,
    queries,
    async close() {
      const tcpClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await Promise.all([tcpClosed, new Promise<void>((resolve) => udp.close(() => resolve()))]);
    },
  };
}

/** Binds UDP and TCP on the same port; with port 0, retries until one port is free on both. */
async function bindBoth(host: string, port: number): Promise<{ udp: UdpSocket; tcp: Server; port: number }> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (port === 0 ? PORT_ATTEMPTS : 1); attempt++) {
    const udp = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const udpPort = udp.address().port;
    const tcp = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(udpPort, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      return { udp, tcp, port: (tcp.address() as AddressInfo).port };
    } catch (error) {
      lastError = error;
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    }
  }
  throw lastError;
}
