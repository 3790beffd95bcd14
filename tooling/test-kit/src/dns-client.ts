import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import { decode, encode, RECURSION_DESIRED, type Answer, type DecodedPacket, type OptAnswer, type Question, type RecordType, type TxtData } from 'dns-packet';

/** What {@link queryDns} asks, and how. */
export interface DnsQueryOptions {
  /** The server's address; default `127.0.0.1`. */
  readonly host?: string;
  /** The server's port (UDP or TCP, per `transport`). */
  readonly port: number;
  /** The name asked for, sent as written (case and trailing dot included). */
  readonly name: string;
  /** The question type; default `A`. */
  readonly type?: RecordType;
  /** `udp` (default) sends one datagram; `tcp` sends one message with its 2-byte length prefix (RFC 1035 4.2.2). */
  readonly transport?: 'udp' | 'tcp';
  /** Add an EDNS OPT record advertising this UDP payload size; without it the query has no EDNS. */
  readonly ednsUdpSize?: number | undefined;
  /** Set RD (recursion desired); default true. */
  readonly recursionDesired?: boolean;
  /** Reject when no answer arrived within this many milliseconds; default 3000. */
  readonly timeoutMs?: number;
}

/** The header flags of a response. */
export interface DnsHeaderFlags {
  /** QR: the message is a response. */
  readonly qr: boolean;
  /** AA: the answer is authoritative. */
  readonly aa: boolean;
  /** TC: the message was truncated; the full answer needs TCP. */
  readonly tc: boolean;
  /** RD: recursion desired (copied from the query). */
  readonly rd: boolean;
  /** RA: recursion available. */
  readonly ra: boolean;
  /** AD: authentic data. */
  readonly ad: boolean;
  /** CD: checking disabled. */
  readonly cd: boolean;
}

/** Record types whose data is one address or name. */
type NameRecordType = 'A' | 'AAAA' | 'CNAME' | 'DNAME' | 'NS' | 'PTR';

/**
 * One resource record of a response. Names are as the server wrote them (no trailing dot);
 * TXT data is its character-strings decoded as UTF-8; other types keep `dns-packet`'s form.
 */
export type DnsRecord =
  | { readonly name: string; readonly type: NameRecordType; readonly ttl: number; readonly data: string }
  | { readonly name: string; readonly type: 'TXT'; readonly ttl: number; readonly data: readonly string[] }
  | { readonly name: string; readonly type: Exclude<RecordType, NameRecordType | 'TXT' | 'OPT'>; readonly ttl: number; readonly data: unknown };

/** A decoded DNS response. */
export interface DnsResponse {
  readonly id: number;
  /** The response code by name: `NOERROR`, `FORMERR`, `SERVFAIL`, `NXDOMAIN`, `NOTIMP`, `REFUSED` or `RCODE<n>`. */
  readonly rcode: string;
  readonly flags: DnsHeaderFlags;
  readonly questions: readonly Question[];
  readonly answers: readonly DnsRecord[];
  readonly authorities: readonly DnsRecord[];
  /** The additional section without the OPT pseudo-record (see `ednsUdpSize`). */
  readonly additionals: readonly DnsRecord[];
  /** The UDP payload size of the response's OPT record; undefined when it has none. */
  readonly ednsUdpSize: number | undefined;
  /** Length of the response message in bytes (without the TCP length prefix). */
  readonly size: number;
}

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const DEFAULT_TIMEOUT_MS = 3000;

/**
 * Sends one DNS query over UDP or TCP and resolves with the decoded response. Asynchronous
 * throughout, so the server may run in the calling process. Over UDP, datagrams with another
 * id are ignored; a truncated answer is returned as is (TC set), never retried over TCP.
 * Rejects on timeout, on a refused or closed connection, and on a response that does not decode.
 */
