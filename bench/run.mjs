// `pnpm bench`: the proxy against the proxies people would use instead, on one machine.
// See bench/README.md for what each case measures and the CPU split.
//
// Environment: BENCH_DURATION (seconds per repetition, default 4), BENCH_REPS (default 3),
// BENCH_CONNECTIONS (default 50), BENCH_LATENCY_DURATION (seconds per repetition of the
// open-loop latency cases, default 5), BENCH_LATENCY_RATES (default 1000,5000), BENCH_ONLY
// (a regex on case ids), BENCH_SKIP_BUILD=1, BENCH_SKIP_INSTALL=1, BENCH_OUT (result file;
// default bench/results/<timestamp>.json). BENCH_PAIRED=1 runs the interleaved comparisons
// instead (see pairedComparisons; BENCH_PAIRED_ROUNDS, default 8, rounds of BENCH_DURATION
// seconds per side; BENCH_ONLY then filters pair ids); with BENCH_PAIRED_FLAGS (Node flags)
// or BENCH_PAIRED_ENV (NAME=value ...), the pairs are our proxy with those flags and variables
// against it as shipped (see flagPairs).

import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildLoadgen, load } from './lib/measure.mjs';
import { cpuSeconds, have, peakRssMiB, resetPeakRss, rssMiB, run } from './lib/procs.mjs';
import { startFastifyForwarder, startMitmdump, startNginxReverse, startOrigin, startOurs, startSquid, startTinyproxy } from './lib/servers.mjs';
import { peakComposition } from './lib/memory-profile.mjs';
import { formatPairTable, measurePair, parseEnvAssignments } from './lib/paired.mjs';
import { addLatencyOverhead, CLIENT_SATURATED_PCT, formatLatencyTable, formatMemoryTable, formatTable, summarize } from './lib/report.mjs';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const SETTINGS = {
  seconds: Number(process.env.BENCH_DURATION ?? 4),
  reps: Number(process.env.BENCH_REPS ?? 3),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 50),
  warmupSeconds: 1,
  latencySeconds: Number(process.env.BENCH_LATENCY_DURATION ?? 5),
  latencyRates: (process.env.BENCH_LATENCY_RATES ?? '1000,5000').split(',').map(Number),
};
const ONLY = process.env.BENCH_ONLY === undefined ? undefined : new RegExp(process.env.BENCH_ONLY);
const PAIRED = process.env.BENCH_PAIRED === '1';
const PAIRED_ROUNDS = Number(process.env.BENCH_PAIRED_ROUNDS ?? 8);
/** Node flags to weigh against the proxy's own settings (BENCH_PAIRED=1): see flagPairs. */
const PAIRED_FLAGS = (process.env.BENCH_PAIRED_FLAGS ?? '').split(' ').filter((f) => f !== '');
/** Environment variables (`NAME=value`, space-separated) to weigh the same way: see flagPairs. */
const PAIRED_ENV = parseEnvAssignments('BENCH_PAIRED_ENV', process.env.BENCH_PAIRED_ENV ?? '');
const PLACEHOLDER = 'proxy-bench-token';
const REAL_TOKEN = 'real-bench-secret-7f3a9c';
/** nginx adds a header the size of the Authorization line aws_jwt writes (a ~900-byte JWT). */
const JWT_SIZED_HEADER = { name: 'Authorization', value: `Bearer ${'x'.repeat(893)}` };
const NEW_CONN_NAMES = Array.from({ length: 8 }, (_, i) => `n${i}.bench.test`);
const PEERS = { nginx: 'nginx', squid: 'squid', tinyproxy: 'tinyproxy', mitmdump: 'mitmproxy' };
/** What compiling bench/loadgen/loadgen.c needs: a test for each and its Debian package. */
const BUILD_TOOLS = {
  gcc: { pkg: 'gcc', present: () => have('gcc') },
  'libssl-dev': { pkg: 'libssl-dev', present: async () => existsSync('/usr/include/openssl/ssl.h') },
};

const log = (line) => process.stdout.write(`${line}\n`);

/**
 * Installs the Debian packages of missing tools (as root); returns the tools present after
 * (the peers by command, and `loadgen` when the load generator can be compiled).
 */
