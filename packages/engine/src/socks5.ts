/**
 * The SOCKS version 5 wire format (RFC 1928) as the tunnel listener speaks it: the no-auth
 * method, the CONNECT command, IPv4, domain and IPv6 addresses. Parsers fit a
 * {@link PreludeReader}; replies are built here too.
 */
import { isIPv6 } from 'node:net';
import { ErrorCodes, ProxyError } from '@proxy/core';
import type { Parsed } from './prelude-reader.js';

/** The first byte of every SOCKS5 message. */
export const SOCKS_VERSION = 0x05;

/** Method codes of the greeting (RFC 1928 section 3). */
export const SocksMethod = { NO_AUTHENTICATION: 0x00, NO_ACCEPTABLE_METHODS: 0xff } as const;

/** Reply codes (RFC 1928 section 6). */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED_BY_RULESET: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;

const COMMAND_CONNECT = 0x01;
const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/** The client's greeting: the authentication methods it offers. */
export interface SocksGreeting {
  readonly methods: readonly number[];
}

/** The client's request, as far as the listener serves it. */
export type SocksRequest =
  | { readonly kind: 'connect'; /** IPv4/IPv6 text or the domain name as sent. */ readonly host: string; readonly port: number }
  | { readonly kind: 'unsupported_command'; readonly command: number }
  | { readonly kind: 'unsupported_address_type'; readonly addressType: number };

/** Parses `VER NMETHODS METHODS...`. */
export function parseGreeting(bytes: Buffer): Parsed<SocksGreeting> {
  if (bytes.length < 2) return versionProblem(bytes);
  if (bytes[0] !== SOCKS_VERSION) return { done: false, problem: 'not_socks5' };
  const count = bytes[1]!;
  if (count === 0) return { done: false, problem: 'no_methods' };
  if (bytes.length < 2 + count) return { done: false };
  return { done: true, value: { methods: [...bytes.subarray(2, 2 + count)] }, consumed: 2 + count };
}

/** Parses `VER CMD RSV ATYP DST.ADDR DST.PORT`; an unsupported command or address type is a value, to be answered. */
export function parseRequest(bytes: Buffer): Parsed<SocksRequest> {
  if (bytes.length < 4) return versionProblem(bytes);
  if (bytes[0] !== SOCKS_VERSION) return { done: false, problem: 'not_socks5' };
  const command = bytes[1]!;
  const addressType = bytes[3]!;
  if (command !== COMMAND_CONNECT) return { done: true, value: { kind: 'unsupported_command', command }, consumed: bytes.length };
  let host: string;
  let end: number;
  switch (addressType) {
    case ATYP_IPV4:
      end = 4 + 4;
      if (bytes.length < end + 2) return { done: false };
      host = [...bytes.subarray(4, end)].join('.');
      break;
    case ATYP_IPV6:
      end = 4 + 16;
      if (bytes.length < end + 2) return { done: false };
      host = ipv6Text(bytes.subarray(4, end));
      break;
    case ATYP_DOMAIN: {
      if (bytes.length < 5) return { done: false };
      end = 5 + bytes[4]!;
      if (bytes.length < end + 2) return { done: false };
      host = bytes.subarray(5, end).toString('latin1');
      break;
    }
    default:
      return { done: true, value: { kind: 'unsupported_address_type', addressType }, consumed: bytes.length };
  }
  return { done: true, value: { kind: 'connect', host, port: bytes.readUInt16BE(end) }, consumed: end + 2 };
}

/** The server's method choice. */
export function methodSelection(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

/**
 * A reply: `VER REP RSV ATYP BND.ADDR BND.PORT`. `bound` is the address the proxy dialled
 * from (success); failures carry `0.0.0.0:0`.
 */
export function socksReply(code: number, bound?: { readonly address: string; readonly port: number }): Buffer {
  const port = Buffer.alloc(2);
  port.writeUInt16BE(bound?.port ?? 0);
  const address = bound?.address ?? '0.0.0.0';
  if (isIPv6(address)) return Buffer.concat([Buffer.from([SOCKS_VERSION, code, 0x00, ATYP_IPV6]), ipv6Bytes(address), port]);
  const octets = address.split('.').map(Number);
  return Buffer.concat([Buffer.from([SOCKS_VERSION, code, 0x00, ATYP_IPV4, ...octets]), port]);
}

/**
 * The reply code for a tunnel that could not be opened: a policy or deny-list refusal is
 * "not allowed by ruleset"; a name that does not resolve or an address that does not answer
 * is "host unreachable"; an actively refused connection is "connection refused".
 */
export function socksReplyForFailure(err: unknown): number {
  if (!(err instanceof ProxyError)) return SocksReply.GENERAL_FAILURE;
  if (err.code === ErrorCodes.UPSTREAM_DENIED) return SocksReply.NOT_ALLOWED_BY_RULESET;
  if (err.code === ErrorCodes.UPSTREAM_RESOLVE) return SocksReply.HOST_UNREACHABLE;
  if (err.code !== ErrorCodes.UPSTREAM_UNREACHABLE) return SocksReply.GENERAL_FAILURE;
  const cause = err.cause;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? cause.code : undefined;
  if (code === 'ECONNREFUSED') return SocksReply.CONNECTION_REFUSED;
  if (code === 'ENETUNREACH') return SocksReply.NETWORK_UNREACHABLE;
  return SocksReply.HOST_UNREACHABLE;
}

function versionProblem<T>(bytes: Buffer): Parsed<T> {
  return bytes.length > 0 && bytes[0] !== SOCKS_VERSION ? { done: false, problem: 'not_socks5' } : { done: false };
}

function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

function ipv6Bytes(address: string): Buffer {
  const bytes = Buffer.alloc(16);
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const last = right.length > 0 ? right : left;
  // An embedded IPv4 tail (::ffff:10.0.0.1) takes the last two groups.
  if (last.length > 0 && last[last.length - 1]!.includes('.')) {
    const octets = last.pop()!.split('.').map(Number);
    last.push(((octets[0]! << 8) | octets[1]!).toString(16), ((octets[2]! << 8) | octets[3]!).toString(16));
  }
  left.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  right.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), 16 - (right.length - i) * 2));
  return bytes;
}
