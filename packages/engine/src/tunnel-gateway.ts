import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { reject } from '@proxy/core';
import type { Decision, TunnelInfo } from '@proxy/core';
import { ConnectionExchange } from './connection-exchange.js';
import { clientAddressOf, STATUS_CLIENT_CLOSED } from './exchange.js';
import { ConnectionHttpLayer, type ServeOptions } from './http-layer.js';
import { BoundIngress, type Ingress } from './ingress.js';
import { firstByte, PreludeReader } from './prelude-reader.js';
import { writeRawDecision } from './raw-response.js';
import { parseAuthority, type Authority } from './request-target.js';
import { endConnection } from './socket-end.js';
import {
  methodSelection,
  parseGreeting,
  parseRequest,
  SOCKS_VERSION,
  SocksMethod,
  SocksReply,
  socksReply,
  socksReplyForFailure,
} from './socks5.js';
import { interceptTls, PRELUDE_LIMITS, type InterceptionContext } from './tls-interception.js';
import { TunnelUpstream } from './tunnel-upstream.js';
import { proxyWebSocketUpgrade, type UpgradeContext } from './websocket-upgrade.js';

/** The first byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;

/** A tunnel that opened: its decision and the connection dialled for it, if one was. */
interface OpenedTunnel {
  readonly info: TunnelInfo;
  readonly upstream: Socket | undefined;
}

/** Why a tunnel did not open: the HTTP answer to a CONNECT and the SOCKS5 reply code. */
interface RefusedTunnel {
  readonly decision: Exclude<Decision, { action: 'continue' }>;
  readonly socksReply: number;
}

/**
 * The tunnel listener's protocol side: one port for SOCKS5 (first byte 0x05) and HTTP (CONNECT,
 * and plain forward-proxy requests, which go to the app as on the HTTP listener).
 *
 * A tunnel is decided when it opens, on a host-only request for its target (mode `tunnel`):
 * refused -> 403 (SOCKS5 0x02) with an audit record; allowed -> the client is told the tunnel
 * is up. When the tunnel's bytes may be spliced unread (no `mitm`), the target is dialled
 * through the guard first (denied or unreachable -> 403/502, SOCKS5 0x02/0x04/0x05). In `mitm`
 * mode every byte inside is read by the proxy, so nothing is dialled until a request is
 * forwarded: a request a transform answers or refuses never opens a connection to the target,
 * and an unreachable target fails that request (502) rather than the tunnel. Inside, the first
 * byte decides: TLS -> interception or passthrough as on the https listener, with the target
 * standing in for a missing SNI; HTTP -> the app, every request bound to the target; anything
 * else is closed with a log line.
 */
export class TunnelGateway {
  /** Where the listener's HTTP and the inside of its tunnels go. */
  readonly layer: ConnectionHttpLayer;
  readonly #context: InterceptionContext;
  readonly #entry: Ingress;
  readonly #upgrades: UpgradeContext;