async function ensureTools() {
  const missing = [];
  for (const [cmd, pkg] of Object.entries(PEERS)) if (!(await have(cmd))) missing.push(pkg);
  for (const tool of Object.values(BUILD_TOOLS)) if (!(await tool.present())) missing.push(tool.pkg);
  if (missing.length > 0 && process.env.BENCH_SKIP_INSTALL !== '1') {
    if (process.getuid?.() === 0) {
      log(`installing from Debian: ${missing.join(' ')}`);
      for (const pkg of missing) {
        try {
          await run('apt-get', ['install', '-y', pkg], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
        } catch (err) {
          log(`  apt-get install ${pkg} failed: ${String(err.stderr ?? err.message).trim().split('\n').pop()}`);
        }
      }
    } else {
      log(`not root: cannot install ${missing.join(' ')}; run as root or install them yourself`);
    }
  }
  const present = {};
  for (const cmd of Object.keys(PEERS)) present[cmd] = await have(cmd);
  for (const [cmd, ok] of Object.entries(present)) if (!ok) log(`SKIP: ${cmd} is not installed; its cases are left out`);
  present.loadgen = true;
  for (const [name, tool] of Object.entries(BUILD_TOOLS)) {
    if (!(await tool.present())) {
      log(`${name} is missing: the load generator cannot be compiled`);
      present.loadgen = false;
    }
  }
  return present;
}

async function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const version = async (cmd, args) => {
    try {
      const { execFile } = await import('node:child_process');
      return await new Promise((resolve) =>
        execFile(cmd, args, (err, stdout, stderr) => resolve(err ? null : `${stdout}${stderr}`.trim().split('\n')[0])),
      );
    } catch {
      return null;
    }
  };
  return {
    cpu_model: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown',
    cores: os.cpus().length,
    memory_mib: Math.round(os.totalmem() / 1048576),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    tools: {
      nginx: await version('nginx', ['-v']),
      squid: await version('squid', ['-v']),
      tinyproxy: await version('tinyproxy', ['-v']),
      mitmdump: await version('mitmdump', ['--version']),
      gcc: await version('gcc', ['--version']),
      openssl: await version('openssl', ['version']),
    },
  };
}

/**
 * Runs one case: a warm-up (not recorded), then `reps` repetitions of `seconds` with the same
 * settings. `load(seconds, marks)` performs one repetition (see lib/measure.mjs for `marks`);
 * `server` is the process whose peak RSS (over this case alone) and CPU are reported.
 */
async function measureCase(results, meta, server, load, seconds = SETTINGS.seconds) {
  if (ONLY !== undefined && !ONLY.test(meta.id)) return;
  process.stdout.write(`  ${meta.id} ...`);
  try {
    // The peak of this case (warm-up included), not of the cases the same server ran before.
    if (server !== undefined) resetPeakRss(server.child.pid);
    const from = Date.now();
    await load(SETTINGS.warmupSeconds);
    const reps = [];
    for (let i = 0; i < SETTINGS.reps; i++) {
      // The proxy's CPU over the client's measured window (not its warm-up or start-up).
      let cpuBefore = null;
      let cpuAfter = null;
      const proxyCpu = () => (server === undefined ? null : cpuSeconds(server.child.pid));
      const rep = await load(seconds, { onStart: () => (cpuBefore = proxyCpu()), onEnd: () => (cpuAfter = proxyCpu()) });
      if (cpuBefore !== null && cpuAfter !== null && rep.requests > 0) rep.proxy_cpu_us_per_request = ((cpuAfter - cpuBefore) * 1e6) / rep.requests;
      reps.push(rep);
    }
    const rss = server === undefined ? null : peakRssMiB(server.child.pid);
    const entry = { ...meta, reps, peak_rss_mib: rss, idle_rss_mib: server?.idleRssMiB ?? null };
    if (server?.memorySamples !== undefined) entry.peak_memory = peakComposition(server.memorySamples, server.child.pid, from, Date.now());
    results.push(entry);
    const s = summarize(entry);
    const latency = meta.rate === undefined ? '' : ` of ${meta.rate}, p99 ${s.p99_ms?.toFixed(2)} ms`;
    log(` ${Math.round(s.rps)} req/s${latency} (spread ${s.spread_pct.toFixed(1)}%, client CPU ${s.client_cpu_pct?.toFixed(0)}%)${s.errors > 0 ? `, ${s.errors} errors` : ''}`);
  } catch (err) {
    results.push({ ...meta, error: String(err.message ?? err) });
    log(` FAILED: ${err.message ?? err}`);
  }
}

/** How long a started server is left alone before its idle RSS is read. */
const IDLE_SETTLE_MS = 1000;

/** Starts a server for a group of cases, runs them, stops it; a failed start skips the group. */
async function group(name, wanted, start, body) {
  if (!wanted.some((id) => ONLY === undefined || ONLY.test(id))) return;
  log(`${name}`);
  let server;
  try {
    server = await start();
  } catch (err) {
    log(`  SKIP ${name}: ${err.message ?? err}`);
    return;
  }
  // Resident memory once started and settled, before any load: what an idle proxy holds.
  if (server.child !== undefined) {
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    server.idleRssMiB = rssMiB(server.child.pid);
  }
  try {
    await body(server);
  } finally {
    await server.stop();
  }
}

