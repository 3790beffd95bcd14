import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './breaker.js';
import { Semaphore } from './semaphore.js';

describe('Semaphore', () => {
  it('hands slots to waiters in arrival order, and a waiter gives up after its timeout', async () => {
    const slots = new Semaphore(1);
    const signal = new AbortController().signal;
    const first = await slots.acquire(1000, signal);
    const order: string[] = [];
    const second = slots.acquire(1000, signal).then((r) => (order.push('second'), r));
    const third = slots.acquire(1000, signal).then((r) => (order.push('third'), r));
    const late = await slots.acquire(20, signal);
    expect(late).toBeUndefined();
    first!();
    (await second)!();
    (await third)!();
    expect(order).toEqual(['second', 'third']);
    // Every slot is back: two acquisitions at once would leave the second waiting.
    expect(await slots.acquire(0, signal)).toBeTypeOf('function');
  });

  it('stops waiting when the signal aborts, and releasing twice frees one slot', async () => {
    const slots = new Semaphore(1);
    const controller = new AbortController();
    const held = await slots.acquire(1000, controller.signal);
    const waiting = slots.acquire(10_000, controller.signal);
    controller.abort();
    expect(await waiting).toBeUndefined();
    expect(await slots.acquire(1000, controller.signal)).toBeUndefined();
    held!();
    held!();
    const signal = new AbortController().signal;
    const again = await slots.acquire(10, signal);
    expect(again).toBeTypeOf('function');
    expect(await slots.acquire(10, signal)).toBeUndefined();
  });
});

describe('CircuitBreaker', () => {
  it('opens after the threshold, admits a single probe after the cooldown, closes on its success', () => {
    let now = 0;
    const breaker = new CircuitBreaker(2, 100, { now: () => now });
    breaker.record(breaker.admit() as 'call', false);
    expect(breaker.admit()).toBe('call');
    breaker.record('call', false);
    expect(breaker.admit()).toBe('open');
    now = 100;
    expect(breaker.admit()).toBe('probe');
    expect(breaker.admit()).toBe('open');
    breaker.record('probe', true);
    expect(breaker.admit()).toBe('call');
  });

  it('reopens for a fresh cooldown when the probe fails, and a released probe can be retried', () => {
    let now = 0;
    const breaker = new CircuitBreaker(1, 100, { now: () => now });
    breaker.record('call', false);
    now = 100;
    breaker.release(breaker.admit() as 'probe');
    expect(breaker.admit()).toBe('probe');
    breaker.record('probe', false);
    now = 199;
    expect(breaker.admit()).toBe('open');
    now = 200;
    expect(breaker.admit()).toBe('probe');
  });
});
