/**
 * Reading queries and writing responses in DNS wire format (RFC 1035, EDNS per RFC 6891),
 * on top of `dns-packet`.
 */
import { decode, encode, type Answer, type OptAnswer, type Question } from 'dns-packet';

/** Header flag bits (within the 16-bit flags word). */
export const Flags = {
  AUTHORITATIVE: 1 << 10,
  TRUNCATED: 1 << 9,
  RECURSION_DESIRED: 1 << 8,
  RECURSION_AVAILABLE: 1 << 7,
  CHECKING_DISABLED: 1 << 4,
} as const;

/** Response codes (the low four bits of the flags word). */
export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The name of a response code for logs (`NOERROR`, `SERVFAIL`, ... or `RCODE<n>`). */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/** The response code of an encoded message. */
export function rcodeOf(message: Buffer): number {
  return message.readUInt16BE(2) & 0xf;
}

/** The opcode of a standard query. */
const OPCODE_QUERY = 0;

/** Classic DNS over UDP: messages longer than this are truncated for clients without EDNS. */
export const CLASSIC_UDP_LIMIT = 512;
/**
 * The largest UDP answer sent to an EDNS client, whatever size it advertises, and the size this
 * server advertises: 1232 bytes avoids IP fragmentation on any path (DNS Flag Day 2020).
 */
export const EDNS_UDP_LIMIT = 1232;

/** A DNS query as received: the header fields the server needs, the questions and the raw bytes. */
export interface DnsQuery {
  readonly id: number;
  /** The flags word without the QR bit. */
  readonly flags: number;
  readonly opcode: number;
  readonly questions: readonly Question[];
  /** The UDP payload size of the client's OPT record; undefined when the query has no EDNS. */
  readonly ednsUdpSize: number | undefined;
  /** The message exactly as received. */
  readonly message: Buffer;
}

/**
 * Decodes a message a client sent. Returns undefined for anything that is not a DNS query:
 * bytes that do not parse, and responses (QR set), which a server must never answer.
 */
export function readQuery(message: Buffer): DnsQuery | undefined {
  let packet: ReturnType<typeof decode>;
  try {
    packet = decode(message);
  } catch {
    return undefined;
  }
  if (packet.flag_qr) return undefined;
  const flags = message.readUInt16BE(2);
  const opt = packet.additionals?.find((record): record is OptAnswer => record.type === 'OPT');
  return {
    id: packet.id ?? 0,
    flags,
    opcode: (flags >> 11) & 0xf,
    questions: packet.questions ?? [],
    ednsUdpSize: opt?.udpPayloadSize,
    message,
  };
}

/**
 * The response code for a query this server does not answer: NOTIMP for opcodes other than
 * QUERY, FORMERR unless there is exactly one question. Undefined for an answerable query.
 */
export function unanswerableRcode(query: DnsQuery): number | undefined {
  if (query.opcode !== OPCODE_QUERY) return Rcode.NOTIMP;
  if (query.questions.length !== 1) return Rcode.FORMERR;
  return undefined;
}

/** What a synthesized response holds besides the echoed question. */
export interface ResponseInit {
  readonly rcode: number;
  /** Set AA: the answer comes from this server's own data (static records, interception). */
  readonly authoritative: boolean;
  readonly answers?: readonly Answer[];
  readonly authorities?: readonly Answer[];
}

/**
 * Encodes a response to `query`: same id, the question echoed, RD and CD copied, RA set, AA
 * when authoritative, and an OPT record when the client used EDNS.
 */
export function encodeResponse(query: DnsQuery, init: ResponseInit): Buffer {
  const copied = query.flags & (Flags.RECURSION_DESIRED | Flags.CHECKING_DISABLED);
  const flags = copied | Flags.RECURSION_AVAILABLE | (init.authoritative ? Flags.AUTHORITATIVE : 0) | init.rcode;
  return encode({
    type: 'response',
    id: query.id,
    flags,
    questions: [...query.questions],
    answers: [...(init.answers ?? [])],
    authorities: [...(init.authorities ?? [])],
    additionals: ednsRecords(query),
  });
}

/** Encodes a query for `question` (recursion desired, EDNS advertising {@link EDNS_UDP_LIMIT}). */
export function encodeQuery(id: number, question: Question): Buffer {
  return encode({
    type: 'query',
    id,
    flags: Flags.RECURSION_DESIRED,
    questions: [question],
    additionals: [optRecord()],
  });
}

/** The largest UDP response this client accepts: 512, or its EDNS size capped at {@link EDNS_UDP_LIMIT}. */
export function udpLimitOf(query: DnsQuery): number {
  if (query.ednsUdpSize === undefined) return CLASSIC_UDP_LIMIT;
  return Math.min(Math.max(query.ednsUdpSize, CLASSIC_UDP_LIMIT), EDNS_UDP_LIMIT);
}

/**
 * The UDP stand-in for a response too large for the client: the header of `response` with TC
 * set, the question, no records (and OPT for EDNS clients). The client retries over TCP.
 */
export function truncateResponse(query: DnsQuery, response: Buffer): Buffer {
  return encode({
    type: 'response',
    id: query.id,
    flags: response.readUInt16BE(2) | Flags.TRUNCATED,
    questions: [...query.questions],
    additionals: ednsRecords(query),
  });
}

function ednsRecords(query: DnsQuery): Answer[] {
  return query.ednsUdpSize === undefined ? [] : [optRecord()];
}

function optRecord(): OptAnswer {
  return { type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_LIMIT, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}