/**
 * BENCH_PAIRED_FLAGS and BENCH_PAIRED_ENV: the same proxy with those Node flags and environment
 * variables (A) against it without them (B), in alternation, in every mode whose speed, memory
 * or tail a runtime setting could change: forward, reverse (`aws_jwt`), MITM and CONNECT at
 * 1 KiB and 64 KiB, six transforms, and MITM with a new connection per request. B runs with the
 * settings the binaries choose for themselves (see apps/proxy/src/runtime-flags.ts); a flag they
 * also set is replaced in A.
 */
function flagPairs({ workDir, origin, awsEnv, reverseYaml, forwardYaml, sniOnlyYaml, sixYaml, mitmYaml, tokenEnv, caFile, pki, absolute, bearer, httpLoad, tlsLoad }) {
  const label = [...PAIRED_FLAGS, ...Object.entries(PAIRED_ENV).map(([name, value]) => `${name}=${value}`)].join(' ');
  const pair = (id, ports, yaml, load, env = {}) => ({
    id,
    a: { label, start: () => startOurs(`flags-${id}`, workDir, ports, yaml, { ...env, ...PAIRED_ENV }, PAIRED_FLAGS), load },
    b: { label: 'as shipped', start: () => startOurs(`shipped-${id}`, workDir, ports, yaml, env), load },
  });
  const mitm = (size) => (s) => tlsLoad({ port: s.port.tunnel, connect: `localhost:${origin.tls}`, path: `/${size}`, authority: 'localhost', ca: caFile, headers: bearer });
  const tls = ['http', 'https', 'tunnel'];
  return [
    ...['1k', '64k'].flatMap((size) => [
      pair(`forward-${size}`, ['http'], forwardYaml(1), (s) => httpLoad(s.port.http, { ...absolute(size), headers: bearer })),
      pair(`reverse-${size}`, ['http', 'reverse'], reverseYaml, (s) => httpLoad(s.port.reverse, { path: `/${size}` }), awsEnv),
      pair(`mitm-${size}`, tls, mitmYaml, mitm(size), tokenEnv),
    ]),
    pair('six-transforms-1k', ['http'], sixYaml, (s) => httpLoad(s.port.http, { ...absolute('1k'), headers: bearer }), tokenEnv),
    ...['1k', '64k'].map((size) =>
      pair(`connect-${size}`, tls, sniOnlyYaml(1), (s) =>
        tlsLoad({ port: s.port.tunnel, connect: `localhost:${origin.tls}`, path: `/${size}`, authority: 'localhost', ca: pki.caFile })),
    ),
    pair('mitm-newconn', tls, mitmYaml, (s) =>
      tlsLoad({ port: s.port.tunnel, connect: `{name}:${origin.tls}`, names: NEW_CONN_NAMES, path: '/1k', authority: '{name}', ca: caFile, headers: bearer, newConnection: true }), tokenEnv),
  ];
}

/**
 * The issue's ratio targets measured in alternation (lib/paired.mjs): each pair's two servers
 * run at once on the proxy's core and take turns under the same closed-loop load (1 KiB,
 * BENCH_CONNECTIONS connections), so both sides see the same machine. Pairs: reverse with
 * `aws_jwt` vs the Fastify forwarder, forward vs squid, CONNECT `sni-only` vs squid (1 KiB and
 * 64 KiB), and two workers vs one process (forward) on the same core.
 */
