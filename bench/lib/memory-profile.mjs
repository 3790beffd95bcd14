// BENCH_MEMORY_PROFILE=1: what our proxy's peak resident memory in a case is made of, from the
// samples lib/memory-sampler.mjs wrote (see bench/README.md, "Memory profiles").

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The preload our proxy gets with `--import` when profiling memory. */
export const MEMORY_SAMPLER = fileURLToPath(new URL('./memory-sampler.mjs', import.meta.url));

const MiB = 1048576;

/**
 * The composition, in MiB, of the sample with the highest RSS that process `pid` wrote between
 * `from` and `to` (wall-clock ms), or null when it wrote none then. `binary` is file-backed
 * memory (Node's executable and libraries); `other` is the anonymous memory that is neither V8's
 * heap nor buffers outside it (allocator caches, V8's compiler zones, TLS and libuv state).
 * `peak_malloced` is V8's own peak of malloc'd memory (compiler and parser zones) since start.
 */
export function peakComposition(file, pid, from, to) {
  if (!existsSync(file)) return null;
  let peak = null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    let s;
    try {
      s = JSON.parse(line);
    } catch {
      continue; // a line cut short by the process's exit
    }
    if (s.pid !== pid || s.t < from || s.t > to) continue;
    if (peak === null || s.rss > peak.rss) peak = s;
  }
  if (peak === null) return null;
  const mib = (b) => Math.round((b / MiB) * 10) / 10;
  return {
    rss: mib(peak.rss),
    binary: mib(peak.file),
    young: mib(peak.young),
    old: mib(peak.old),
    heap_other: mib(peak.heap_other),
    external: mib(peak.external),
    other: mib(Math.max(0, peak.anon - peak.heap - peak.external)),
    peak_malloced: mib(peak.peak_malloced),
  };
}
