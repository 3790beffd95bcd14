import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionSet } from './connection-set.js';
import { spliceReads } from './pooled-read-socket.js';

/**
 * Pipes two connections into each other both ways until either side ends or fails, then
 * closes both. The client side is kept in `open` so shutdown can end it. An upstream dialled
 * with pooled reads (`pooled-read-socket.ts`) writes its reads to the client from reused
 * buffers instead of a pipe.
 */
export function splice(client: Duplex, upstream: Duplex, open: ConnectionSet): void {
  open.add(client);
  const teardown = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', teardown).on('close', teardown);
  upstream.on('error', teardown).on('close', teardown);
  if (client.destroyed || upstream.destroyed) {
    teardown();
    return;
  }
  client.pipe(upstream);
  if (!(upstream instanceof Socket && client instanceof Socket && spliceReads(upstream, client))) upstream.pipe(client);
}
