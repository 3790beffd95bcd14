import type { Duplex } from 'node:stream';

/** How long a refused connection may stay half-closed, waiting for the client to close its side. */
const LINGER_MS = 5_000;

/**
 * Ends a raw connection the engine refuses: sends `last` (a SOCKS reply, a TLS alert), then
 * closes its side and discards whatever the client still sends, so the reply is not lost to a
 * reset. A client that never closes its side is cut off after a short linger.
 */
export function endConnection(socket: Duplex, last?: Uint8Array): void {
  if (socket.destroyed) return;
  socket.on('error', () => socket.destroy());
  socket.resume();
  socket.end(last);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
