import { describe, expect, it } from 'vitest';
import { TokenCache } from './token-cache.js';
import type { MintedToken } from './token-mint-error.js';

/** A cache over a mint function that records its calls and answers after a macrotask. */
function cacheWithMint(options: { maxEntries?: number; now?: () => number } = {}) {
  const minted: string[][] = [];
  const sizes: number[] = [];
  let size = 0;
  let evictions = 0;
  const cache = new TokenCache({
    mint: async (audiences): Promise<MintedToken> => {
      minted.push([...audiences]);
      await new Promise((resolve) => setImmediate(resolve));
      return { token: `token-${minted.length}`, expiresAt: (options.now?.() ?? 0) + 3_600_000 };
    },
    clock: { now: options.now ?? (() => 0) },
    refreshSkewMs: 300_000,
    maxEntries: options.maxEntries ?? 10,
    onEvict: () => evictions++,
    onSizeChange: (delta) => sizes.push((size += delta)),
  });
  return { cache, minted, sizes, evictions: () => evictions };
}

describe('TokenCache', () => {
  it('keys by the normalized set: b,a,b and a,b share one entry and one STS call', async () => {
    const { cache, minted } = cacheWithMint();
    const [first, second] = await Promise.all([cache.get(['b', 'a', 'b']), cache.get(['a', 'b'])]);
    expect(minted).toEqual([['a', 'b']]);
    expect(first).toEqual({ token: 'token-1', outcome: 'miss' });
    expect(second).toEqual({ token: 'token-1', outcome: 'miss' });
    expect(await cache.get(['a', 'b', 'a'])).toEqual({ token: 'token-1', outcome: 'hit' });
    expect(cache.size).toBe(1);
  });

  it('evicts the least recently used set and reports sizes', async () => {
    const { cache, minted, sizes, evictions } = cacheWithMint({ maxEntries: 2 });
    await cache.get(['x']);
    await cache.get(['y']);
    await cache.get(['x']);
    await cache.get(['z']);
    expect(evictions()).toBe(1);
    expect((await cache.get(['x'])).outcome).toBe('hit');
    expect((await cache.get(['y'])).outcome).toBe('miss');
    expect(minted).toEqual([['x'], ['y'], ['z'], ['y']]);
    cache.clear();
    expect(sizes).toEqual([1, 2, 3, 2, 3, 2, 0]);
  });
});
