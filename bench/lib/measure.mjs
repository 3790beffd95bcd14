// The two load generators behind one call: wrk for plain HTTP (origin-form, or absolute-form
// through a Lua script for forward proxies) and lib/loadgen.mjs for TLS, CONNECT and MITM.
// Both run pinned to the load core with the same connection count and duration.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORES, run } from './procs.mjs';

const LOADGEN = fileURLToPath(new URL('./loadgen.mjs', import.meta.url));

function toMs(value, unit) {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60000;
}

/** Parses wrk's `--latency` report. */
export function parseWrk(text) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const lat = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m ? toMs(m[1], m[2]) : null;
  };
  const total = /(\d+) requests in/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requests: total ? Number(total[1]) : 0,
    rps: rps ? Number(rps[1]) : 0,
    p50_ms: lat(50),
    p99_ms: lat(99),
    // A read error is the server closing a kept-alive connection (tinyproxy closes after each
    // answer); wrk reconnects, so those are counted apart from real failures.
    errors: sock ? Number(sock[1]) + Number(sock[3]) + Number(sock[4]) : 0,
    closed_connections: sock ? Number(sock[2]) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/**
 * One wrk run against `port`. `absoluteUrl` makes every request absolute-form (forward proxy);
 * `headers` are added to every request.
 */
export async function wrk({ port, path, absoluteUrl, headers = {}, connections, seconds, workDir }) {
  const script = join(workDir, `wrk-${port}.lua`);
  const lines = [];
  lines.push(`wrk.path = ${JSON.stringify(absoluteUrl ?? path)}`);
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  if (absoluteUrl !== undefined) lines.push(`wrk.headers["Host"] = ${JSON.stringify(new URL(absoluteUrl).host)}`);
  writeFileSync(script, `${lines.join('\n')}\n`);
  const out = await run('taskset', ['-c', CORES.load, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s', '-s', script, `http://127.0.0.1:${port}/`], {
    timeout: (seconds + 15) * 1000,
  });
  return parseWrk(out);
}

/** One run of the Node load generator (see lib/loadgen.mjs for the options). */
export async function nodeLoad(options) {
  const out = await run('taskset', ['-c', CORES.load, process.execPath, LOADGEN, JSON.stringify(options)], {
    timeout: options.durationMs + 20000,
  });
  return JSON.parse(out.trim().split('\n').pop());
}
