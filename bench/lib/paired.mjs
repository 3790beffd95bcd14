// Interleaved comparisons (`BENCH_PAIRED=1 pnpm bench`): our proxy and its peer are both up on
// the proxy's core and measured in alternation, round after round, so that the drift of a
// shared machine (another tenant, a CPU frequency change) falls on both sides of every ratio
// instead of on whichever server happened to run during it.

import { cpuSeconds, peakRssMiB, resetPeakRss } from './procs.mjs';
import { median } from './report.mjs';

/**
 * One measured window of `side`: `{ rps, cpu_us_per_request, p99_ms, peak_rss_mib,
 * client_cpu_pct, errors }`. `side.load(seconds, marks)` runs the load generator;
 * `side.server.child.pid` is the process (tree) whose CPU over the window is divided by the
 * requests, and whose peak RSS is reset when the window starts, so that it is this window's.
 */
async function measureWindow(side, seconds) {
  let before = null;
  let after = null;
  let peak = null;
  const pid = side.server.child.pid;
  const rep = await side.load(seconds, {
    onStart: () => {
      resetPeakRss(pid);
      before = cpuSeconds(pid);
    },
    onEnd: () => {
      after = cpuSeconds(pid);
      peak = peakRssMiB(pid);
    },
  });
  const cpu = before !== null && after !== null && rep.requests > 0 ? ((after - before) * 1e6) / rep.requests : null;
  return { rps: rep.rps, cpu_us_per_request: cpu, p99_ms: rep.p99_ms ?? null, peak_rss_mib: peak, client_cpu_pct: rep.client_cpu_pct ?? null, errors: (rep.errors ?? 0) + (rep.non2xx ?? 0) };
}

/**
 * Measures `a` against `b` over `rounds` rounds of one window each, alternating which goes
 * first (A B, B A, A B, ...) so that a steady drift cancels over two rounds. Each round gives
 * a ratio a/b of requests/s and of CPU per request; the summary holds their medians and
 * ranges. Both servers must already be running; each gets a warm-up window first.
 */
export async function measurePair({ id, a, b, rounds, seconds, warmupSeconds }) {
  await a.load(warmupSeconds);
  await b.load(warmupSeconds);
  const results = [];
  for (let i = 0; i < rounds; i++) {
    const round = {};
    for (const side of i % 2 === 0 ? [a, b] : [b, a]) round[side === a ? 'a' : 'b'] = await measureWindow(side, seconds);
    round.rps_ratio = round.b.rps === 0 ? null : round.a.rps / round.b.rps;
    round.cpu_ratio = round.a.cpu_us_per_request === null || round.b.cpu_us_per_request === null ? null : round.a.cpu_us_per_request / round.b.cpu_us_per_request;
    results.push(round);
  }
  return { id, a: a.label, b: b.label, rounds: results, summary: summarizePair(results) };
}

/** Medians and ranges of a pair's rounds. */
export function summarizePair(rounds) {
  const of = (pick) => rounds.map(pick).filter((x) => x !== null && x !== undefined);
  const stats = (xs) => (xs.length === 0 ? null : { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  return {
    rps_ratio: stats(of((r) => r.rps_ratio)),
    cpu_ratio: stats(of((r) => r.cpu_ratio)),
    a_rps: stats(of((r) => r.a.rps)),
    b_rps: stats(of((r) => r.b.rps)),
    a_cpu_us_per_request: stats(of((r) => r.a.cpu_us_per_request)),
    b_cpu_us_per_request: stats(of((r) => r.b.cpu_us_per_request)),
    a_p99_ms: stats(of((r) => r.a.p99_ms)),
    b_p99_ms: stats(of((r) => r.b.p99_ms)),
    // Peak RSS is a worst case: the highest of the rounds, not their median.
    a_peak_rss_mib: stats(of((r) => r.a.peak_rss_mib)),
    b_peak_rss_mib: stats(of((r) => r.b.peak_rss_mib)),
    client_cpu_pct_max: Math.max(0, ...of((r) => r.a.client_cpu_pct), ...of((r) => r.b.client_cpu_pct)),
    errors: rounds.reduce((n, r) => n + r.a.errors + r.b.errors, 0),
    // Rounds where A beat B on requests/s: 0 or all of them is a verdict, a split is a tie.
    a_faster_rounds: rounds.filter((r) => r.rps_ratio !== null && r.rps_ratio > 1).length,
  };
}

/** The paired table: one line per pair, medians with [min-max] over the rounds. */
export function formatPairTable(pairs) {
  const x = (s) => (s === null ? '-' : `${s.median.toFixed(2)}x [${s.min.toFixed(2)}-${s.max.toFixed(2)}]`);
  const n = (s, digits = 0) => (s === null ? '-' : s.median.toFixed(digits));
  const max = (s) => (s === null ? '-' : s.max.toFixed(0));
  const header = ['pair (A vs B)', 'A req/s', 'B req/s', 'req/s A/B [range]', 'A faster', 'A CPU us/req', 'B CPU us/req', 'CPU A/B [range]', 'A p99 ms', 'B p99 ms', 'A peak MiB', 'B peak MiB', 'client CPU % max', 'errors'];
  const rows = pairs.map((p) =>
    p.error !== undefined
      ? [`${p.id}`, 'FAILED', p.error, ...header.slice(3).map(() => '')]
      : [
          `${p.id} (${p.a} vs ${p.b})`,
          n(p.summary.a_rps),
          n(p.summary.b_rps),
          x(p.summary.rps_ratio),
          `${p.summary.a_faster_rounds}/${p.rounds.length}`,
          n(p.summary.a_cpu_us_per_request),
          n(p.summary.b_cpu_us_per_request),
          x(p.summary.cpu_ratio),
          n(p.summary.a_p99_ms, 2),
          n(p.summary.b_p99_ms, 2),
          max(p.summary.a_peak_rss_mib),
          max(p.summary.b_peak_rss_mib),
          p.summary.client_cpu_pct_max.toFixed(0),
          String(p.summary.errors),
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * `NAME=value NAME2=value2` (space-separated, values without spaces) as an environment object;
 * throws, naming `variable`, on a word that is not an assignment.
 */
export function parseEnvAssignments(variable, text) {
  return Object.fromEntries(
    text
      .split(' ')
      .filter((word) => word !== '')
      .map((word) => {
        const at = word.indexOf('=');
        if (at < 1) throw new Error(`${variable}: "${word}" is not NAME=value`);
        return [word.slice(0, at), word.slice(at + 1)];
      }),
  );
}
