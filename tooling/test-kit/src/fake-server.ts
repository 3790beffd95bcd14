import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hostForUrl } from './host.js';

/** A fake's listening HTTP server: its base URL and a close that does not wait for idle keep-alive connections. */
export interface ListeningFake {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Listens on `host` at an ephemeral port and tracks the server's sockets, so `close()` ends
 * kept-alive client connections at once instead of waiting for them to time out.
 */
export async function listenFake(server: Server, host: string): Promise<ListeningFake> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    url: `http://${hostForUrl(host)}:${(server.address() as AddressInfo).port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * Holds a fake's requests while a hold is on: `hold()` returns the release of that hold only
 * (releasing an older hold does not lift a newer one).
 */
export class HoldGate {
  #held: Promise<void> | undefined;

  /** Starts holding; the returned function releases the requests waiting on this hold. */
  hold(): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.#held = gate;
    return () => {
      if (this.#held === gate) this.#held = undefined;
      release();
    };
  }

  /** Resolves at once when nothing is held, else when the current hold is released. */
  async passed(): Promise<void> {
    if (this.#held !== undefined) await this.#held;
  }
}
