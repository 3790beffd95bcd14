import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Logger, TunnelInfo } from '@proxy/core';
import { parseClientHello, MAX_CLIENT_HELLO_BYTES } from './client-hello.js';
import { ConnectionExchange } from './connection-exchange.js';
import type { ConnectionSet } from './connection-set.js';
import { STATUS_CLIENT_CLOSED, type ExchangeHost } from './exchange.js';
import type { ConnectionHttpLayer } from './http-layer.js';
import { BoundIngress } from './ingress.js';
import { PreludeError, type Parsed, type PreludeReader } from './prelude-reader.js';
import { endConnection } from './socket-end.js';
import { splice } from './splice.js';
import { TunnelUpstream } from './tunnel-upstream.js';
import type { UpstreamGuard } from './upstream-guard.js';

/**
 * Supplies the TLS context a client handshake for `serverName` (DNS name or IP literal) is answered with.
 * Names come in normal form: lowercase, no trailing dot, IPv6 without brackets.
 */
export interface LeafCertificateSource {
  secureContextFor(serverName: string): Promise<SecureContext>;
}

/** How a TLS client connection is handled: terminated with a minted leaf, or passed through unread. */
export type TlsMode = 'mitm' | 'sni-only';

/** Limits of the reads before a connection is handed on (ClientHello, SOCKS5 handshake, a tunnel's first bytes). */
export const PRELUDE_LIMITS = { maxBytes: MAX_CLIENT_HELLO_BYTES, timeoutMs: 15_000 } as const;

/** Time allowed for the TLS handshake with the client once it is answered. */
const HANDSHAKE_TIMEOUT_MS = 15_000;

/** What TLS interception needs from the engine and from the listener it serves. */
export interface InterceptionContext {
  readonly host: ExchangeHost;
  readonly guard: UpstreamGuard;
  readonly logger: Logger;
  readonly tlsMode: TlsMode;
  /** Required in `mitm` mode. */
  readonly certificates: LeafCertificateSource | undefined;
  /** Where decrypted connections go. */
  readonly layer: ConnectionHttpLayer;
  /** Spliced connections, ended at shutdown. */
  readonly spliced: ConnectionSet;
  /** Time allowed for upstream response headers. */
  readonly headersTimeoutMs: number;
}

/** Where a TLS client connection is bound. */
export interface TlsBinding {
  /** The upstream port: 443 on the https listener, the target's port in a tunnel. */
  readonly port: number;
  readonly clientAddress: string;
  /** Set inside a tunnel. */
  readonly tunnel?: TunnelBinding;
}

/** The tunnel a TLS connection travels in. */
export interface TunnelBinding {
  /** The target host: it stands in for a missing SNI, and a different SNI is refused. */
  readonly host: string;
  /** The tunnel, with the decision that opened it. */
  readonly info: TunnelInfo;
  /**
   * The connection dialled when the tunnel opened, owned by the interception from now on;
   * undefined when the tunnel opened without dialling (`mitm` mode dials on the first request
   * that is forwarded).
   */
  readonly upstream: Socket | undefined;
}

/** TLS alert descriptions (RFC 8446 section 6). */
const TlsAlert = { HANDSHAKE_FAILURE: 40, DECODE_ERROR: 50, ACCESS_DENIED: 49, INTERNAL_ERROR: 80, UNRECOGNIZED_NAME: 112 } as const;

/**
 * Handles a TLS client connection whose ClientHello is next on `reader`: reads it without
 * answering, settles the name the connection is for (the SNI; in a tunnel its target, which
 * a different SNI may not contradict), then either terminates TLS with a leaf for that name
 * and hands the decrypted connection to the HTTP layer (`mitm`), or runs the pipeline on a
 * host-only request and splices the connection, hello included, to the upstream (`sni-only`).
 * Every refusal is an audit record and a closed connection (with a TLS alert where one fits).
 */
export async function interceptTls(context: InterceptionContext, socket: Socket, reader: PreludeReader, binding: TlsBinding): Promise<void> {
  const mode = context.tlsMode;
  const exchangeFor = (host: string, sni: string | undefined): ConnectionExchange =>
    new ConnectionExchange(context.host, { mode, host, port: binding.port, sni, tunnel: binding.tunnel?.info, clientAddress: binding.clientAddress });
  const dropTunnelUpstream = (): void => {
    binding.tunnel?.upstream?.destroy();
  };

  let serverName: string | undefined;
  try {
    serverName = await reader.read(clientHello);
  } catch (err) {
    dropTunnelUpstream();
    if (err instanceof PreludeError && (err.kind === 'invalid' || err.kind === 'too_large')) {
      exchangeFor(binding.tunnel?.host ?? '', undefined).refuse(400, 'bad_client_hello');
      context.logger.info({ client: binding.clientAddress, problem: err.problem ?? err.kind }, 'TLS connection closed: bad ClientHello');
      endConnection(socket, err.problem === 'not_tls' ? undefined : alert(TlsAlert.DECODE_ERROR));
    } else {
      socket.destroy();
    }
    return;
  }

  const expected = binding.tunnel?.host;
  if (serverName === undefined && expected === undefined) {
    exchangeFor('', undefined).refuse(400, 'missing_sni');
    context.logger.info({ client: binding.clientAddress }, 'TLS connection closed: no SNI');
    endConnection(socket, alert(TlsAlert.UNRECOGNIZED_NAME));
    return;
  }
  if (serverName !== undefined && expected !== undefined && serverName !== expected) {
    dropTunnelUpstream();
    exchangeFor(expected, serverName).refuse(421, 'sni_mismatch');
    context.logger.info({ client: binding.clientAddress, host: expected, sni: serverName }, 'TLS connection closed: SNI differs from the tunnel target');
    endConnection(socket, alert(TlsAlert.UNRECOGNIZED_NAME));
    return;
  }
  const name = (expected ?? serverName)!;
  if (mode === 'mitm') await terminate(context, socket, reader, binding, name, serverName, exchangeFor);
  else await passThrough(context, socket, reader, binding, exchangeFor(name, serverName));
}

