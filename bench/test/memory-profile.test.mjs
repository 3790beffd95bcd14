import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { MEMORY_SAMPLER, peakComposition } from '../lib/memory-profile.mjs';
import { formatMemoryTable } from '../lib/report.mjs';

const MiB = 1048576;
let dir;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sample = (t, pid, rss, extra = {}) => ({
  t,
  pid,
  rss: rss * MiB,
  anon: (rss - 50) * MiB,
  file: 50 * MiB,
  heap: 40 * MiB,
  young: 16 * MiB,
  old: 20 * MiB,
  heap_other: 4 * MiB,
  external: 10 * MiB,
  malloced: MiB,
  peak_malloced: 30 * MiB,
  ...extra,
});

describe('peakComposition', () => {
  it("takes the process's highest-RSS sample inside the window and splits it", () => {
    dir = mkdtempSync(join(tmpdir(), 'memprof-'));
    const file = join(dir, 'samples.jsonl');
    const lines = [
      sample(1000, 7, 190), // before the window
      sample(2000, 7, 120),
      sample(2100, 8, 300), // another process (a cluster worker)
      sample(2200, 7, 150),
      sample(2300, 7, 140),
      sample(4000, 7, 400), // after it
    ].map((s) => JSON.stringify(s));
    writeFileSync(file, `${lines.join('\n')}\n{"t": 2250, "pid": 7, "rss"`);
    const m = peakComposition(file, 7, 1500, 3000);
    expect(m).toEqual({ rss: 150, binary: 50, young: 16, old: 20, heap_other: 4, external: 10, other: 50, peak_malloced: 30 });
    expect(peakComposition(file, 7, 5000, 6000)).toBeNull();
    expect(peakComposition(join(dir, 'missing.jsonl'), 7, 0, 1e15)).toBeNull();
  });
});

describe('memory sampler', () => {
  it('writes samples from a real process whose parts add up to its RSS', () => {
    dir = mkdtempSync(join(tmpdir(), 'memprof-'));
    const file = join(dir, 'samples.jsonl');
    const pid = Number(
      execFileSync(process.execPath, ['--import', pathToFileURL(MEMORY_SAMPLER).href, '-e', 'setTimeout(() => console.log(process.pid), 400)'], {
        env: { ...process.env, BENCH_MEMORY_SAMPLES: file },
        encoding: 'utf8',
      }).trim(),
    );
    const samples = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(samples.length).toBeGreaterThanOrEqual(3);
    for (const s of samples) {
      expect(s.pid).toBe(pid);
      expect(s.heap).toBeGreaterThan(MiB);
      expect(s.young + s.old + s.heap_other).toBe(s.heap);
      expect(Math.abs(s.anon + s.file - s.rss)).toBeLessThan(MiB);
    }
    const m = peakComposition(file, pid, 0, Date.now());
    expect(m.rss).toBeGreaterThan(10);
    expect(m.binary + m.young + m.old + m.heap_other + m.external + m.other).toBeCloseTo(m.rss, -1);
  });
});

describe('formatMemoryTable', () => {
  it('gives one row per case, MiB rounded, and says when a case has no sample', () => {
    const table = formatMemoryTable([
      { id: 'reverse-ours-64k', peak_memory: { rss: 150.4, binary: 53.6, young: 27, old: 30, heap_other: 6, external: 10, other: 24, peak_malloced: 36 } },
      { id: 'forward-ours-1k', peak_memory: null },
    ]).split('\n');
    expect(table[0]).toMatch(/^case\s+RSS\s+binary\s+V8 young\s+V8 old\s+V8 other\s+buffers\s+other anon\s+V8 zones peak$/);
    expect(table[2]).toMatch(/^reverse-ours-64k\s+150\s+54\s+27\s+30\s+6\s+10\s+24\s+36$/);
    expect(table[3]).toMatch(/^forward-ours-1k\s+-.*no sample$/);
  });
});
