// Preloaded into our proxy (`node --import`) when BENCH_MEMORY_PROFILE=1: every 50 ms, one JSON
// line with what the process's resident memory is made of, appended to $BENCH_MEMORY_SAMPLES.
// The harness then reads the line at each case's peak (lib/memory-profile.mjs). Sampling costs
// a /proc read and V8's heap statistics per line; a profiling run's CPU figures are not the
// shipped build's.

import { appendFileSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';

const file = process.env.BENCH_MEMORY_SAMPLES;
const SAMPLE_MS = 50;

/** One sample, in bytes; `t` is the wall clock in ms. */
export function memorySample() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  const heap = v8.getHeapStatistics();
  const space = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size]));
  const young = (space.new_space ?? 0) + (space.new_large_object_space ?? 0);
  const old = (space.old_space ?? 0) + (space.large_object_space ?? 0);
  return {
    t: Date.now(),
    pid: process.pid,
    rss: kib('VmRSS'),
    anon: kib('RssAnon'),
    file: kib('RssFile') + kib('RssShmem'),
    heap: heap.total_physical_size,
    young,
    old,
    heap_other: heap.total_physical_size - young - old,
    external: heap.external_memory,
    malloced: heap.malloced_memory,
    peak_malloced: heap.peak_malloced_memory,
  };
}

if (file !== undefined && file !== '') {
  const timer = setInterval(() => {
    try {
      appendFileSync(file, `${JSON.stringify(memorySample())}\n`);
    } catch {
      clearInterval(timer);
    }
  }, SAMPLE_MS);
  timer.unref();
}
