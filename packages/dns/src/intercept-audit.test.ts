import { describe, expect, it } from 'vitest';
import { InterceptAudit, type DnsInterceptEvent } from './intercept-audit.js';

function audit(maxKeys = 100): { audit: InterceptAudit; events: DnsInterceptEvent[]; advance: (ms: number) => void } {
  let now = 1_000;
  const events: DnsInterceptEvent[] = [];
  return {
    audit: new InterceptAudit({ report: (e) => events.push(e), windowMs: 60_000, maxKeys, now: () => now }),
    events,
    advance: (ms) => {
      now += ms;
    },
  };
}

describe('InterceptAudit', () => {
  it('reports the first query of a key at once, then batches repeats within the window', () => {
    const { audit: a, events, advance } = audit();
    a.record('api.example.com', 'A', '10.1.1.1', '10.0.0.1');
    expect(events).toEqual([{ name: 'api.example.com', type: 'A', client: '10.1.1.1', answer: '10.0.0.1', count: 1 }]);
    for (let i = 0; i < 5; i++) {
      advance(1_000);
      a.record('api.example.com', 'A', '10.1.1.1', '10.0.0.1');
    }
    expect(events).toHaveLength(1);
    advance(55_000); // 60 s after the first report
    a.record('api.example.com', 'A', '10.1.1.1', '10.0.0.1');
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ name: 'api.example.com', count: 6 });
  });

  it('keeps separate keys per name, type and client', () => {
    const { audit: a, events } = audit();
    a.record('api.example.com', 'A', '10.1.1.1', '10.0.0.1');
    a.record('api.example.com', 'AAAA', '10.1.1.1', null);
    a.record('api.example.com', 'A', '10.1.1.2', '10.0.0.1');
    a.record('web.example.com', 'A', '10.1.1.1', '10.0.0.1');
    a.record('api.example.com', 'A', '10.1.1.1', '10.0.0.1');
    expect(events.map((e) => [e.name, e.type, e.client, e.answer, e.count])).toEqual([
      ['api.example.com', 'A', '10.1.1.1', '10.0.0.1', 1],
      ['api.example.com', 'AAAA', '10.1.1.1', null, 1],
      ['api.example.com', 'A', '10.1.1.2', '10.0.0.1', 1],
      ['web.example.com', 'A', '10.1.1.1', '10.0.0.1', 1],
    ]);
  });

  it('sweep() reports counts whose window has passed and forgets quiet keys', () => {
    const { audit: a, events, advance } = audit();
    a.record('a.test', 'A', 'c', '10.0.0.1');
    a.record('a.test', 'A', 'c', '10.0.0.1');
    a.record('b.test', 'A', 'c', '10.0.0.1');
    advance(30_000);
    a.sweep();
    expect(events).toHaveLength(2); // window not over yet: nothing new
    advance(30_000);
    a.sweep();
    expect(events.slice(2)).toEqual([{ name: 'a.test', type: 'A', client: 'c', answer: '10.0.0.1', count: 1 }]);
    // Both keys were forgotten: the next query is a first query again.
    a.record('b.test', 'A', 'c', '10.0.0.1');
    expect(events.at(-1)).toMatchObject({ name: 'b.test', count: 1 });
  });

  it('flush() reports every pending count', () => {
    const { audit: a, events } = audit();
    for (let i = 0; i < 4; i++) a.record('a.test', 'A', 'c', '10.0.0.1');
    a.record('b.test', 'A', 'c', '10.0.0.1');
    a.flush();
    expect(events.map((e) => [e.name, e.count])).toEqual([
      ['a.test', 1],
      ['b.test', 1],
      ['a.test', 3],
    ]);
  });

  it('bounds the keys it tracks: the oldest is reported and forgotten', () => {
    const { audit: a, events } = audit(2);
    a.record('a.test', 'A', 'c', '10.0.0.1');
    a.record('a.test', 'A', 'c', '10.0.0.1');
    a.record('b.test', 'A', 'c', '10.0.0.1');
    a.record('c.test', 'A', 'c', '10.0.0.1');
    expect(events.map((e) => [e.name, e.count])).toEqual([
      ['a.test', 1],
      ['b.test', 1],
      ['a.test', 1],
      ['c.test', 1],
    ]);
  });
});
