// Benchmark of @proxy/tls (not a test): leaf mints per second (cold, distinct names), cached
// lookups per second, and full TLS handshakes per second against a loopback `tls` server whose
// SNICallback uses the issuer (warm cache, a new connection per handshake). The clients run in a
// worker thread so that they do not share the server's event loop. Runs from the built package:
// `pnpm --filter @proxy/tls bench` (which also runs https-listen.mjs).
import { availableParallelism, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createServer } from 'node:tls';
import { LeafCertificateIssuer, certificateAuthorityFromPem, generateCertificateAuthority } from '../dist/index.js';
import { measureHandshakes } from './handshake-clients.mjs';

const WARMUP_MINTS = 100;
const COLD_MINTS = 500;
const CONCURRENT_MINTS = 500;
const MINT_CONCURRENCY = 16;
const CACHED_LOOKUPS = 200_000;
const WARM_NAMES = 100;
const HANDSHAKE_SECONDS = 4;

await main();

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
    const { count, elapsedMs } = await measureHandshakes({ port, caPem, concurrency, seconds: HANDSHAKE_SECONDS, prefix: 'sequential', cycle: WARM_NAMES });
    console.log(`  ${`TLS handshakes, ${concurrency} client${concurrency > 1 ? 's' : ''}`.padEnd(32)} ${format(count / (elapsedMs / 1000))}/s  (${count} in ${(elapsedMs / 1000).toFixed(1)} s, new connection each, warm cache)`);
  }
  await new Promise((resolve) => server.close(resolve));
}

function report(what, count, started) {
  const elapsedMs = performance.now() - started;
  console.log(`  ${what.padEnd(32)} ${format(count / (elapsedMs / 1000))}/s  (${(elapsedMs / count).toFixed(3)} ms each)`);
}

function format(rate) {
  return Math.round(rate).toLocaleString('en-US');
}
