/**
 * The upstream resolver passthrough names are forwarded to: `dns.upstream_resolver`, else the
 * system's resolvers. A query goes out over UDP; a truncated answer is fetched again over TCP.
 */
import { createSocket } from 'node:dgram';
import { getServers } from 'node:dns';
import { connect, isIP, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { decode, type DecodedPacket, type Question } from 'dns-packet';
import { ErrorCodes, normalizeHost, ProxyError } from '@proxy/core';
import { unmapIpv4 } from './ip.js';
import { FrameReader, frame } from './tcp-frames.js';

/** A resolver's address. */
export interface ResolverAddress {
  readonly host: string;
  readonly port: number;
}

const DNS_PORT = 53;

/**
 * Parses a resolver address: `"8.8.8.8"`, `"8.8.8.8:53"`, `"2001:db8::1"`, `"[2001:db8::1]:53"`
 * (port 53 when omitted). Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) naming `field`.
 */
export function parseResolverAddress(value: string, field = 'dns.upstream_resolver'): ResolverAddress {
  const text = value.trim();
  if (isIP(text) !== 0) return { host: text, port: DNS_PORT };
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || isIP(host) === 0 || (m?.[1] !== undefined && !isIPv6(host)) || port < 1 || port > 65535) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `${field}: "${value}" is not a resolver address (expected ip or ip:port, e.g. "8.8.8.8:53")`, {
      reason: 'config_invalid',
    });
  }
  return { host, port };
}

/** The system's resolvers (`/etc/resolv.conf` on Linux), as Node's `dns.getServers()` lists them. */
export function systemResolvers(): ResolverAddress[] {
  return getServers().flatMap((server) => {
    try {
      return [parseResolverAddress(server, 'system resolver')];
    } catch {
      return []; // e.g. a link-local address with a zone id: not reachable by address alone
    }
  });
}

/**
 * Whether `resolver` is this server itself (listening on `bound`): forwarding to it would loop.
 * True when the ports match and the resolver's address is the bound one, a loopback address,
 * or (for a wildcard bind) any address of this host.
 */
export function isOwnAddress(resolver: ResolverAddress, bound: { address: string; port: number }): boolean {
  if (resolver.port !== bound.port) return false;
  const host = unmapIpv4(resolver.host);
  if (host === unmapIpv4(bound.address) || host.startsWith('127.') || host === '::1') return true;
  if (bound.address !== '::' && bound.address !== '0.0.0.0') return false;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => unmapIpv4(i.address) === host));
}

/** What an upstream answer must match: the id and the question of the query sent. */
export interface ExpectedAnswer {
  readonly id: number;
  readonly question: Question;
}

/** An upstream answer: the bytes as received and their decoding. */
export interface UpstreamAnswer {
  readonly message: Buffer;
  readonly packet: DecodedPacket;
}

/**
 * The most upstream exchanges at once: each holds a socket, so a workload flooding passthrough
 * names gets SERVFAIL beyond this instead of exhausting the proxy's file descriptors.
 */
export const MAX_EXCHANGES_IN_FLIGHT = 512;

/** Forwards queries to a list of resolvers, trying them in order. */
export class UpstreamResolver {
  readonly #servers: readonly ResolverAddress[];
  readonly #timeoutMs: number;
  #inFlight = 0;

  /** `timeoutMs` bounds each resolver's attempt (UDP and the TCP retry together). */
  constructor(servers: readonly ResolverAddress[], timeoutMs: number) {
    this.#servers = servers;
    this.#timeoutMs = timeoutMs;
  }

  /** The resolvers queries go to, in order. */
  get servers(): readonly ResolverAddress[] {
    return this.#servers;
  }

