// Summaries of repeated runs and the terminal table.

/** The median of a non-empty list of numbers. */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * The figures of one case: median requests/s, latency percentiles, proxy CPU per request and
 * client CPU over its repetitions, the spread ((max - min) / median of requests/s, in %) and
 * the errors summed over the repetitions (failed requests and non-2xx answers).
 */
export function summarize(entry) {
  const rps = entry.reps.map((r) => r.rps);
  const med = median(rps);
  const pick = (key) => {
    const xs = entry.reps.map((r) => r[key]).filter((x) => x !== null && x !== undefined);
    return xs.length === 0 ? null : median(xs);
  };
  return {
    rps: med,
    rps_reps: rps.map((x) => Math.round(x)),
    spread_pct: med === 0 ? 0 : ((Math.max(...rps) - Math.min(...rps)) / med) * 100,
    p50_ms: pick('p50_ms'),
    p99_ms: pick('p99_ms'),
    p999_ms: pick('p999_ms'),
    proxy_cpu_us_per_request: pick('proxy_cpu_us_per_request'),
    client_cpu_pct: pick('client_cpu_pct'),
    errors: entry.reps.reduce((a, r) => a + (r.errors ?? 0) + (r.non2xx ?? 0), 0),
    unfinished: entry.reps.reduce((a, r) => a + (r.unfinished ?? 0), 0),
  };
}

const fixed = (x, digits) => (x === null || x === undefined ? '-' : x.toFixed(digits));

/** At or above this share of its core, the load generator may be what limited the rate. */
export const CLIENT_SATURATED_PCT = 90;

/** The client's CPU %, with `!` when it was near saturation (see CLIENT_SATURATED_PCT). */
const clientCpu = (pct) => (pct === null || pct === undefined ? '-' : `${pct.toFixed(0)}${pct >= CLIENT_SATURATED_PCT ? '!' : ''}`);

/**
 * Open-loop cases: sets `summary.added_ms` = { p50, p99, p999 }, each percentile of the case
 * minus the same percentile of its `baseline` (the direct case at the same rate). A
 * difference of percentiles, not a percentile of differences (requests are not paired).
 */
export function addLatencyOverhead(cases) {
  const byId = new Map(cases.map((c) => [c.id, c]));
  for (const c of cases) {
    const base = c.baseline === undefined ? undefined : byId.get(c.baseline)?.summary;
    if (c.summary === undefined || base === undefined) continue;
    // Rounded to the microsecond, the resolution of the load generator's figures.
    const diff = (key) => (c.summary[key] === null || base[key] === null ? null : Math.round((c.summary[key] - base[key]) * 1000) / 1000);
    c.summary.added_ms = { p50: diff('p50_ms'), p99: diff('p99_ms'), p999: diff('p999_ms') };
  }
  return cases;
}

/** Aligns a table: the first column and those from `leftFrom` on to the left, the rest to the right. */
function align(header, rows, leftFrom) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => (i === 0 || i >= leftFrom ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The table: one line per case, with ratios to its direct ceiling and to its named peer. */
export function formatTable(cases) {
  const byId = new Map(cases.filter((c) => c.summary !== undefined).map((c) => [c.id, c]));
  const ratio = (c, refId) => {
    const ref = refId === undefined ? undefined : byId.get(refId);
    return ref === undefined || ref.summary.rps === 0 ? '-' : `${(c.summary.rps / ref.summary.rps).toFixed(2)}x`;
  };
  const header = ['case', 'req/s', 'spread', 'p50 ms', 'p99 ms', 'CPU us/req', 'client CPU %', 'peak RSS MiB', 'idle RSS MiB', 'vs direct', 'vs peer (peer)', 'errors'];
  const rows = cases.map((c) => {
    if (c.summary === undefined) return [c.id, 'FAILED', '', '', '', '', '', '', '', '', c.error.slice(0, 60), ''];
    const s = c.summary;
    return [
      c.id,
      String(Math.round(s.rps)),
      `${s.spread_pct.toFixed(1)}%`,
      fixed(s.p50_ms, 2),
      fixed(s.p99_ms, 2),
      fixed(s.proxy_cpu_us_per_request, 0),
      clientCpu(s.client_cpu_pct),
      fixed(c.peak_rss_mib, 0),
      fixed(c.idle_rss_mib, 0),
      ratio(c, c.direct),
      c.peer === undefined ? '-' : `${ratio(c, c.peer)} (${c.peer})`,
      String(s.errors),
    ];
  });
  return align(header, rows, 10);
}

/**
 * BENCH_MEMORY_PROFILE=1: our proxy's resident memory at its peak in each case, split into
 * file-backed pages (the executable and libraries), V8's young and old generations and the rest
 * of its heap (code, metadata), buffers outside the heap, and the remaining anonymous memory;
 * with V8's peak of malloc'd memory (its compilers' and parser's zones) since start. The
 * columns after `RSS` add up to it, give or take rounding and the sampling interval.
 */
export function formatMemoryTable(cases) {
  const header = ['case', 'RSS', 'binary', 'V8 young', 'V8 old', 'V8 other', 'buffers', 'other anon', 'V8 zones peak'];
  const rows = cases.map((c) => {
    const m = c.peak_memory;
    if (m === null) return [c.id, '-', '', '', '', '', '', '', 'no sample'];
    return [c.id, ...[m.rss, m.binary, m.young, m.old, m.heap_other, m.external, m.other, m.peak_malloced].map((x) => fixed(x, 0))];
  });
  return align(header, rows, header.length);
}

/**
 * The open-loop table: achieved rate against the target, latency percentiles from the
 * intended send time, the latency added over the direct case at the same rate, CPU and errors.
 * `(short)` marks a saturated proxy (or client): a rate more than 2% below its target, or
 * requests of the window still unanswered when the client stopped (`unfinished`).
 */
export function formatLatencyTable(cases) {
  const header = ['case', 'rate', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', '+p50 ms', '+p99 ms', '+p99.9 ms', 'CPU us/req', 'client CPU %', 'errors', 'added over'];
  const signed = (x) => (x === null || x === undefined ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(2)}`);
  const rows = cases.map((c) => {
    if (c.summary === undefined) return [c.id, String(c.rate), 'FAILED', '', '', '', '', '', '', '', '', '', c.error.slice(0, 60)];
    const s = c.summary;
    const short = s.rps < c.rate * 0.98 || s.unfinished > 0 ? ' (short)' : '';
    return [
      c.id,
      String(c.rate),
      `${Math.round(s.rps)}${short}`,
      fixed(s.p50_ms, 2),
      fixed(s.p99_ms, 2),
      fixed(s.p999_ms, 2),
      signed(s.added_ms?.p50),
      signed(s.added_ms?.p99),
      signed(s.added_ms?.p999),
      fixed(s.proxy_cpu_us_per_request, 0),
      clientCpu(s.client_cpu_pct),
      String(s.errors),
      c.baseline ?? '-',
    ];
  });
  return align(header, rows, 11);
}
