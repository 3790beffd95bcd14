import { describe, expect, it } from 'vitest';
import { addLatencyOverhead, formatLatencyTable, formatTable, median, summarize } from '../lib/report.mjs';

const rep = (over) => ({ rps: 1000, p50_ms: 1, p99_ms: 2, p999_ms: 3, proxy_cpu_us_per_request: 50, client_cpu_pct: 40, errors: 0, non2xx: 0, unfinished: 0, ...over });

describe('median', () => {
  it('takes the middle of an odd list and the mean of the two middles of an even one, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('leaves its input as it was', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe('summarize', () => {
  it('reports medians over the repetitions, the spread of requests/s and the summed errors', () => {
    const s = summarize({ reps: [rep({ rps: 900, p99_ms: 9, errors: 1 }), rep({ rps: 1000, p99_ms: 2, non2xx: 2 }), rep({ rps: 1100, p99_ms: 3, unfinished: 4 })] });
    expect(s.rps).toBe(1000);
    expect(s.rps_reps).toEqual([900, 1000, 1100]);
    expect(s.spread_pct).toBeCloseTo(20);
    expect(s.p99_ms).toBe(3);
    expect(s.errors).toBe(3);
    expect(s.unfinished).toBe(4);
  });

  it('takes a figure missing from some repetitions from the others, and null when none has it', () => {
    const s = summarize({ reps: [rep({ proxy_cpu_us_per_request: null, client_cpu_pct: undefined }), rep({ proxy_cpu_us_per_request: 80, client_cpu_pct: undefined })] });
    expect(s.proxy_cpu_us_per_request).toBe(80);
    expect(s.client_cpu_pct).toBeNull();
  });

  it('gives a zero spread rather than a division by zero when nothing was answered', () => {
    expect(summarize({ reps: [rep({ rps: 0 }), rep({ rps: 0 })] }).spread_pct).toBe(0);
  });
});

describe('addLatencyOverhead', () => {
  it('subtracts each percentile of the direct case at the same rate, to the microsecond', () => {
    const cases = [
      { id: 'latency-direct-http-1000', summary: { p50_ms: 0.1, p99_ms: 0.4, p999_ms: null } },
      { id: 'latency-forward-ours-1000', baseline: 'latency-direct-http-1000', summary: { p50_ms: 0.3504, p99_ms: 2.1, p999_ms: 4 } },
      { id: 'latency-orphan-1000', baseline: 'latency-missing-1000', summary: { p50_ms: 1, p99_ms: 1, p999_ms: 1 } },
    ];
    addLatencyOverhead(cases);
    expect(cases[1].summary.added_ms).toEqual({ p50: 0.25, p99: 1.7, p999: null });
    expect(cases[0].summary.added_ms).toBeUndefined();
    expect(cases[2].summary.added_ms).toBeUndefined();
  });
});

describe('formatTable', () => {
  const cases = [
    { id: 'direct-http-1k', summary: summarize({ reps: [rep({ rps: 4000 })] }) },
    { id: 'forward-squid-1k', summary: summarize({ reps: [rep({ rps: 1000 })] }) },
    { id: 'forward-ours-1k', direct: 'direct-http-1k', peer: 'forward-squid-1k', peak_rss_mib: 150.4, idle_rss_mib: 97, summary: summarize({ reps: [rep({ rps: 1100, client_cpu_pct: 95 })] }) },
    { id: 'forward-broken-1k', error: 'listener refused: ECONNREFUSED' },
  ];
  const lines = formatTable(cases).split('\n');
  const row = (id) => lines.find((l) => l.startsWith(`${id} `)).split(/\s{2,}/);

  it('gives each case its ratio to the direct ceiling and to its named peer', () => {
    const cells = row('forward-ours-1k');
    expect(cells).toContain('0.28x');
    expect(cells).toContain('1.10x (forward-squid-1k)');
    expect(cells).toContain('150');
  });

  it('marks a load generator at 90% or more of its core with "!"', () => {
    expect(row('forward-ours-1k')).toContain('95!');
    expect(row('forward-squid-1k')).toContain('40');
  });

  it('keeps a failed case as a FAILED row with its error', () => {
    expect(lines.find((l) => l.startsWith('forward-broken-1k'))).toMatch(/FAILED.*ECONNREFUSED/);
  });
});

describe('formatLatencyTable', () => {
  const latency = (id, rate, over) => ({ id, rate, baseline: 'latency-direct-http-1000', summary: { ...summarize({ reps: [rep(over)] }), added_ms: { p50: 0.2, p99: -0.05, p999: 1 } } });

  it('signs the added latency and marks a rate more than 2% short of its target', () => {
    const table = formatLatencyTable([latency('latency-a-1000', 1000, { rps: 985 }), latency('latency-b-1000', 1000, { rps: 970 })]);
    const a = table.split('\n').find((l) => l.startsWith('latency-a-1000'));
    const b = table.split('\n').find((l) => l.startsWith('latency-b-1000'));
    expect(a).not.toContain('(short)');
    expect(a).toContain('+0.20');
    expect(a).toContain('-0.05');
    expect(b).toContain('970 (short)');
  });

  it('marks a run that left requests unanswered as short even at its rate', () => {
    const table = formatLatencyTable([latency('latency-c-1000', 1000, { rps: 1000, unfinished: 3 })]);
    expect(table).toContain('1000 (short)');
  });
});