export async function queryDns(options: DnsQueryOptions): Promise<DnsResponse> {
  const id = randomInt(0, 0x10000);
  const query = encode({
    type: 'query',
    id,
    flags: options.recursionDesired === false ? 0 : RECURSION_DESIRED,
    questions: [{ name: options.name, type: options.type ?? 'A', class: 'IN' }],
    additionals: options.ednsUdpSize === undefined ? [] : [optRecord(options.ednsUdpSize)],
  });
  const host = options.host ?? '127.0.0.1';
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const transport = options.transport ?? 'udp';
  const what = `${options.name} ${options.type ?? 'A'} from ${host}:${options.port} over ${transport}`;
  const message = transport === 'tcp' ? await exchangeTcp(host, options.port, query, timeoutMs, what) : await exchangeUdp(host, options.port, query, id, timeoutMs, what);
  const packet = decode(message);
  if (packet.id !== id) throw new Error(`DNS answer for ${what} has id ${packet.id}, the query had ${id}`);
  return toResponse(packet, message.length);
}

function optRecord(udpPayloadSize: number): OptAnswer {
  return { type: 'OPT', name: '.', udpPayloadSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

/** Sends `query` in one datagram and resolves with the first reply carrying its id. */
function exchangeUdp(host: string, port: number, query: Buffer, id: number, timeoutMs: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no DNS answer for ${what} within ${timeoutMs} ms`)), timeoutMs);
    const finish = (outcome: Buffer | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const fail = (error: Error): void => finish(new Error(`DNS query for ${what} failed: ${error.message}`));
    socket.on('error', fail);
    socket.on('message', (reply) => {
      if (reply.length >= 2 && reply.readUInt16BE(0) === id) finish(reply);
    });
    // A connected socket takes datagrams from the server only, and reports an ICMP refusal as an error.
    socket.connect(port, host, () => socket.send(query, (error) => error && fail(error)));
  });
}

/** Sends `query` with its length prefix on a new TCP connection and resolves with the one framed reply. */
function exchangeTcp(host: string, port: number, query: Buffer, timeoutMs: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let received = Buffer.alloc(0);
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no DNS answer for ${what} within ${timeoutMs} ms`)), timeoutMs);
    const finish = (outcome: Buffer | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    socket.on('error', (error) => finish(new Error(`DNS query for ${what} failed: ${error.message}`)));
    socket.on('close', () => finish(new Error(`the server closed the connection after ${received.length} bytes, before a complete DNS answer for ${what}`)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) finish(received.subarray(2, 2 + received.readUInt16BE(0)));
    });
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(query.length);
    socket.write(Buffer.concat([prefix, query]));
  });
}

function toResponse(packet: DecodedPacket, size: number): DnsResponse {
  const additionals = packet.additionals ?? [];
  const opt = additionals.find((record): record is OptAnswer => record.type === 'OPT');
  const rcode = (packet.flags ?? 0) & 0xf;
  return {
    id: packet.id ?? 0,
    rcode: RCODE_NAMES[rcode] ?? `RCODE${rcode}`,
    flags: { qr: packet.flag_qr, aa: packet.flag_aa, tc: packet.flag_tc, rd: packet.flag_rd, ra: packet.flag_ra, ad: packet.flag_ad, cd: packet.flag_cd },
    questions: packet.questions ?? [],
    answers: toRecords(packet.answers),
    authorities: toRecords(packet.authorities),
    additionals: toRecords(additionals),
    ednsUdpSize: opt?.udpPayloadSize,
    size,
  };
}

/** Normalizes decoded records, dropping OPT: TXT strings decoded, a missing TTL as 0. */
function toRecords(records: readonly Answer[] | undefined): DnsRecord[] {
  return (records ?? []).flatMap((record): DnsRecord[] => {
    switch (record.type) {
      case 'OPT':
        return [];
      case 'TXT':
        return [{ name: record.name, type: 'TXT', ttl: record.ttl ?? 0, data: txtStrings(record.data) }];
      case 'A':
      case 'AAAA':
      case 'CNAME':
      case 'DNAME':
      case 'NS':
      case 'PTR':
        return [{ name: record.name, type: record.type, ttl: record.ttl ?? 0, data: record.data }];
      default:
        return [{ name: record.name, type: record.type, ttl: record.ttl ?? 0, data: record.data }];
    }
  });
}

function txtStrings(data: TxtData): string[] {
  return (Array.isArray(data) ? data : [data]).map((part) => (typeof part === 'string' ? part : part.toString('utf8')));
}
