/**
 * A small, defensive reader of the TLS ClientHello (RFC 8446 section 4.1.2, RFC 5246 section
 * 7.4.1.2): enough to learn the server name (RFC 6066 `server_name`) before deciding what to do
 * with a connection, without terminating it. Handles a hello spread over several TLS records and
 * several TCP reads; every length is checked against what is actually there.
 */

/** Most bytes a ClientHello may take, record headers included; a longer one is refused. */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

/** Why bytes are not an acceptable ClientHello. */
export type ClientHelloProblem = 'not_tls' | 'malformed' | 'oversized' | 'bad_server_name';

/** What {@link parseClientHello} made of the bytes received so far. */
export type ClientHelloResult =
  | { readonly status: 'incomplete' }
  | { readonly status: 'invalid'; readonly problem: ClientHelloProblem }
  | {
      readonly status: 'complete';
      /** The `host_name` the client asked for: lowercase, no trailing dot. Undefined when it sent none. */
      readonly serverName: string | undefined;
      /** Bytes the hello took, record headers included. */
      readonly length: number;
    };

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
/** Largest plaintext a TLS record may carry (2^14). */
const MAX_RECORD_PAYLOAD = 16_384;
const EXTENSION_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST_NAME = 0x00;

const INCOMPLETE: ClientHelloResult = Object.freeze({ status: 'incomplete' });

/**
 * Reads the ClientHello at the start of `bytes` (everything the client sent so far).
 * `incomplete` asks for more bytes; `invalid` is final (non-TLS bytes, a broken or oversized
 * hello, an unusable server name), and is reported as early as the bytes allow.
 */
export function parseClientHello(bytes: Uint8Array, maxBytes = MAX_CLIENT_HELLO_BYTES): ClientHelloResult {
  const fragments: Uint8Array[] = [];
  let collected = 0;
  let offset = 0;
  let messageLength: number | undefined;
  for (;;) {
    const header = checkRecordHeader(bytes, offset);
    if (header === 'incomplete') return offset >= maxBytes ? invalid('oversized') : INCOMPLETE;
    if (header === 'invalid') return invalid(offset === 0 ? 'not_tls' : 'malformed');
    if (offset + RECORD_HEADER + header > maxBytes) return invalid('oversized');

    const payloadEnd = Math.min(bytes.length, offset + RECORD_HEADER + header);
    const payload = bytes.subarray(offset + RECORD_HEADER, payloadEnd);
    // The handshake header may be readable before the whole record is: fail early on it.
    if (messageLength === undefined && collected + payload.length >= HANDSHAKE_HEADER) {
      const head = concat([...fragments, payload], collected + payload.length).subarray(0, HANDSHAKE_HEADER);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('malformed');
      messageLength = (head[1]! << 16) | (head[2]! << 8) | head[3]!;
      if (messageLength + HANDSHAKE_HEADER > maxBytes) return invalid('oversized');
    }
    if (payloadEnd < offset + RECORD_HEADER + header) return INCOMPLETE;

    fragments.push(payload);
    collected += payload.length;
    offset = payloadEnd;
    if (messageLength === undefined || collected < HANDSHAKE_HEADER + messageLength) continue;
    // The hello travels alone: nothing else may share its records.
    if (collected !== HANDSHAKE_HEADER + messageLength) return invalid('malformed');
    const body = concat(fragments, collected).subarray(HANDSHAKE_HEADER);
    const serverName = readServerName(body);
    if (typeof serverName === 'object') return invalid(serverName.problem);
    return { status: 'complete', serverName, length: offset };
  }
}

/** The payload length of the record at `offset`, or why it cannot be read (yet). */
function checkRecordHeader(bytes: Uint8Array, offset: number): number | 'incomplete' | 'invalid' {
  const available = bytes.length - offset;
  if (available >= 1 && bytes[offset] !== CONTENT_HANDSHAKE) return 'invalid';
  if (available >= 2 && bytes[offset + 1] !== 0x03) return 'invalid';
  if (available < RECORD_HEADER) return 'incomplete';
  const length = (bytes[offset + 3]! << 8) | bytes[offset + 4]!;
  return length === 0 || length > MAX_RECORD_PAYLOAD ? 'invalid' : length;
}

/** The server name in a ClientHello body; a problem object when the body is broken. */
function readServerName(body: Uint8Array): string | undefined | { problem: ClientHelloProblem } {
  const reader = new ByteReader(body);
  try {
    if (reader.u8() !== 0x03) return { problem: 'malformed' };
    reader.skip(1 + 32); // legacy_version minor, random
    const sessionId = reader.u8();
    if (sessionId > 32) return { problem: 'malformed' };
    reader.skip(sessionId);
    const cipherSuites = reader.u16();
    if (cipherSuites < 2 || cipherSuites % 2 !== 0) return { problem: 'malformed' };
    reader.skip(cipherSuites);
    const compression = reader.u8();
    if (compression < 1) return { problem: 'malformed' };
    reader.skip(compression);
    if (reader.remaining === 0) return undefined; // a TLS 1.2 hello may carry no extensions
    if (reader.u16() !== reader.remaining) return { problem: 'malformed' };
    const seen = new Set<number>();
    let serverName: string | undefined | { problem: ClientHelloProblem };
    while (reader.remaining > 0) {
      const type = reader.u16();
      const data = reader.bytes(reader.u16());
      if (seen.has(type)) return { problem: 'malformed' };
      seen.add(type);
      if (type === EXTENSION_SERVER_NAME) serverName = readServerNameList(new ByteReader(data));
    }
    return serverName;
  } catch (err) {
    if (err instanceof OutOfBounds) return { problem: 'malformed' };
    throw err;
  }
}

/** The `host_name` entry of a `server_name` extension (RFC 6066 section 3). */
function readServerNameList(reader: ByteReader): string | { problem: ClientHelloProblem } {
  const listLength = reader.u16();
  if (listLength === 0 || listLength !== reader.remaining) return { problem: 'malformed' };
  let hostName: string | undefined;
  while (reader.remaining > 0) {
    const type = reader.u8();
    const name = reader.bytes(reader.u16());
    if (type !== NAME_TYPE_HOST_NAME) continue;
    if (hostName !== undefined) return { problem: 'malformed' };
    hostName = hostNameOf(name);
    if (hostName === undefined) return { problem: 'bad_server_name' };
  }
  return hostName ?? { problem: 'bad_server_name' };
}

/** Letters, digits, `-` and `_` in dot-separated labels of 1-63 characters; 253 at most. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** The name in its normal form (lowercase, no trailing dot), or undefined when it is not a host name. */
function hostNameOf(bytes: Uint8Array): string | undefined {
  let name = Buffer.from(bytes).toString('latin1').toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  return HOST_NAME.test(name) ? name : undefined;
}

function invalid(problem: ClientHelloProblem): ClientHelloResult {
  return { status: 'invalid', problem };
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
}

class OutOfBounds extends Error {}

/** Big-endian reads that throw {@link OutOfBounds} instead of reading past the end. */
class ByteReader {
  readonly #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  u8(): number {
    return this.bytes(1)[0]!;
  }

  u16(): number {
    const b = this.bytes(2);
    return (b[0]! << 8) | b[1]!;
  }

  skip(count: number): void {
    this.bytes(count);
  }

  bytes(count: number): Uint8Array {
    if (count > this.remaining) throw new OutOfBounds();
    const slice = this.#bytes.subarray(this.#offset, this.#offset + count);
    this.#offset += count;
    return slice;
  }
}