async function pairedComparisons(setup) {
  const { workDir, origin, pki, awsEnv, reverseYaml, forwardYaml, sniOnlyYaml, absolute, bearer, tools, httpLoad, tlsLoad } = setup;
  const connectLoad = (port, size = '1k') => tlsLoad({ port, connect: `localhost:${origin.tls}`, path: `/${size}`, authority: 'localhost', ca: pki.caFile });
  const forward = { ...absolute('1k'), headers: bearer };
  const specs = PAIRED_FLAGS.length > 0 || Object.keys(PAIRED_ENV).length > 0 ? flagPairs(setup) : [
    {
      id: 'reverse-1k',
      a: { label: 'ours + aws_jwt', start: () => startOurs('paired-reverse', workDir, ['http', 'reverse'], reverseYaml, awsEnv), load: (s) => httpLoad(s.port.reverse, { path: '/1k' }) },
      b: { label: 'fastify', start: () => startFastifyForwarder(workDir, origin.plain), load: (s) => httpLoad(s.port, { path: '/1k' }) },
    },
    ...(tools.squid
      ? [
          {
            id: 'forward-1k',
            a: { label: 'ours', start: () => startOurs('paired-forward', workDir, ['http'], forwardYaml(1)), load: (s) => httpLoad(s.port.http, forward) },
            b: { label: 'squid', start: () => startSquid(workDir), load: (s) => httpLoad(s.port, forward) },
          },
          ...['1k', '64k'].map((size) => ({
            id: `connect-${size}`,
            a: { label: 'ours sni-only', start: () => startOurs(`paired-sni-only-${size}`, workDir, ['http', 'https', 'tunnel'], sniOnlyYaml(1)), load: (s) => connectLoad(s.port.tunnel, size) },
            b: { label: 'squid', start: () => startSquid(workDir), load: (s) => connectLoad(s.port, size) },
          })),
        ]
      : []),
    {
      id: 'workers2-forward-1k',
      a: { label: '2 workers', start: () => startOurs('paired-forward-workers2', workDir, ['http'], forwardYaml(2)), load: (s) => httpLoad(s.port.http, forward) },
      b: { label: '1 process', start: () => startOurs('paired-forward-1', workDir, ['http'], forwardYaml(1)), load: (s) => httpLoad(s.port.http, forward) },
    },
  ];
  const pairs = [];
  for (const spec of specs) {
    if (ONLY !== undefined && !ONLY.test(spec.id)) continue;
    process.stdout.write(`  ${spec.id}: ${spec.a.label} vs ${spec.b.label}, ${PAIRED_ROUNDS} rounds ...`);
    const servers = [];
    try {
      for (const side of [spec.a, spec.b]) servers.push(await side.start());
      const [a, b] = servers.map((server, i) => {
        const side = i === 0 ? spec.a : spec.b;
        return { label: side.label, server, load: side.load(server) };
      });
      const pair = await measurePair({ id: spec.id, a, b, rounds: PAIRED_ROUNDS, seconds: SETTINGS.seconds, warmupSeconds: SETTINGS.warmupSeconds });
      pairs.push(pair);
      log(` ${pair.summary.rps_ratio.median.toFixed(2)}x req/s, ${pair.summary.cpu_ratio?.median.toFixed(2) ?? '-'}x CPU per request`);
    } catch (err) {
      pairs.push({ id: spec.id, a: spec.a.label, b: spec.b.label, error: String(err.message ?? err) });
      log(` FAILED: ${err.message ?? err}`);
    } finally {
      for (const server of servers) await server.stop();
    }
  }
  return pairs;
}

