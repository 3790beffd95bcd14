// Summaries of repeated runs and the terminal table.

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * The figures of one case: median requests/s, p50 and p99 over its repetitions, the spread
 * ((max - min) / median of requests/s, in %) and the errors summed over the repetitions.
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
    proxy_cpu_us_per_request: pick('proxy_cpu_us_per_request'),
    errors: entry.reps.reduce((a, r) => a + (r.errors ?? 0) + (r.non2xx ?? 0), 0),
  };
}

const fixed = (x, digits) => (x === null || x === undefined ? '-' : x.toFixed(digits));

/** The table: one line per case, with ratios to its direct ceiling and to its named peer. */
export function formatTable(cases) {
  const byId = new Map(cases.filter((c) => c.summary !== undefined).map((c) => [c.id, c]));
  const ratio = (c, refId) => {
    const ref = refId === undefined ? undefined : byId.get(refId);
    return ref === undefined || ref.summary.rps === 0 ? '-' : `${(c.summary.rps / ref.summary.rps).toFixed(2)}x`;
  };
  const header = ['case', 'req/s', 'spread', 'p50 ms', 'p99 ms', 'CPU us/req', 'peak RSS MiB', 'vs direct', 'vs peer (peer)', 'errors'];
  const rows = cases.map((c) => {
    if (c.summary === undefined) return [c.id, 'FAILED', '', '', '', '', '', '', c.error.slice(0, 60), ''];
    const s = c.summary;
    return [
      c.id,
      String(Math.round(s.rps)),
      `${s.spread_pct.toFixed(1)}%`,
      fixed(s.p50_ms, 2),
      fixed(s.p99_ms, 2),
      fixed(s.proxy_cpu_us_per_request, 0),
      fixed(c.peak_rss_mib, 0),
      ratio(c, c.direct),
      c.peer === undefined ? '-' : `${ratio(c, c.peer)} (${c.peer})`,
      String(s.errors),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((cell, i) => (i === 0 || i >= 8 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
