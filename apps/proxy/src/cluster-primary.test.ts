import { describe, expect, it } from 'vitest';
import { MAX_RESTART_DELAY_MS, restartDelayMs } from './cluster-primary.js';

describe('restartDelayMs', () => {
  it('replaces a first death at once, then backs off exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map(restartDelayMs)).toEqual([0, 1_000, 2_000, 4_000, 8_000, 16_000]);
    expect(restartDelayMs(7)).toBe(MAX_RESTART_DELAY_MS);
    expect(restartDelayMs(1_000)).toBe(MAX_RESTART_DELAY_MS);
  });
});
