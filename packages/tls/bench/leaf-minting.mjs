// Benchmark of @proxy/tls (not a test): leaf mints per second (cold, distinct names), cached
// lookups per second, and full TLS handshakes per second against a loopback `tls` server whose
// SNICallback uses the issuer (warm cache, a new connection per handshake). The clients run in a
// worker thread so that they do not share the server's event loop. Runs from the built package:
// `pnpm --filter @proxy/tls bench`.
import { availableParallelism, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { connect, createServer } from 'node:tls';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { LeafCertificateIssuer, certificateAuthorityFromPem, generateCertificateAuthority } from '../dist/index.js';

const WARMUP_MINTS = 100;
const COLD_MINTS = 500;
const CONCURRENT_MINTS = 500;
const MINT_CONCURRENCY = 16;
const CACHED_LOOKUPS = 200_000;
const WARM_NAMES = 100;
const HANDSHAKE_SECONDS = 4;

if (isMainThread) await main();
else await handshakeClient(workerData);

async function main() {
  console.log(`node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'})`);
  for (const algorithm of ['ec', 'rsa']) {
    const generated = await generateCertificateAuthority({ algorithm });
    const ca = await certificateAuthorityFromPem(generated);
    const label = algorithm === 'ec' ? 'ECDSA P-256 CA' : 'RSA 2048 CA';
    console.log(`\n${label}`);

    const issuer = new LeafCertificateIssuer(ca, { cacheSize: 10_000 });
    for (let i = 0; i < WARMUP_MINTS; i++) await issuer.secureContextFor(`warmup-${i}.bench.test`);
    let started = performance.now();
    for (let i = 0; i < COLD_MINTS; i++) await issuer.secureContextFor(`sequential-${i}.bench.test`);
    report('cold mints, one at a time', COLD_MINTS, started);

    started = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: MINT_CONCURRENCY }, async () => {
      while (next < CONCURRENT_MINTS) await issuer.secureContextFor(`concurrent-${next++}.bench.test`);
    }));
    report(`cold mints, ${MINT_CONCURRENCY} in flight`, CONCURRENT_MINTS, started);

    for (let i = 0; i < WARM_NAMES; i++) await issuer.secureContextFor(`sequential-${i}.bench.test`);
    started = performance.now();
    for (let i = 0; i < CACHED_LOOKUPS; i++) await issuer.secureContextFor(`sequential-${i % WARM_NAMES}.bench.test`);
    report('cached lookups', CACHED_LOOKUPS, started);

    if (algorithm === 'ec') await handshakes(issuer, generated.certPem);
  }
}

async function handshakes(issuer, caPem) {
  const server = createServer({
    SNICallback: (name, callback) => {
      issuer.secureContextFor(name).then((context) => callback(null, context), callback);
    },
  }, (socket) => socket.end());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  for (const concurrency of [1, 8]) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { port, caPem, concurrency, seconds: HANDSHAKE_SECONDS, names: WARM_NAMES } });
    const { count, elapsedMs } = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
    console.log(`  ${`TLS handshakes, ${concurrency} client${concurrency > 1 ? 's' : ''}`.padEnd(32)} ${format(count / (elapsedMs / 1000))}/s  (${count} in ${(elapsedMs / 1000).toFixed(1)} s, new connection each, warm cache)`);
  }
  await new Promise((resolve) => server.close(resolve));
}

/** Worker: `concurrency` clients each completing full handshakes (no session reuse) until the time is up. */
async function handshakeClient({ port, caPem, concurrency, seconds, names }) {
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let count = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      await new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, servername: `sequential-${count % names}.bench.test`, ca: [caPem] });
        socket.once('secureConnect', () => {
          if (!socket.authorized) reject(new Error(`not authorized: ${socket.authorizationError}`));
          count++;
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });
    }
  }));
  parentPort.postMessage({ count, elapsedMs: performance.now() - started });
}

function report(what, count, started) {
  const elapsedMs = performance.now() - started;
  console.log(`  ${what.padEnd(32)} ${format(count / (elapsedMs / 1000))}/s  (${(elapsedMs / count).toFixed(3)} ms each)`);
}

function format(rate) {
  return Math.round(rate).toLocaleString('en-US');
}
