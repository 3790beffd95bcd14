// TLS handshake load for the benchmarks: clients in a worker thread (so they do not share the
// server's event loop) open new connections as fast as a fixed concurrency allows, each one a
// full handshake (no session reuse) checked against the CA and the server name, then closed.
import { performance } from 'node:perf_hooks';
import { connect } from 'node:tls';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

if (!isMainThread) await runClients(workerData);

/**
 * Runs `concurrency` clients against `127.0.0.1:port` for `seconds` and resolves with the number
 * of completed handshakes and the time they took. Names are `<prefix>-<n>.bench.test`: with
 * `cycle`, n goes round 0..cycle-1 (names the server has seen: warm cache); without it, every
 * connection gets a name of its own (cold: each handshake needs a new leaf).
 */
export async function measureHandshakes({ port, caPem, concurrency, seconds, prefix, cycle }) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { port, caPem, concurrency, seconds, prefix, cycle } });
  return new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
}

async function runClients({ port, caPem, concurrency, seconds, prefix, cycle }) {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let opened = 0;
  let count = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      const n = opened++;
      const servername = `${prefix}-${cycle === undefined ? n : n % cycle}.bench.test`;
      await new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, servername, ca: [caPem] });
        socket.once('secureConnect', () => {
          socket.destroy();
          if (!socket.authorized) return reject(new Error(`${servername}: not authorized: ${socket.authorizationError}`));
          count++;
          resolve();
        });
        socket.once('error', reject);
      });
    }
  }));
  parentPort.postMessage({ count, elapsedMs: performance.now() - started });
}
