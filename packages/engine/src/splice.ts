import type { Duplex } from 'node:stream';
import type { ConnectionSet } from './connection-set.js';

/**
 * Pipes two connections into each other both ways until either side ends or fails, then
 * closes both. The client side is kept in `open` so shutdown can end it.
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
  upstream.pipe(client);
}
