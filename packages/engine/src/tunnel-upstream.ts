import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Client } from 'undici';
import type { DedicatedUpstream } from './ingress.js';
import type { UpstreamGuard, UpstreamTarget } from './upstream-guard.js';

/** Where a tunnel's requests go. */
export interface TunnelDestination {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
}

/**
 * The upstream side of a tunnel whose requests the proxy reads (TLS interception or plain
 * HTTP): one undici client for the tunnel's destination. A connection dialled when the
 * tunnel opened carries the first request (wrapped in verified TLS for https); any later one,
 * or the first when the tunnel opened without dialling, is dialled through the guard. Closed
 * together with the tunnel.
 */
export class TunnelUpstream implements DedicatedUpstream {
  readonly dispatcher: Client;
  readonly #guard: UpstreamGuard;
  #opened: Socket | undefined;

  /** `opened`: the connection the guard dialled (`tls: false`) when the tunnel opened, if it did; it now belongs to this object. */
  constructor(guard: UpstreamGuard, destination: TunnelDestination, opened: Socket | undefined) {
    this.#guard = guard;
    this.#opened = opened;
    const host = destination.host.includes(':') ? `[${destination.host}]` : destination.host;
    const target: UpstreamTarget = { host: destination.host, port: destination.port, tls: destination.scheme === 'https' };
    this.dispatcher = new Client(`${destination.scheme}://${host}:${destination.port}`, {
      connect: (_options, callback) => {
        this.connect(target).then(
          (socket) => callback(null, socket),
          (err: Error) => callback(err, null),
        );
      },
      allowH2: false,
      bodyTimeout: 0,
    });
  }

  /** The opened connection while it is still usable, else a new one through the guard. */
  async connect(target: UpstreamTarget): Promise<Socket | TLSSocket> {
    const opened = this.#take();
    if (opened === undefined) return this.#guard.connect(target);
    return target.tls ? this.#guard.secure(opened, target.host) : opened;
  }

  /** Closes the client and its connections, and the opened connection if it was never used. */
  close(): void {
    this.#opened?.destroy();
    this.#opened = undefined;
    this.dispatcher.destroy().catch(() => undefined);
  }

  #take(): Socket | undefined {
    const opened = this.#opened;
    this.#opened = undefined;
    if (opened === undefined || (!opened.destroyed && opened.writable && !opened.readableEnded)) return opened;
    // The upstream closed it while the tunnel was idle.
    opened.destroy();
    return undefined;
  }
}
