// Benchmark (not a test): full TLS handshakes per second THROUGH the engine's `https_listen`
// (`tls.mode: mitm`): createEngine from @proxy/engine with this package's LeafCertificateIssuer
// as its certificate source and a pipeline that allows everything. The engine reads each
// ClientHello, takes the SNI, and answers with the leaf for that name. Clients (in a worker
// thread, trusting only the CA, SNI set) open a new connection per handshake at a fixed
// concurrency: first against names already minted (warm cache), then with a name of their own
// each (cold: every handshake mints a leaf). Loopback only. Runs from the built packages:
// `pnpm --filter @proxy/tls bench`.
import { availableParallelism, cpus } from 'node:os';
import { createPipeline, createTransformEnv, systemClock } from '@proxy/core';
import { createEngine } from '@proxy/engine';
import { LeafCertificateIssuer, certificateAuthorityFromPem, generateCertificateAuthority } from '../dist/index.js';
import { measureHandshakes } from './handshake-clients.mjs';

const CONCURRENCY = 8;
const SECONDS = 4;
const WARM_NAMES = 100;

/** The engine's operational log is not part of what is measured. */
const silentLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

console.log(`\nnode ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'})`);
console.log(`\nhttps_listen (mitm), ECDSA P-256 CA, ${CONCURRENCY} clients, new connection each`);

const generated = await generateCertificateAuthority({ algorithm: 'ec' });
const issuer = new LeafCertificateIssuer(await certificateAuthorityFromPem(generated));
let audits = 0;
const engine = createEngine({
  logger: silentLogger,
  onAudit: () => audits++,
  httpsListen: '127.0.0.1:0',
  certificates: issuer,
  maxRequestBodyBytes: 1024 * 1024,
  maxResponseBodyBytes: 0,
  upstreamResponseHeaderTimeoutMs: 30_000,
  upstreamDenyCidrs: [],
});
const shutdown = new AbortController();
const pipeline = await createPipeline(
  [],
  (_spec, instanceId) => createTransformEnv({ instanceId, logger: silentLogger, http: engine.http, signal: shutdown.signal }),
  { clock: systemClock, logger: silentLogger },
);
engine.setPipeline(pipeline);
const addresses = await engine.listen();
const port = addresses.find((listener) => listener.kind === 'https').port;

try {
  for (let i = 0; i < WARM_NAMES; i++) await issuer.secureContextFor(`warm-${i}.bench.test`);
  await run('warm cache', { prefix: 'warm', cycle: WARM_NAMES });
  await run('cold (a new name each)', { prefix: 'cold' });
  // A connection that ends after its handshake carries no request: nothing to audit.
  if (audits !== 0) throw new Error(`expected no audit records, got ${audits}`);
} finally {
  await engine.close(1_000);
  shutdown.abort();
  await pipeline.close();
}

async function run(what, names) {
  const { count, elapsedMs } = await measureHandshakes({ port, caPem: generated.certPem, concurrency: CONCURRENCY, seconds: SECONDS, ...names });
  const rate = Math.round(count / (elapsedMs / 1000)).toLocaleString('en-US');
  console.log(`  ${`TLS handshakes, ${what}`.padEnd(40)} ${rate}/s  (${count} in ${(elapsedMs / 1000).toFixed(1)} s)`);
}