  /**
   * Sends `message` (a complete query) to each resolver in turn until one answers with a
   * response matching `expected`; a truncated UDP answer is fetched again over TCP. Rejects with
   * the last resolver's failure (timeout, refusal, mismatched or undecodable answer), at once
   * when `signal` aborts, or when {@link MAX_EXCHANGES_IN_FLIGHT} exchanges are already running.
   */
  async exchange(message: Buffer, expected: ExpectedAnswer, signal: AbortSignal): Promise<UpstreamAnswer> {
    if (this.#servers.length === 0) throw new Error('no upstream resolver is configured');
    if (this.#inFlight >= MAX_EXCHANGES_IN_FLIGHT) throw new Error(`${MAX_EXCHANGES_IN_FLIGHT} upstream queries are already in flight`);
    this.#inFlight++;
    try {
      return await this.#exchangeInTurn(message, expected, signal);
    } finally {
      this.#inFlight--;
    }
  }

  async #exchangeInTurn(message: Buffer, expected: ExpectedAnswer, signal: AbortSignal): Promise<UpstreamAnswer> {
    let lastError: unknown;
    for (const server of this.#servers) {
      if (signal.aborted) throw signal.reason;
      const attempt = new AbortController();
      const timer = setTimeout(() => attempt.abort(new Error(`${describe(server)}: no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      const onShutdown = (): void => attempt.abort(signal.reason);
      signal.addEventListener('abort', onShutdown, { once: true });
      try {
        const answer = await exchangeUdp(message, server, expected, attempt.signal);
        return answer.packet.flag_tc ? await exchangeTcp(message, server, expected, attempt.signal) : answer;
      } catch (error) {
        lastError = error;
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', onShutdown);
      }
    }
    throw lastError;
  }
}

/** Decodes `message` when it is a response to the expected query; undefined otherwise. */
function matchAnswer(message: Buffer, expected: ExpectedAnswer): UpstreamAnswer | undefined {
  let packet: DecodedPacket;
  try {
    packet = decode(message);
  } catch {
    return undefined;
  }
  const question = packet.questions?.[0];
  const matches =
    packet.flag_qr &&
    packet.id === expected.id &&
    question !== undefined &&
    question.type === expected.question.type &&
    normalizeHost(question.name) === normalizeHost(expected.question.name);
  return matches ? { message, packet } : undefined;
}

function exchangeUdp(message: Buffer, server: ResolverAddress, expected: ExpectedAnswer, signal: AbortSignal): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(server.host) ? 'udp6' : 'udp4');
    let settled = false;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.close();
      finish();
    };
    const onAbort = (): void => settle(() => reject(signal.reason as Error));
    signal.addEventListener('abort', onAbort, { once: true });
    // A connected socket only receives datagrams from the resolver, and reports ICMP
    // port-unreachable as ECONNREFUSED (a resolver that is down fails fast).
    socket.on('error', (error) => settle(() => reject(new Error(`${describe(server)}: ${error.message}`, { cause: error }))));
    socket.on('message', (reply) => {
      const answer = matchAnswer(reply, expected);
      // Anything else (a late answer to another query, a spoofing attempt) is ignored.
      if (answer !== undefined) settle(() => resolve(answer));
    });
    if (signal.aborted) return onAbort();
    socket.connect(server.port, server.host, () => {
      if (!settled) socket.send(message);
    });
  });
}

function exchangeTcp(message: Buffer, server: ResolverAddress, expected: ExpectedAnswer, signal: AbortSignal): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    const reader = new FrameReader();
    let settled = false;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      finish();
    };
    const fail = (why: string, cause?: unknown): void => settle(() => reject(new Error(`${describe(server)} (tcp): ${why}`, { cause })));
    const onAbort = (): void => settle(() => reject(signal.reason as Error));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (error) => fail(error.message, error));
    socket.on('close', () => fail('connection closed before an answer'));
    socket.on('data', (chunk: Buffer) => {
      const [reply] = reader.push(chunk);
      if (reply === undefined) return;
      const answer = matchAnswer(reply, expected);
      if (answer === undefined) fail('the answer does not match the query');
      else settle(() => resolve(answer));
    });
    if (signal.aborted) return onAbort();
    socket.write(frame(message));
  });
}

function describe(server: ResolverAddress): string {
  return `upstream resolver ${isIPv6(server.host) ? `[${server.host}]` : server.host}:${server.port}`;
}