/** `mitm`: answers the handshake with a leaf for `name` and hands the decrypted connection to the HTTP layer. */
async function terminate(
  context: InterceptionContext,
  socket: Socket,
  reader: PreludeReader,
  binding: TlsBinding,
  name: string,
  sni: string | undefined,
  exchangeFor: (host: string, sni: string | undefined) => ConnectionExchange,
): Promise<void> {
  let secureContext: SecureContext;
  try {
    secureContext = await context.certificates!.secureContextFor(name);
  } catch (err) {
    binding.tunnel?.upstream?.destroy();
    exchangeFor(name, sni).refuse(502, 'certificate_unavailable');
    context.logger.error({ host: name, error_class: err instanceof Error ? err.name : typeof err }, 'no certificate for the TLS server name');
    endConnection(socket, alert(TlsAlert.INTERNAL_ERROR));
    return;
  }
  if (socket.destroyed) {
    binding.tunnel?.upstream?.destroy();
    return;
  }

  const upstream = binding.tunnel === undefined ? undefined : new TunnelUpstream(context.guard, { scheme: 'https', host: name, port: binding.port }, binding.tunnel.upstream);
  socket.once('close', () => upstream?.close());
  const ingress = new BoundIngress({
    mode: 'mitm',
    scheme: 'https',
    host: name,
    port: binding.port,
    sni,
    tunnel: binding.tunnel?.info,
    upstream,
    headersTimeoutMs: context.headersTimeoutMs,
  });

  // The hello goes back in front of the socket: the TLS layer reads it first, then takes over.
  socket.unshift(reader.release());
  const client = new TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
  let secure = false;
  const timer = setTimeout(() => client.destroy(), HANDSHAKE_TIMEOUT_MS);
  client.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    if (!secure) context.logger.debug({ client: binding.clientAddress, host: name, code: err.code }, 'client TLS handshake failed');
    client.destroy();
  });
  client.once('close', () => clearTimeout(timer));
  client.once('secure', () => {
    clearTimeout(timer);
    secure = true;
    context.layer.accept(client, ingress);
  });
}

/** `sni-only`: host-level decision, then the client's bytes (hello first) spliced to the upstream unread. */
async function passThrough(context: InterceptionContext, socket: Socket, reader: PreludeReader, binding: TlsBinding, exchange: ConnectionExchange): Promise<void> {
  const { host, port } = exchange.request;
  const decision = await exchange.decide();
  if (decision.action !== 'continue') {
    binding.tunnel?.upstream?.destroy();
    exchange.complete(decision.status);
    endConnection(socket, alert(TlsAlert.ACCESS_DENIED));
    return;
  }

  let upstream: Socket;
  try {
    upstream = binding.tunnel?.upstream ?? (await context.guard.connect({ host, port, tls: false, scheme: 'https', splice: true }));
  } catch (err) {
    const failure = exchange.failUpstream(err);
    context.logger.warn({ request_id: exchange.id, host, reason: failure.reason, code: failure.code, detail: failure.detail }, `passthrough failed: ${failure.reason}`);
    endConnection(socket, alert(TlsAlert.HANDSHAKE_FAILURE));
    return;
  }
  if (socket.destroyed) {
    upstream.destroy();
    exchange.audit.failed('client_closed');
    exchange.complete(STATUS_CLIENT_CLOSED);
    return;
  }
  if (upstream.remoteAddress !== undefined) exchange.audit.upstream(upstream.remoteAddress);
  upstream.write(reader.release());
  splice(socket, upstream, context.spliced);
  exchange.complete(200);
}

/** The ClientHello as a prelude message: peeked (left in the buffer), its server name the value. */
function clientHello(bytes: Buffer): Parsed<string | undefined> {
  const result = parseClientHello(bytes);
  if (result.status === 'complete') return { done: true, value: result.serverName, consumed: 0 };
  return result.status === 'invalid' ? { done: false, problem: result.problem } : { done: false };
}

/** A fatal TLS alert record, sent in the clear before any handshake answer. */
function alert(description: number): Buffer {
  return Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]);
}
