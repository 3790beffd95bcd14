import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { peakRssMiB, resetPeakRss, rssMiB } from '../lib/procs.mjs';

const children = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** A node process that touches `mib` MiB, lets it go, says "ready" and waits. */
async function processThatPeaked(mib) {
  const script = `
    let b = Buffer.alloc(${mib} * 1024 * 1024, 1);
    b = null;
    globalThis.gc();
    setTimeout(() => process.stdout.write('ready\\n'), 100);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await once(child.stdout, 'data');
  return child;
}

describe('peak RSS of a process tree', () => {
  it('reports the peak since start, and only what follows once reset', async () => {
    const child = await processThatPeaked(200);
    const now = rssMiB(child.pid);
    expect(peakRssMiB(child.pid)).toBeGreaterThan(now + 150);
    resetPeakRss(child.pid);
    expect(peakRssMiB(child.pid)).toBeLessThan(now + 20);
  });
});
