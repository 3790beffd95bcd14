import { startFakeSts, type FakeSts } from '@proxy/test-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { bearerToken, FakeClock, startTransform, TestMetrics, useFakeStsEnvironment, verifyAsRelyingParty, type LiveTransform } from './harness.js';

const MINUTE = 60_000;
const open: { close(): Promise<void> }[] = [];

async function fakeSts(clock?: FakeClock): Promise<FakeSts> {
  const sts = await startFakeSts(clock === undefined ? {} : { clock: () => clock.now() });
  useFakeStsEnvironment(sts);
  open.push(sts);
  return sts;
}

async function transform(config: unknown, options: Parameters<typeof startTransform>[1] = {}): Promise<LiveTransform> {
  const live = await startTransform(config, options);
  open.unshift(live);
  return live;
}

afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

describe('aws_jwt token cache', () => {
  it('serves 100 concurrent requests on a cold cache with one STS call', async () => {
    const sts = await fakeSts();
    const metrics = new TestMetrics();
    const live = await transform({ audience: ['https://example.test'] }, { meter: metrics.meter });
    const results = await Promise.all(Array.from({ length: 100 }, () => live.run({ host: 'api.example.test' })));
    expect(sts.calls).toHaveLength(1);
    const tokens = new Set(results.map((r) => bearerToken(r.request)));
    expect(tokens.size).toBe(1);
    expect(results.every((r) => r.annotations.cache === 'miss')).toBe(true);
    expect(await metrics.value('token_cache_miss_count', { audience: 'https://example.test' })).toBe(100);
    expect(await metrics.value('token_fetch_count', { result: 'ok', audience: 'https://example.test' })).toBe(1);

    const again = await live.run({ host: 'api.example.test' });
    expect(again.annotations.cache).toBe('hit');
    expect(bearerToken(again.request)).toBe([...tokens][0]);
    expect(await metrics.value('token_cache_hit_count', { audience: 'https://example.test' })).toBe(1);
    expect(sts.calls).toHaveLength(1);
  });

  it('keys dynamic audiences by the normalized destination', async () => {
    const sts = await fakeSts();
    const metrics = new TestMetrics();
    const live = await transform({}, { meter: metrics.meter });
    const first = await live.run({ scheme: 'https', host: 'API.example.com', port: 443 });
    const second = await live.run({ scheme: 'https', host: 'api.example.com' });
    const otherPort = await live.run({ scheme: 'https', host: 'api.example.com.', port: 8443 });
    expect(sts.calls).toHaveLength(1);
    expect([first, second, otherPort].map((r) => r.annotations.cache)).toEqual(['miss', 'hit', 'hit']);
    expect(await metrics.value('token_cached_audiences')).toBe(1);

    await live.run({ scheme: 'http', host: 'api.example.com' });
    expect(sts.calls.map((c) => c.audience)).toEqual([['https://api.example.com'], ['http://api.example.com']]);
    expect(await metrics.value('token_cached_audiences')).toBe(2);
  });

  it('evicts the least recently used audience set beyond max_cached_audiences, and counts it', async () => {
    const sts = await fakeSts();
    const metrics = new TestMetrics();
    const live = await transform({ max_cached_audiences: 2 }, { meter: metrics.meter });
    await live.run({ host: 'a.test' });
    await live.run({ host: 'b.test' });
    await live.run({ host: 'a.test' }); // a is now the most recently used
    await live.run({ host: 'c.test' }); // evicts b
    expect(await metrics.value('token_cache_eviction_count')).toBe(1);
    expect(await metrics.value('token_cached_audiences')).toBe(2);
    expect((await live.run({ host: 'a.test' })).annotations.cache).toBe('hit');
    expect((await live.run({ host: 'b.test' })).annotations.cache).toBe('miss');
    expect(sts.calls.map((c) => c.audience[0])).toEqual(['http://a.test', 'http://b.test', 'http://c.test', 'http://b.test']);
    expect(await metrics.value('token_cache_eviction_count')).toBe(2);

    await live.close();
    open.shift();
    expect(await metrics.value('token_cached_audiences')).toBe(0);
  });

  it('refreshes refresh_skew before expiry in the background: no request waits for STS', async () => {
    const clock = new FakeClock();
    const sts = await fakeSts(clock);
    const metrics = new TestMetrics();
    const live = await transform({ audience: ['https://example.test'], duration: '10m', refresh_skew: '2m' }, { clock, meter: metrics.meter });
    const first = await live.run();
    const oldToken = bearerToken(first.request);

    clock.advance(7 * MINUTE);
    expect((await live.run()).annotations.cache).toBe('hit');
    expect(sts.calls).toHaveLength(1);

    // Inside the refresh window (8m of 10m): the request is served the cached token while STS is held.
    clock.advance(1 * MINUTE + 1);
    const release = sts.hold();
    const during = await live.run();
    expect(during.annotations.cache).toBe('refresh');
    expect(bearerToken(during.request)).toBe(oldToken);
    await expect.poll(() => sts.calls.length).toBe(2);
    const stillHeld = await live.run();
    expect(stillHeld.annotations.cache).toBe('hit');
    expect(bearerToken(stillHeld.request)).toBe(oldToken);
    release();

    await expect.poll(() => metrics.value('token_fetch_count', { result: 'ok' })).toBe(2);
    const after = await live.run();
    const newToken = bearerToken(after.request);
    expect(newToken).not.toBe(oldToken);
    expect(after.annotations.cache).toBe('hit');
    const { payload } = await verifyAsRelyingParty(newToken, sts, 'https://example.test', new Date(clock.now()));
    expect(payload.exp! * 1000).toBeGreaterThan(clock.now() + 9 * MINUTE);
    expect(await metrics.value('token_cache_miss_count')).toBe(1);
  });

  it('keeps serving a still-valid token when a refresh fails, counts the failure, retries, then recovers', async () => {
    const clock = new FakeClock();
    const sts = await fakeSts(clock);
    const metrics = new TestMetrics();
    const live = await transform({ audience: ['https://example.test'], duration: '10m', refresh_skew: '2m' }, { clock, meter: metrics.meter });
    const oldToken = bearerToken((await live.run()).request);

    clock.advance(9 * MINUTE);
    sts.failWith('AccessDenied');
    expect((await live.run()).annotations.cache).toBe('refresh');
    await expect.poll(() => metrics.value('token_fetch_count', { result: 'error', error_class: 'AccessDenied' })).toBe(1);
    const warning = live.logs.find((l) => l.level === 'warn');
    expect(warning?.fields).toMatchObject({ error_class: 'AccessDenied', trigger: 'refresh' });
    expect(live.logs.filter((l) => l.level === 'error')).toHaveLength(0);

    // Right after a failure the cached token is served without calling STS again.
    const next = await live.run();
    expect(next.decision.action).toBe('continue');
    expect(next.annotations.cache).toBe('hit');
    expect(bearerToken(next.request)).toBe(oldToken);
    expect(sts.calls).toHaveLength(2);

    // After the retry pause (min(10s, skew / 5)) the next request tries again; STS has recovered.
    clock.advance(10_001);
    sts.failWith(undefined);
    expect((await live.run()).annotations.cache).toBe('refresh');
    await expect.poll(() => metrics.value('token_fetch_count', { result: 'ok' })).toBe(2);
    expect(bearerToken((await live.run()).request)).not.toBe(oldToken);
  });

  it('fails closed once the cached token has expired and STS still fails', async () => {
    const clock = new FakeClock();
    const sts = await fakeSts(clock);
    const metrics = new TestMetrics();
    const live = await transform({ audience: ['https://example.test'], duration: '1m', refresh_skew: '10s' }, { clock, meter: metrics.meter });
    await live.run();
    sts.failWith('AccessDenied');
    clock.advance(MINUTE);
    const expired = await live.run();
    expect(expired.decision).toMatchObject({ action: 'reject', status: 502, message: 'token unavailable' });
    expect(expired.annotations.error_class).toBe('AccessDenied');
    // A set left without a token leaves the cache.
    expect(await metrics.value('token_cached_audiences')).toBe(0);
    expect(live.logs.filter((l) => l.level === 'error')).toHaveLength(1);
  });

  it('refuses an STS answer without Expiration: 502, counted as an error, nothing cached', async () => {
    const sts = await fakeSts();
    sts.failWith('no-expiration');
    const metrics = new TestMetrics();
    const live = await transform({ audience: ['https://example.test'] }, { meter: metrics.meter });
    for (let i = 1; i <= 2; i++) {
      const refused = await live.run({ headers: { Authorization: 'Bearer workload' } });
      expect(refused.decision).toEqual({ action: 'reject', status: 502, reason: 'token_unavailable', message: 'token unavailable' });
      expect(refused.annotations).toMatchObject({ error_class: 'invalid_response', token_result: 'fetch_error' });
      // Nothing was cached: each request asks STS again.
      expect(sts.calls).toHaveLength(i);
      expect(await metrics.value('token_cached_audiences')).toBe(0);
    }
    expect(await metrics.value('token_fetch_count', { result: 'error', error_class: 'invalid_response', audience: 'https://example.test' })).toBe(2);
    expect(await metrics.value('token_fetch_count', { result: 'ok' })).toBe(0);
    expect(live.logs.filter((l) => l.level === 'error').map((l) => l.fields.error_class)).toEqual(['invalid_response', 'invalid_response']);

    sts.failWith(undefined);
    const recovered = await live.run();
    expect(recovered.decision.action).toBe('continue');
    expect(recovered.annotations.cache).toBe('miss');
    expect(sts.calls).toHaveLength(3);
  });

  it('keeps the cached token when a refresh answers without Expiration', async () => {
    const clock = new FakeClock();
    const sts = await fakeSts(clock);
    const metrics = new TestMetrics();
    const live = await transform({ audience: ['https://example.test'], duration: '10m', refresh_skew: '2m' }, { clock, meter: metrics.meter });
    const oldToken = bearerToken((await live.run()).request);
    clock.advance(9 * MINUTE);
    sts.failWith('no-expiration');
    expect((await live.run()).annotations.cache).toBe('refresh');
    await expect.poll(() => metrics.value('token_fetch_count', { result: 'error', error_class: 'invalid_response' })).toBe(1);
    // The token of the answer without Expiration replaced nothing.
    const next = await live.run();
    expect(next.annotations.cache).toBe('hit');
    expect(bearerToken(next.request)).toBe(oldToken);
  });

  it('shares one failed STS call between concurrent misses', async () => {
    const sts = await fakeSts();
    sts.failWith('AccessDenied');
    const live = await transform({ audience: ['https://example.test'] });
    const results = await Promise.all(Array.from({ length: 20 }, () => live.run()));
    expect(results.every((r) => r.decision.action === 'reject' && r.decision.status === 502)).toBe(true);
    expect(sts.calls).toHaveLength(1);
    expect(live.logs.filter((l) => l.level === 'error')).toHaveLength(1);
  });
});