async function main() {
  const started = new Date();
  await run('taskset', ['-pc', '0', String(process.pid)]);
  const tools = await ensureTools();
  if (!tools.nginx || !tools.loadgen) throw new Error('nginx (the origin), gcc and libssl-dev (the load generator) are required');
  if (process.env.BENCH_SKIP_BUILD !== '1') {
    log('building the workspace (pnpm exec turbo run build)');
    await run('pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], { cwd: REPO });
  }
  const kit = await import(pathToFileURL(join(REPO, 'tooling/test-kit/dist/index.js')).href);

  const workDir = mkdtempSync(join(os.tmpdir(), 'proxy-bench-'));
  chmodSync(workDir, 0o777);
  log(`work directory (configs, logs): ${workDir}`);
  const loadgen = await buildLoadgen(workDir);
  const pki = await kit.createTestPki({ names: ['localhost', '127.0.0.1', '*.bench.test'] });
  const caDir = join(workDir, 'ca');
  await run(process.execPath, [join(REPO, 'apps/proxy/dist/cli.js'), 'ca', 'generate', '--out', caDir, '--name', 'proxy bench CA']);
  const sts = await kit.startFakeSts();
  const dns = await kit.startDnsServer({ records: Object.fromEntries(['localhost', ...NEW_CONN_NAMES].map((n) => [n, { A: ['127.0.0.1'] }])) });
  const origin = await startOrigin(workDir, pki);
  const results = [];
  let stsCalls = 0;
  const c = SETTINGS.connections;

  /** Closed loop: `c` connections, each sending its next request when the answer is read. */
  const httpLoad = (port, extra = {}) => (seconds, marks) => load(loadgen, { port, connections: c, seconds, ...extra }, marks);
  const tlsLoad = (extra) => (seconds, marks) => load(loadgen, { tls: true, connections: c, seconds, ...extra }, marks);
  /** The ids of the open-loop cases of `name`, for a group's list of wanted cases. */
  const latencyIds = (name) => SETTINGS.latencyRates.map((rate) => `latency-${name}-${rate}`);
  /**
   * The open-loop cases `latency-<name>-<rate>`, one per rate in BENCH_LATENCY_RATES, 1 KiB:
   * `options` as for the closed-loop case, `meta.baseline` the direct case (`direct-http` or
   * `direct-https`) whose latency at the same rate is subtracted in the report.
   */
  const latencyCases = async (name, meta, server, options) => {
    for (const rate of SETTINGS.latencyRates) {
      await measureCase(results, { id: `latency-${name}-${rate}`, mode: meta.mode, size: '1k', rate, ...(meta.baseline === undefined ? {} : { baseline: `latency-${meta.baseline}-${rate}` }) }, server,
        (seconds, marks) => load(loadgen, { connections: c, seconds, rate, warmupSeconds: SETTINGS.warmupSeconds, ...options }, marks), SETTINGS.latencySeconds);
    }
  };
  const bearer = { Authorization: `Bearer ${PLACEHOLDER}` };
  const sizes = ['1k', '64k'];
  /** The ids of a closed-loop case measured at every body size (`<name>-1k`, `<name>-64k`), for the groups' `BENCH_ONLY` lists. */
  const sized = (name) => sizes.map((size) => `${name}-${size}`);
  const common = (ports, resolver) => `dns:
  enabled: false
${resolver === undefined ? '' : `  upstream_resolver: "${resolver}"\n`}log:
  level: warn
proxy:
  http_listen: "127.0.0.1:${ports.http}"
  upstream_deny_cidrs: []
`;
  /** Our reverse listener in front of the origin, with `aws_jwt` (the token cached after the first request). */
  const reverseYaml = (p) => `${common(p)}  reverse:
    - listen: "127.0.0.1:${p.reverse}"
      upstream_host: "127.0.0.1:${origin.plain}"
      upstream_scheme: http
transforms:
  - name: aws_jwt
    config:
      audience: ["https://api.bench.test"]
`;
  const awsEnv = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDBENCH',
    AWS_SECRET_ACCESS_KEY: 'bench-secret',
    AWS_ENDPOINT_URL_STS: sts.url,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  /** Our forward proxy with an empty pipeline, in `workers` processes. */
  const forwardYaml = (workers) => (p) => `${common(p)}${workers > 1 ? `  workers: ${workers}\n` : ''}transforms: []
`;
  /** Our CONNECT listener passing TLS through unread (`sni-only`), allowing the origin only. */
  const sniOnlyYaml = (workers) => (p) => `${common(p)}${workers > 1 ? `  workers: ${workers}\n` : ''}  https_listen: "127.0.0.1:${p.https}"
  tunnel_listen: "127.0.0.1:${p.tunnel}"
tls:
  mode: sni-only
transforms:
  - name: allowlist
    config:
      domains: ["localhost:${origin.tls}"]
`;
  /** Forward with six transforms that all match (allowlist, header_allowlist, annotate, two secrets, body_capture). */
  const sixYaml = (p) => `${common(p)}transforms:
  - name: allowlist
    config:
      rules:
        - { cidr: "127.0.0.0/8", ports: [${origin.plain}] }
  - name: header_allowlist
    config:
      headers: ["Host", "User-Agent", "Accept", "Authorization", "X-Api-Key"]
      rules:
        - host: "127.0.0.1"
  - name: annotate
    config:
      annotations:
        - rules:
            - host: "127.0.0.1"
          headers: ["user-agent"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: BENCH_REAL_TOKEN }
          replace:
            proxy_value: "${PLACEHOLDER}"
            match_headers: []
          rules:
            - host: "127.0.0.1"
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: BENCH_REAL_TOKEN }
          inject:
            header: X-Api-Key
            formatter: "{{ .Value }}"
          rules:
            - host: "127.0.0.1"
  - name: body_capture
    config:
      max_request_body_bytes: 1024
      rules:
        - host: "127.0.0.1"
`;
  /** MITM with allowlist + secrets replace, and a leaf cache of `cacheSize`. */
  const mitmConfig = (cacheSize) => (p) => `${common(p, dns.resolver)}  https_listen: "127.0.0.1:${p.https}"
  tunnel_listen: "127.0.0.1:${p.tunnel}"
tls:
  mode: mitm
  ca_cert: "${caDir}/ca.crt"
  ca_key: "${caDir}/ca.key"
  upstream_ca_bundle: "${pki.caFile}"
  cert_cache_size: ${cacheSize}
transforms:
  - name: allowlist
    config:
      domains: ["localhost:${origin.tls}", "*.bench.test:${origin.tls}"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: BENCH_REAL_TOKEN }
          replace:
            proxy_value: "${PLACEHOLDER}"
            match_headers: []
          rules:
            - host: "localhost"
            - host: "*.bench.test"
`;
  const absolute = (size) => ({ path: `http://127.0.0.1:${origin.plain}/${size}`, authority: `127.0.0.1:${origin.plain}` });

  try {
    if (PAIRED) {
      const pairs = await pairedComparisons({
        workDir, origin, pki, awsEnv, reverseYaml, forwardYaml, sniOnlyYaml, sixYaml, mitmYaml: mitmConfig(1000), tokenEnv: { BENCH_REAL_TOKEN: REAL_TOKEN },
        caFile: `${caDir}/ca.crt`, absolute, bearer, tools, httpLoad, tlsLoad,
      });
      await writeReport({ started, name: 'paired', body: { pairs }, print: () => log(formatPairTable(pairs)) });
      return;
    }
    // Direct to the origin: the ceilings.
    await group('direct (origin, no proxy)', [...sized('direct-http'), ...sized('direct-https'), 'direct-https-newconn', ...latencyIds('direct-http'), ...latencyIds('direct-https')], async () => ({ stop: async () => {} }), async () => {
      for (const size of sizes) {
        await measureCase(results, { id: `direct-http-${size}`, mode: 'direct', size }, undefined, httpLoad(origin.plain, { path: `/${size}` }));
      }
      for (const size of sizes) {
        await measureCase(results, { id: `direct-https-${size}`, mode: 'direct', size }, undefined,
          tlsLoad({ port: origin.tls, path: `/${size}`, authority: 'localhost', ca: pki.caFile }));
      }
      await measureCase(results, { id: 'direct-https-newconn', mode: 'direct', size: '1k', new_connection: true }, undefined,
        tlsLoad({ port: origin.tls, path: '/1k', authority: '{name}', names: NEW_CONN_NAMES, ca: pki.caFile, newConnection: true }));
      await latencyCases('direct-http', { mode: 'direct' }, undefined, { port: origin.plain, path: '/1k' });
      await latencyCases('direct-https', { mode: 'direct' }, undefined, { tls: true, port: origin.tls, path: '/1k', authority: 'localhost', ca: pki.caFile });
    });

    // Reverse mode.
    await group('reverse: ours (aws_jwt, cached token)', [...sized('reverse-ours'), ...latencyIds('reverse-ours')], () =>
      startOurs('reverse', workDir, ['http', 'reverse'], reverseYaml, awsEnv), async (s) => {
      for (const size of sizes) {
        await measureCase(results, { id: `reverse-ours-${size}`, mode: 'reverse', size, peer: `reverse-fastify-${size}`, direct: `direct-http-${size}` }, s, httpLoad(s.port.reverse, { path: `/${size}` }));
      }
      await latencyCases('reverse-ours', { mode: 'reverse', baseline: 'direct-http' }, s, { port: s.port.reverse, path: '/1k' });
    });
    await group('reverse: nginx proxy_pass (+ 900-byte header)', sized('reverse-nginx'), () => startNginxReverse(workDir, origin.plain, JWT_SIZED_HEADER), async (s) => {
      for (const size of sizes) {
        await measureCase(results, { id: `reverse-nginx-${size}`, mode: 'reverse', size, direct: `direct-http-${size}` }, s, httpLoad(s.port, { path: `/${size}` }));
      }
    });
    await group('reverse: Fastify + @fastify/http-proxy', sized('reverse-fastify'), () => startFastifyForwarder(workDir, origin.plain), async (s) => {
      for (const size of sizes) {
        await measureCase(results, { id: `reverse-fastify-${size}`, mode: 'reverse', size, direct: `direct-http-${size}` }, s, httpLoad(s.port, { path: `/${size}` }));
      }
    });

    // Forward plain HTTP (absolute-form).
    await group('forward: ours (empty pipeline)', [...sized('forward-ours'), ...latencyIds('forward-ours')], () =>
      startOurs('forward', workDir, ['http'], forwardYaml(1)), async (s) => {
      for (const size of sizes) {
        await measureCase(results, { id: `forward-ours-${size}`, mode: 'forward', size, peer: `forward-squid-${size}`, direct: `direct-http-${size}` }, s,
          httpLoad(s.port.http, { ...absolute(size), headers: bearer }));
      }
      await latencyCases('forward-ours', { mode: 'forward', baseline: 'direct-http' }, s, { port: s.port.http, ...absolute('1k'), headers: bearer });
    });
    await group('forward: ours (six matching transforms)', ['forward-six-transforms-1k'], () =>
      startOurs('six', workDir, ['http'], sixYaml, { BENCH_REAL_TOKEN: REAL_TOKEN }), async (s) => {
      await measureCase(results, { id: 'forward-six-transforms-1k', mode: 'forward', size: '1k', peer: 'forward-ours-1k', direct: 'direct-http-1k' }, s,
        httpLoad(s.port.http, { ...absolute('1k'), headers: bearer }));
    });
    if (tools.tinyproxy) {
      await group('forward: tinyproxy', ['forward-tinyproxy-1k'], () => startTinyproxy(workDir), async (s) => {
        await measureCase(results, { id: 'forward-tinyproxy-1k', mode: 'forward', size: '1k', direct: 'direct-http-1k' }, s,
          httpLoad(s.port, { ...absolute('1k'), headers: bearer }));
      });
    }
    if (tools.squid) {
      await group('forward + CONNECT: squid', [...sized('forward-squid'), ...sized('connect-squid'), ...latencyIds('forward-squid'), ...latencyIds('connect-squid')], () => startSquid(workDir), async (s) => {
        for (const size of sizes) {
          await measureCase(results, { id: `forward-squid-${size}`, mode: 'forward', size, direct: `direct-http-${size}` }, s,
            httpLoad(s.port, { ...absolute(size), headers: bearer }));
        }
        for (const size of sizes) {
          await measureCase(results, { id: `connect-squid-${size}`, mode: 'connect', size, direct: `direct-https-${size}` }, s,
            tlsLoad({ port: s.port, connect: `localhost:${origin.tls}`, path: `/${size}`, authority: 'localhost', ca: pki.caFile }));
        }
        await latencyCases('forward-squid', { mode: 'forward', baseline: 'direct-http' }, s, { port: s.port, ...absolute('1k'), headers: bearer });
        await latencyCases('connect-squid', { mode: 'connect', baseline: 'direct-https' }, s,
          { tls: true, port: s.port, connect: `localhost:${origin.tls}`, path: '/1k', authority: 'localhost', ca: pki.caFile });
      });
    }

    // CONNECT without interception.
    await group('CONNECT: ours (sni-only)', [...sized('connect-ours'), ...latencyIds('connect-ours')], () =>
      startOurs('sni-only', workDir, ['http', 'https', 'tunnel'], sniOnlyYaml(1)), async (s) => {
      for (const size of sizes) {
        await measureCase(results, { id: `connect-ours-${size}`, mode: 'connect', size, peer: `connect-squid-${size}`, direct: `direct-https-${size}` }, s,
          tlsLoad({ port: s.port.tunnel, connect: `localhost:${origin.tls}`, path: `/${size}`, authority: 'localhost', ca: pki.caFile }));
      }
      await latencyCases('connect-ours', { mode: 'connect', baseline: 'direct-https' }, s,
        { tls: true, port: s.port.tunnel, connect: `localhost:${origin.tls}`, path: '/1k', authority: 'localhost', ca: pki.caFile });
    });

    // Two worker processes (`proxy.workers: 2`) on the same single core as the one-process cases
    // above: equal CPU, so the rows show what the cluster itself costs per request (the shared
    // listener, the primary that writes the log stream), not the second core it would use.
    await group('forward: ours, 2 workers (empty pipeline)', ['forward-ours-workers2-1k'], () =>
      startOurs('forward-workers2', workDir, ['http'], forwardYaml(2)), async (s) => {
      await measureCase(results, { id: 'forward-ours-workers2-1k', mode: 'forward', size: '1k', peer: 'forward-ours-1k', direct: 'direct-http-1k' }, s,
        httpLoad(s.port.http, { ...absolute('1k'), headers: bearer }));
    });
    await group('CONNECT: ours, 2 workers (sni-only)', ['connect-ours-workers2-1k'], () =>
      startOurs('sni-only-workers2', workDir, ['http', 'https', 'tunnel'], sniOnlyYaml(2)), async (s) => {
      await measureCase(results, { id: 'connect-ours-workers2-1k', mode: 'connect', size: '1k', peer: 'connect-ours-1k', direct: 'direct-https-1k' }, s,
        tlsLoad({ port: s.port.tunnel, connect: `localhost:${origin.tls}`, path: '/1k', authority: 'localhost', ca: pki.caFile }));
    });

    // MITM with allowlist + secrets replace.
    await group('MITM: ours (allowlist + secrets replace)', [...sized('mitm-ours'), 'mitm-ours-newconn-warm', ...latencyIds('mitm-ours')], () =>
      startOurs('mitm', workDir, ['http', 'https', 'tunnel'], mitmConfig(1000), { BENCH_REAL_TOKEN: REAL_TOKEN }), async (s) => {
      for (const size of sizes) {
        await measureCase(results, { id: `mitm-ours-${size}`, mode: 'mitm', size, ...(size === '1k' ? { peer: 'mitm-mitmdump-1k' } : {}), direct: `direct-https-${size}` }, s,
          tlsLoad({ port: s.port.tunnel, connect: `localhost:${origin.tls}`, path: `/${size}`, authority: 'localhost', ca: `${caDir}/ca.crt`, headers: bearer }));
      }
      await measureCase(results, { id: 'mitm-ours-newconn-warm', mode: 'mitm-newconn', size: '1k', direct: 'direct-https-newconn' }, s,
        tlsLoad({ port: s.port.tunnel, connect: `{name}:${origin.tls}`, names: NEW_CONN_NAMES, path: '/1k', authority: '{name}', ca: `${caDir}/ca.crt`, headers: bearer, newConnection: true }));
      await latencyCases('mitm-ours', { mode: 'mitm', baseline: 'direct-https' }, s,
        { tls: true, port: s.port.tunnel, connect: `localhost:${origin.tls}`, path: '/1k', authority: 'localhost', ca: `${caDir}/ca.crt`, headers: bearer });
    });
    await group('MITM: ours, leaf cache of 1 (cold)', ['mitm-ours-newconn-cold'], () =>
      startOurs('mitm-cold', workDir, ['http', 'https', 'tunnel'], mitmConfig(1), { BENCH_REAL_TOKEN: REAL_TOKEN }), async (s) => {
      await measureCase(results, { id: 'mitm-ours-newconn-cold', mode: 'mitm-newconn', size: '1k', peer: 'mitm-ours-newconn-warm', direct: 'direct-https-newconn' }, s,
        tlsLoad({ port: s.port.tunnel, connect: `{name}:${origin.tls}`, names: NEW_CONN_NAMES, path: '/1k', authority: '{name}', ca: `${caDir}/ca.crt`, headers: bearer, newConnection: true }));
    });
    if (tools.mitmdump) {
      await group('MITM: mitmdump (addon: allowlist + header replace)', ['mitm-mitmdump-1k'], () => startMitmdump(workDir, REAL_TOKEN), async (s) => {
        await measureCase(results, { id: 'mitm-mitmdump-1k', mode: 'mitm', size: '1k', direct: 'direct-https-1k' }, s,
          tlsLoad({ port: s.port, connect: `localhost:${origin.tls}`, path: '/1k', authority: 'localhost', ca: s.ca, headers: bearer }));
      });
    }
  } finally {
    stsCalls = sts.calls.length;
    await origin.stop();
    await sts.close();
    await dns.close();
    await pki.remove();
  }

  await writeReport({
    started,
    name: undefined,
    body: { cases: addLatencyOverhead(results.map((r) => ({ ...r, summary: r.error === undefined ? summarize(r) : undefined }))) },
    print: (report) => {
      log(formatTable(report.cases.filter((r) => r.rate === undefined)));
      const openLoop = report.cases.filter((r) => r.rate !== undefined);
      if (openLoop.length > 0) {
        log('');
        log('Open loop (fixed rate; latency from the intended send time; + = added over the direct case at the same rate):');
        log(formatLatencyTable(openLoop));
      }
      const profiled = report.cases.filter((r) => r.peak_memory !== undefined);
      if (profiled.length > 0) {
        log('');
        log('Our proxy at its peak RSS in each case (BENCH_MEMORY_PROFILE=1; MiB; the first process of a cluster):');
        log(formatMemoryTable(profiled));
      }
    },
    fakeStsCalls: stsCalls,
  });
}

/**
 * Prints a run's table (`print(report)`) with the notes every table needs, and writes the
 * report (settings, machine, `body`) to BENCH_OUT or `bench/results/<start time>[-<name>].json`.
 */
async function writeReport({ started, name, body, print, fakeStsCalls = null }) {
  const report = {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    settings: {
      ...SETTINGS,
      ...(PAIRED ? { paired_rounds: PAIRED_ROUNDS } : {}),
      load_generator: 'bench/loadgen/loadgen.c (C, epoll, OpenSSL; one thread on the load core)',
      cpu_split: 'core 0: load generator + origin (nginx, 1 worker) + harness; core 1: the proxy under test',
      log_level: 'warn (audit lines of allowed requests are INFO, so they are not written)',
      ...(fakeStsCalls === null ? {} : { fake_sts_calls: fakeStsCalls }),
    },
    machine: await machine(),
    ...body,
  };
  log('');
  print(report);
  log('');
  log(`client CPU % with "!": the load generator used ${CLIENT_SATURATED_PCT}% or more of its core; it may have set the rate, not the proxy.`);
  log('Our proxy logs at warn: audit lines of allowed requests are INFO, so none is written during the runs.');
  const outDir = join(REPO, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const out = process.env.BENCH_OUT ?? join(outDir, `${stamp}${name === undefined ? '' : `-${name}`}.json`);
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  log(`results: ${out}`);
  log(`run time: ${Math.round((Date.now() - started.getTime()) / 1000)} s`);
}

await main();
