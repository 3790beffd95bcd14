// The load generator behind one call: bench/loadgen/loadgen.c (compiled into the work directory
// when the run starts), pinned to the load core. One client for every case, plain HTTP, forward
// absolute-form, HTTPS, CONNECT, MITM, new connections, closed or open loop, so every row is
// measured the same way and reports the client's own CPU (see loadgen.c's header comment).

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORES, run } from './procs.mjs';

const SOURCE = fileURLToPath(new URL('../loadgen/loadgen.c', import.meta.url));

/** Compiles the load generator into `workDir`; returns the binary's path. Needs gcc and libssl-dev. */
export async function buildLoadgen(workDir) {
  const binary = join(workDir, 'loadgen');
  await run('gcc', ['-O2', '-Wall', '-o', binary, SOURCE, '-lssl', '-lcrypto']);
  return binary;
}

/**
 * @typedef {object} LoadOptions
 * @property {number} port                where the TCP connections go (the proxy, or the origin)
 * @property {string} [connect]           `host:port` to open with CONNECT first (`{name}`: the SNI name)
 * @property {boolean} [tls]              speak TLS to the origin (inside the tunnel with `connect`)
 * @property {string} [ca]                PEM file the client trusts
 * @property {string[]} [names]           SNI names, one per new connection in turn
 * @property {string} path                `/path`, or an absolute URL for a forward proxy
 * @property {string} [authority]         the Host header (`{name}`: the SNI name); default 127.0.0.1:port
 * @property {Record<string,string>} [headers]
 * @property {number} connections
 * @property {number} seconds             measured seconds
 * @property {number} [warmupSeconds]     run first inside the same client, not recorded
 * @property {number} [rate]              open loop: requests/s in total (latency from the intended send)
 * @property {boolean} [newConnection]    a new connection (CONNECT + handshake) per request
 */

/** The command line for `options`. */
export function loadgenArgs(o) {
  const args = ['--port', String(o.port), '--path', o.path, '-c', String(o.connections), '-d', String(o.seconds)];
  if (o.connect !== undefined) args.push('--connect', o.connect);
  if (o.tls) args.push('--tls');
  if (o.ca !== undefined) args.push('--ca', o.ca);
  if (o.names !== undefined) args.push('--names', o.names.join(','));
  if (o.authority !== undefined) args.push('--authority', o.authority);
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('--header', `${k}: ${v}`);
  if (o.warmupSeconds) args.push('--warmup', String(o.warmupSeconds));
  if (o.rate) args.push('--rate', String(o.rate));
  if (o.newConnection) args.push('--new-connection');
  return args;
}

/**
 * One run of the load generator; resolves with its JSON result (requests, rps, p50_ms ...
 * p999_ms, errors, errors_by_kind, unfinished, non2xx, closed_connections, client_cpu_pct,
 * ...). `marks.onStart` / `marks.onEnd` are called when the client starts and ends its
 * measured window (its "measuring" / "measured" lines on stderr), to sample a server's CPU
 * over the same time.
 */
export function load(binary, options, marks = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', CORES.load, binary, ...loadgenArgs(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let scanned = 0;
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      for (let end = stderr.indexOf('\n', scanned); end >= 0; end = stderr.indexOf('\n', scanned)) {
        const line = stderr.slice(scanned, end);
        scanned = end + 1;
        if (line === 'measuring') marks.onStart?.();
        else if (line === 'measured') marks.onEnd?.();
      }
    });
    // The open loop may run up to its timeout (5 s) past the window, answering the backlog.
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.seconds + (options.warmupSeconds ?? 0) + 30) * 1000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`loadgen exited with ${code ?? signal}: ${stderr.trim().split('\n').pop()}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch (err) {
        reject(err);
      }
    });
  });
}
