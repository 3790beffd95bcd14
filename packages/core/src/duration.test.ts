import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';
import { ErrorCodes, ProxyError } from './errors.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['300ms', 300],
    ['1.5s', 1500],
    ['.5s', 500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['1h0m1s', 3_601_000],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['1500μs', 1.5],
    ['2000000ns', 2],
    ['10s500ms', 10_500],
  ])('%s -> %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '-5s', '+5s', '5', '1.5', '5x', 's', '5 s', ' 5s', '5s ', '1h-5m', '1d', '.s', 'abc', '5S', '1e3s'])('rejects %j', (text) => {
    let caught: unknown;
    try {
      parseDuration(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProxyError);
    expect((caught as ProxyError).code).toBe(ErrorCodes.DURATION_INVALID);
  });
});
