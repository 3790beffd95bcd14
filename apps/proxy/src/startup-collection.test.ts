import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { collectStartupGarbage } from './startup-collection.js';

/** The full collections that `run` caused, as Node's performance timeline saw them. */
async function majorCollectionsDuring(run: () => void): Promise<PerformanceEntry[]> {
  const seen: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  run();
  // GC entries are delivered asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return seen.filter((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
}

const saved = process.env.PROXY_RUNTIME_FLAGS;
afterEach(() => {
  if (saved === undefined) delete process.env.PROXY_RUNTIME_FLAGS;
  else process.env.PROXY_RUNTIME_FLAGS = saved;
});

describe('collectStartupGarbage', () => {
  it('runs a full collection without giving the process a global gc', async () => {
    delete process.env.PROXY_RUNTIME_FLAGS;
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    const collections = await majorCollectionsDuring(collectStartupGarbage);
    expect(collections.length).toBeGreaterThanOrEqual(1);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });

  it('leaves V8 alone with PROXY_RUNTIME_FLAGS=off', async () => {
    process.env.PROXY_RUNTIME_FLAGS = 'off';
    expect(await majorCollectionsDuring(collectStartupGarbage)).toEqual([]);
  });
});
