import { describe, expect, it } from 'vitest';
import { StaticRecords, type StaticRecord } from './static-records.js';

const TTL = 30;

describe('StaticRecords', () => {
  const records = new StaticRecords([
    { name: 'Host.Test.', type: 'A', value: '192.0.2.1' },
    { name: 'host.test', type: 'AAAA', value: '2001:db8::1' },
    { name: 'www.test', type: 'CNAME', value: 'host.test' },
    { name: 'out.test', type: 'CNAME', value: 'elsewhere.example.com' },
    { name: 'loop-a.test', type: 'CNAME', value: 'loop-b.test' },
    { name: 'loop-b.test', type: 'CNAME', value: 'LOOP-A.test' },
  ]);

  it('answers by type, case-insensitively, with or without the trailing dot', () => {
    expect(records.answer('HOST.test.', 'A', TTL)).toEqual({ kind: 'answer', answers: [{ type: 'A', name: 'HOST.test.', ttl: TTL, data: '192.0.2.1' }] });
    expect(records.answer('host.test', 'AAAA', TTL)).toMatchObject({ kind: 'answer', answers: [{ data: '2001:db8::1' }] });
    expect(records.answer('host.test', 'TXT', TTL)).toEqual({ kind: 'answer', answers: [] });
    expect(records.answer('unknown.test', 'A', TTL)).toEqual({ kind: 'none' });
  });

  it('follows CNAMEs for every type but CNAME', () => {
    expect(records.answer('www.test', 'AAAA', TTL)).toEqual({
      kind: 'answer',
      answers: [
        { type: 'CNAME', name: 'www.test', ttl: TTL, data: 'host.test' },
        { type: 'AAAA', name: 'host.test', ttl: TTL, data: '2001:db8::1' },
      ],
    });
    expect(records.answer('www.test', 'CNAME', TTL)).toEqual({ kind: 'answer', answers: [{ type: 'CNAME', name: 'www.test', ttl: TTL, data: 'host.test' }] });
  });

  it('hands a chain that leaves the records over as an alias', () => {
    expect(records.answer('out.test', 'A', TTL)).toEqual({
      kind: 'alias',
      answers: [{ type: 'CNAME', name: 'out.test', ttl: TTL, data: 'elsewhere.example.com' }],
      target: 'elsewhere.example.com',
    });
  });

  it('detects loops', () => {
    expect(records.answer('loop-a.test', 'A', TTL)).toEqual({ kind: 'loop' });
  });

  it('reports chains longer than the hop limit as a loop', () => {
    const chain: StaticRecord[] = Array.from({ length: 12 }, (_, i) => ({ name: `h${i}.test`, type: 'CNAME', value: `h${i + 1}.test` }));
    expect(new StaticRecords(chain).answer('h0.test', 'A', TTL)).toEqual({ kind: 'loop' });
  });

  it.each([
    [{ name: 'a.test', type: 'A', value: '2001:db8::1' }, /dns\.records\[0\]: "2001:db8::1" is not an IPv4 address/],
    [{ name: 'a.test', type: 'AAAA', value: '192.0.2.1' }, /is not an IPv6 address/],
    [{ name: '', type: 'A', value: '192.0.2.1' }, /the name is empty/],
    [{ name: 'a.test', type: 'MX', value: 'mail.test' }, /unsupported record type "MX"/],
  ])('rejects an invalid record %j', (record, message) => {
    expect(() => new StaticRecords([record as StaticRecord])).toThrow(message);
  });

  it('rejects a CNAME sharing its name with another record', () => {
    const both: StaticRecord[] = [
      { name: 'a.test', type: 'A', value: '192.0.2.1' },
      { name: 'A.test', type: 'CNAME', value: 'b.test' },
    ];
    expect(() => new StaticRecords(both)).toThrow(expect.objectContaining({ code: 'PROXY_ERR_CONFIG_INVALID', message: expect.stringMatching(/dns\.records\[1\]: "A\.test" has a CNAME/) }));
  });
});
