import type { Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '@proxy/core';
import { ConnectionSet } from './connection-set.js';
import type { ConnectionHttpLayer } from './http-layer.js';

/** What a listener serves. */
export type ListenerKind = 'http' | 'reverse' | 'https' | 'tunnel';

/** One bound server and the connections it owns. */
export interface Listener {
  /** The server `listen()` binds. */
  readonly server: Server;
  /** Closes the connections with no request in flight (during shutdown). */
  closeIdleConnections(): void;
  /** Closes every connection the listener owns. */
  closeAllConnections(): void;
}

/** A `node:http` (or `node:https`) server that hands its requests to the app itself. */
export class HttpListener implements Listener {
  readonly server: HttpServer;

  constructor(server: HttpServer) {
    this.server = server;
  }

  closeIdleConnections(): void {
    this.server.closeIdleConnections();
  }

  closeAllConnections(): void {
    this.server.closeAllConnections();
  }
}

/**
 * A TCP server whose connections the engine reads first (a ClientHello, a SOCKS5 handshake)
 * and then hands to an HTTP layer or splices. It owns every connection it accepted until that
 * connection closes, whatever became of it.
 */
export class InterceptingListener implements Listener {
  readonly server: Server;
  readonly #layer: ConnectionHttpLayer;
  readonly #accepted = new ConnectionSet();

  /** `serve` takes each accepted connection; it must not throw, and is logged if it does. */
  constructor(layer: ConnectionHttpLayer, serve: (socket: Socket) => Promise<void>, logger: Logger, kind: ListenerKind) {
    this.#layer = layer;
    this.server = createServer({ noDelay: true }, (socket) => {
      this.#accepted.add(socket);
      socket.on('error', () => socket.destroy());
      serve(socket).catch((err: unknown) => {
        logger.error({ listener: kind, error_class: err instanceof Error ? err.name : typeof err }, 'connection handling failed');
        socket.destroy();
      });
    });
  }

  closeIdleConnections(): void {
    this.#layer.closeIdleConnections();
  }

  closeAllConnections(): void {
    this.#layer.closeAllConnections();
    this.#accepted.destroyAll();
    this.#layer.close();
  }
}
