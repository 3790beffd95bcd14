import { describe, expect, it } from 'vitest';
import { formatPairTable, measurePair, parseEnvAssignments, summarizePair } from '../lib/paired.mjs';

const window = (rps, cpu, client = 30, errors = 0, p99 = 5, peak = 100) => ({ rps, cpu_us_per_request: cpu, p99_ms: p99, peak_rss_mib: peak, client_cpu_pct: client, errors });

describe('summarizePair', () => {
  it('takes medians and ranges of the per-round ratios and counts the rounds A won', () => {
    const rounds = [
      { a: window(1100, 90), b: window(1000, 100), rps_ratio: 1.1, cpu_ratio: 0.9 },
      { a: window(900, 120, 60), b: window(1000, 100), rps_ratio: 0.9, cpu_ratio: 1.2 },
      { a: window(1050, 95), b: window(1000, 100, 30, 2), rps_ratio: 1.05, cpu_ratio: 0.95 },
    ];
    const s = summarizePair(rounds);
    expect(s.rps_ratio).toEqual({ median: 1.05, min: 0.9, max: 1.1 });
    expect(s.cpu_ratio).toEqual({ median: 0.95, min: 0.9, max: 1.2 });
    expect(s.a_faster_rounds).toBe(2);
    expect(s.client_cpu_pct_max).toBe(60);
    expect(s.errors).toBe(2);
  });

  it('gives the median p99 of each side and the highest peak RSS of its rounds', () => {
    const s = summarizePair([
      { a: window(1000, 100, 30, 0, 4, 120), b: window(1000, 100, 30, 0, 9, 150), rps_ratio: 1, cpu_ratio: 1 },
      { a: window(1000, 100, 30, 0, 6, 140), b: window(1000, 100, 30, 0, 30, 180), rps_ratio: 1, cpu_ratio: 1 },
      { a: window(1000, 100, 30, 0, 5, 130), b: window(1000, 100, 30, 0, 10, 160), rps_ratio: 1, cpu_ratio: 1 },
    ]);
    expect(s.a_p99_ms.median).toBe(5);
    expect(s.b_p99_ms.median).toBe(10);
    expect(s.a_peak_rss_mib.max).toBe(140);
    expect(s.b_peak_rss_mib.max).toBe(180);
    const table = formatPairTable([{ id: 'x', a: 'A', b: 'B', rounds: [], summary: s }]);
    expect(table.split('\n')[0]).toMatch(/A p99 ms\s+B p99 ms\s+A peak MiB\s+B peak MiB/);
    expect(table.split('\n')[2]).toMatch(/5\.00\s+10\.00\s+140\s+180/);
  });

  it('leaves out rounds without a CPU figure rather than counting them as zero', () => {
    const s = summarizePair([
      { a: window(1000, null), b: window(1000, 100), rps_ratio: 1, cpu_ratio: null },
      { a: window(1000, 110), b: window(1000, 100), rps_ratio: 1, cpu_ratio: 1.1 },
    ]);
    expect(s.cpu_ratio).toEqual({ median: 1.1, min: 1.1, max: 1.1 });
    expect(s.a_faster_rounds).toBe(0);
  });
});

describe('measurePair', () => {
  it('warms both sides, then alternates which one goes first (A B, B A, ...)', async () => {
    const order = [];
    const side = (label, rps) => ({
      label,
      server: { child: { pid: process.pid } },
      load: async (seconds, marks = {}) => {
        order.push(`${label}${marks.onStart === undefined ? ' warm-up' : ''}`);
        marks.onStart?.();
        marks.onEnd?.();
        return { requests: rps * seconds, rps, client_cpu_pct: 10, errors: 0, non2xx: 0 };
      },
    });
    const pair = await measurePair({ id: 'x', a: side('A', 2000), b: side('B', 1000), rounds: 3, seconds: 1, warmupSeconds: 1 });
    expect(order).toEqual(['A warm-up', 'B warm-up', 'A', 'B', 'B', 'A', 'A', 'B']);
    expect(pair.rounds.map((r) => r.rps_ratio)).toEqual([2, 2, 2]);
    expect(pair.summary.a_faster_rounds).toBe(3);
    expect(formatPairTable([pair])).toMatch(/x \(A vs B\)\s+2000\s+1000\s+2\.00x \[2\.00-2\.00\]\s+3\/3/);
  });
});

describe('parseEnvAssignments', () => {
  it('reads space-separated NAME=value words, keeping any = in the value', () => {
    expect(parseEnvAssignments('X', ' MALLOC_ARENA_MAX=1  NODE_OPTIONS=--a=b EMPTY= ')).toEqual({ MALLOC_ARENA_MAX: '1', NODE_OPTIONS: '--a=b', EMPTY: '' });
    expect(parseEnvAssignments('X', '')).toEqual({});
  });

  it('names the variable and the word that is not an assignment', () => {
    expect(() => parseEnvAssignments('BENCH_PAIRED_ENV', 'A=1 oops')).toThrow('BENCH_PAIRED_ENV: "oops" is not NAME=value');
    expect(() => parseEnvAssignments('BENCH_PAIRED_ENV', '=1')).toThrow('"=1"');
  });
});
