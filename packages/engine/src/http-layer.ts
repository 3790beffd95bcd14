import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '@proxy/core';
import { clientAddressOf } from './exchange.js';
import type { Ingress } from './ingress.js';
import type { ProxyApp } from './proxy-app.js';
import { proxyWebSocketUpgrade, type UpgradeContext } from './websocket-upgrade.js';

/** What a server needs to hand its requests to the app. */
export interface ServeOptions {
  readonly app: ProxyApp;
  /** The `node:http` settings (timeouts) of the servers built from these options; see `proxyServerOptions`. */
  readonly serverOptions: ServerOptions;
  readonly upgrades: UpgradeContext;
  readonly logger: Logger;
  /** Listener kind, for log lines. */
  readonly listener: string;
  /** The ingress of the requests arriving on `socket`. */
  readonly ingressOf: (socket: Duplex) => Ingress;
  /** Takes a CONNECT request; by default it goes the upgrade path, where the ingress refuses it. */
  readonly onConnect?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/**
 * Wires a `node:http` server to the app: requests, WebSocket upgrades and CONNECT go to the
 * app with their connection's ingress; bytes that are not HTTP are answered 400 (431, 408)
 * and logged, since there is no request to audit.
 */
export function serveProxyApp(server: Server, options: ServeOptions): void {
  const { app, upgrades, logger, ingressOf } = options;
  server.on('request', (req, res) => app.handle(req, res, ingressOf(req.socket)));
  const onSocketRequest = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void proxyWebSocketUpgrade(upgrades, ingressOf(socket), req, socket, head);
  };
  server.on('upgrade', onSocketRequest);
  server.on('connect', options.onConnect ?? onSocketRequest);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // A client too slow to send its request (slowloris) is worth an operator's attention.
    if (timedOut) logger.info({ listener: options.listener, remote_addr: clientAddressOf(socket as Socket), reason: 'request_timeout' }, 'client too slow sending its request: 408');
    else logger.debug({ listener: options.listener, code: err.code }, 'malformed request');
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : timedOut ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
}

/**
 * The HTTP side of connections a listener accepted and opened itself (decrypted TLS, the
 * inside of a tunnel, the tunnel listener's own requests): a `node:http` server that never
 * listens. Each connection is handed over with the ingress its requests use.
 */
export class ConnectionHttpLayer {
  readonly #server: Server;
  readonly #ingress = new WeakMap<Duplex, Ingress>();

  constructor(options: Omit<ServeOptions, 'ingressOf'>) {
    this.#server = createServer(options.serverOptions);
    serveProxyApp(this.#server, { ...options, ingressOf: (socket) => this.ingressOf(socket) });
    // A server starts tracking its connections (header timeouts, closing idle connections) when
    // it starts listening. This one never listens: connections are handed to it.
    this.#server.emit('listening');
  }

  /** The ingress `socket` was handed over with. */
  ingressOf(socket: Duplex): Ingress {
    const ingress = this.#ingress.get(socket);
    if (ingress === undefined) throw new Error('connection handed to the HTTP layer without an ingress');
    return ingress;
  }

  /**
   * Hands over a connection whose requests use `ingress`. `rest`: bytes already read from it
   * (they are read again first). A connection may be handed over again (a tunnel opened on it).
   */
  accept(socket: Duplex, ingress: Ingress, rest: Buffer = Buffer.alloc(0)): void {
    this.#ingress.set(socket, ingress);
    socket.pause();
    if (rest.length > 0) socket.unshift(rest);
    this.#server.emit('connection', socket);
    socket.resume();
  }

  /** Closes the connections with no request in flight. */
  closeIdleConnections(): void {
    this.#server.closeIdleConnections();
  }

  /** Closes every connection. */
  closeAllConnections(): void {
    this.#server.closeAllConnections();
  }

  /** Stops the connection tracking; call after the last connection is gone. */
  close(): void {
    this.#server.close(() => undefined);
  }
}