  /** `entry`: the ingress of HTTP requests on the listener itself (forward proxying). */
  constructor(context: Omit<InterceptionContext, 'layer'>, entry: Ingress, serve: Omit<ServeOptions, 'ingressOf' | 'onConnect'>) {
    this.layer = new ConnectionHttpLayer({ ...serve, onConnect: (req, socket, head) => this.#onConnect(req, socket, head) });
    this.#context = { ...context, layer: this.layer };
    this.#entry = entry;
    this.#upgrades = serve.upgrades;
  }

  /** Takes a connection the listener accepted. */
  async accept(socket: Socket): Promise<void> {
    const reader = new PreludeReader(socket, PRELUDE_LIMITS);
    let first: number;
    try {
      first = await reader.read(firstByte);
    } catch {
      socket.destroy();
      return;
    }
    if (first === SOCKS_VERSION) await this.#socks(socket, reader);
    else this.layer.accept(socket, this.#entry, reader.release());
  }

  /** Opens a tunnel for a CONNECT on the listener itself; inside a tunnel, its ingress refuses it (405). */
  #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const ingress = this.layer.ingressOf(socket);
    if (ingress === this.#entry) void this.#connect(req, socket as Socket, head);
    else void proxyWebSocketUpgrade(this.#upgrades, ingress, req, socket, head);
  }

  async #connect(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const clientAddress = clientAddressOf(socket);
    const requested = req.url ?? '';
    // Authority-form (RFC 9110 section 9.3.6): host and port, the port required.
    const target = parseAuthority(requested, 0);
    if (target === undefined) {
      const tunnel: TunnelInfo = { protocol: 'connect', target: requested.slice(0, 256) };
      new ConnectionExchange(this.#context.host, { mode: 'tunnel', host: '', port: 0, sni: undefined, tunnel, clientAddress }).refuse(400, 'invalid_target');
      writeRawDecision(socket, reject(400, 'invalid_target', 'CONNECT target must be host:port'));
      return;
    }
    const opened = await this.#open(target, 'connect', clientAddress, socket);
    if ('decision' in opened) {
      writeRawDecision(socket, opened.decision);
      return;
    }
    socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    await this.#inside(socket, new PreludeReader(socket, PRELUDE_LIMITS, head), target, opened);
  }

  async #socks(socket: Socket, reader: PreludeReader): Promise<void> {
    const clientAddress = clientAddressOf(socket);
    const log = (problem: string): void => this.#context.logger.info({ client: clientAddress, problem }, 'SOCKS5 connection refused');
    try {
      const greeting = await reader.read(parseGreeting);
      if (!greeting.methods.includes(SocksMethod.NO_AUTHENTICATION)) {
        log('no_acceptable_method');
        endConnection(socket, methodSelection(SocksMethod.NO_ACCEPTABLE_METHODS));
        return;
      }
      socket.write(methodSelection(SocksMethod.NO_AUTHENTICATION));
      const request = await reader.read(parseRequest);
      if (request.kind !== 'connect') {
        log(request.kind);
        const code = request.kind === 'unsupported_command' ? SocksReply.COMMAND_NOT_SUPPORTED : SocksReply.ADDRESS_TYPE_NOT_SUPPORTED;
        endConnection(socket, socksReply(code));
        return;
      }
      const target = socksTarget(request.host, request.port);
      if (target === undefined) {
        log('invalid_target');
        endConnection(socket, socksReply(SocksReply.GENERAL_FAILURE));
        return;
      }
      const opened = await this.#open(target, 'socks5', clientAddress, socket);
      if ('decision' in opened) {
        endConnection(socket, socksReply(opened.socksReply));
        return;
      }
      const bound = { address: opened.upstream?.localAddress ?? '0.0.0.0', port: opened.upstream?.localPort ?? 0 };
      socket.write(socksReply(SocksReply.SUCCEEDED, bound));
      await this.#inside(socket, new PreludeReader(socket, PRELUDE_LIMITS, reader.release()), target, opened);
    } catch (err) {
      // The handshake broke off, timed out or was not SOCKS5 after all: there is no target to audit.
      log(err instanceof Error ? err.message : 'handshake failed');
      socket.destroy();
    }
  }

  /** Decides the tunnel on a host-only request for its target, then dials the target unless in `mitm` mode. */
  async #open(target: Authority, protocol: TunnelInfo['protocol'], clientAddress: string, client: Socket): Promise<OpenedTunnel | RefusedTunnel> {
    const info: TunnelInfo = { protocol, target: targetText(target) };
    const exchange = new ConnectionExchange(this.#context.host, { mode: 'tunnel', host: target.host, port: target.port, sni: undefined, tunnel: info, clientAddress });
    const decision = await exchange.decide();
    if (decision.action !== 'continue') {
      exchange.complete(decision.status);
      return { decision, socksReply: SocksReply.NOT_ALLOWED_BY_RULESET };
    }
    const clientLeft = (): RefusedTunnel => {
      exchange.audit.failed('client_closed');
      exchange.complete(STATUS_CLIENT_CLOSED);
      return { decision: reject(STATUS_CLIENT_CLOSED, 'client_closed'), socksReply: SocksReply.GENERAL_FAILURE };
    };
    if (client.destroyed) return clientLeft();
    if (this.#context.tlsMode === 'mitm') {
      exchange.dismiss();
      return { info: { ...info, decision: 'allow' }, upstream: undefined };
    }

    let upstream: Socket;
    try {
      // Dialled before the client says what it sends: through `https_proxy` unless the target is port 80.
      upstream = await this.#context.guard.connect({ host: target.host, port: target.port, tls: false, scheme: target.port === 80 ? 'http' : 'https', splice: true });
    } catch (err) {
      const failure = exchange.failUpstream(err);
      this.#context.logger.warn(
        { request_id: exchange.id, host: target.host, reason: failure.reason, code: failure.code, detail: failure.detail },
        `tunnel failed: ${failure.reason}`,
      );
      return { decision: reject(failure.status, failure.reason, failure.message), socksReply: socksReplyForFailure(err) };
    }
    // Idle until the client's first bytes say how it is used; an error then only ends it.
    upstream.on('error', () => upstream.destroy());
    if (client.destroyed) {
      upstream.destroy();
      return clientLeft();
    }
    exchange.dismiss();
    return { info: { ...info, decision: 'allow' }, upstream };
  }

  /** Routes an open tunnel by its first byte: TLS, plain HTTP, or neither (closed). */
  async #inside(socket: Socket, reader: PreludeReader, target: Authority, opened: OpenedTunnel): Promise<void> {
    const clientAddress = clientAddressOf(socket);
    let first: number;
    try {
      first = await reader.read(firstByte);
    } catch {
      opened.upstream?.destroy();
      socket.destroy();
      return;
    }
    if (first === TLS_HANDSHAKE) {
      await interceptTls(this.#context, socket, reader, {
        port: target.port,
        clientAddress,
        tunnel: { host: target.host, info: opened.info, upstream: opened.upstream },
      });
      return;
    }
    if (isHttpMethodStart(first)) {
      const upstream = new TunnelUpstream(this.#context.guard, { scheme: 'http', host: target.host, port: target.port }, opened.upstream);
      socket.once('close', () => upstream.close());
      const ingress = new BoundIngress({
        mode: 'http',
        scheme: 'http',
        host: target.host,
        port: target.port,
        sni: undefined,
        tunnel: opened.info,
        upstream,
        headersTimeoutMs: this.#context.headersTimeoutMs,
      });
      this.layer.accept(socket, ingress, reader.release());
      return;
    }
    this.#context.logger.info({ client: clientAddress, target: opened.info.target, first_byte: first }, 'tunnel closed: neither TLS nor HTTP');
    opened.upstream?.destroy();
    socket.destroy();
  }
}

/** `host:port`, an IPv6 host in brackets. */
function targetText(target: Authority): string {
  return `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
}

/** The normal form of a SOCKS5 target (IPv4, IPv6 or domain), or undefined when unusable. */
function socksTarget(host: string, port: number): Authority | undefined {
  if (host.includes(':')) return parseAuthority(`[${host}]:${port}`, 0);
  if (/[^A-Za-z0-9._-]/.test(host)) return undefined;
  return parseAuthority(`${host}:${port}`, 0);
}

/** True for the first byte of an HTTP request line (an upper-case method token). */
function isHttpMethodStart(byte: number): boolean {
  return byte >= 0x41 && byte <= 0x5a;
}
