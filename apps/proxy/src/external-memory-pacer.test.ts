import { getHeapStatistics } from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startExternalMemoryPacer, type ExternalMemoryPacer } from './external-memory-pacer.js';

const MIB = 1024 * 1024;
const external = (): number => getHeapStatistics().external_memory;

/** Allocates `mib` MiB of buffers outside the heap, 256 KiB at a time, dropping each at once. */
async function churnBuffers(mib: number): Promise<void> {
  for (let i = 0; i < mib * 4; i++) {
    Buffer.allocUnsafeSlow(256 * 1024).fill(i);
    if (i % 4 === 3) await sleep(1);
  }
}

const saved = process.env.PROXY_RUNTIME_FLAGS;
let pacer: ExternalMemoryPacer | undefined;
afterEach(() => {
  pacer?.stop();
  pacer = undefined;
  if (saved === undefined) delete process.env.PROXY_RUNTIME_FLAGS;
  else process.env.PROXY_RUNTIME_FLAGS = saved;
});

describe('startExternalMemoryPacer', () => {
  it('collects dead buffers once they pass the step, whatever the heap allocated', async () => {
    delete process.env.PROXY_RUNTIME_FLAGS;
    pacer = startExternalMemoryPacer({ stepBytes: 2 * MIB, busyIntervalMs: 2, quietIntervalMs: 2 });
    const before = external();
    await churnBuffers(16);
    await sleep(50);
    expect(pacer?.collections).toBeGreaterThanOrEqual(2);
    // 16 MiB went through; what is left is at most a step plus what the last sample had not seen.
    expect(external() - before).toBeLessThan(6 * MIB);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });

  it('stops sampling when stopped', async () => {
    delete process.env.PROXY_RUNTIME_FLAGS;
    pacer = startExternalMemoryPacer({ stepBytes: 1 * MIB, busyIntervalMs: 2, quietIntervalMs: 2 });
    pacer?.stop();
    await churnBuffers(8);
    await sleep(20);
    expect(pacer?.collections).toBe(0);
  });

  it('leaves V8 alone with PROXY_RUNTIME_FLAGS=off', () => {
    process.env.PROXY_RUNTIME_FLAGS = 'off';
    expect(startExternalMemoryPacer()).toBeUndefined();
  });
});
