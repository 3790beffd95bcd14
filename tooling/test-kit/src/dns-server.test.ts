import { promises as dns } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDns, startDnsServer, type DnsTestServer } from './index.js';

const manyTxt = Array.from({ length: 12 }, (_, i) => `record-${i}-${'x'.repeat(60)}`);

let server: DnsTestServer;
let resolver: dns.Resolver;

beforeAll(async () => {
  server = await startDnsServer({
    records: {
      'Api.Example.Test': { A: ['127.0.0.1', '127.0.0.2'], AAAA: ['::1'] },
      'alias.example.test': { CNAME: 'hop.example.test' },
      'hop.example.test': { CNAME: 'api.example.test' },
      'big.example.test': { TXT: manyTxt },
      'long.example.test': { TXT: ['y'.repeat(400)] },
    },
  });
  resolver = new dns.Resolver({ tries: 1, timeout: 2000 });
  resolver.setServers([server.resolver]);
});

afterAll(async () => {
  await server.close();
});

describe('DNS test server', () => {
  it('answers A and AAAA, case-insensitively', async () => {
    expect(server.resolver).toBe(`127.0.0.1:${server.port}`);
    expect((await resolver.resolve4('api.EXAMPLE.test')).sort()).toEqual(['127.0.0.1', '127.0.0.2']);
    expect(await resolver.resolve6('api.example.test')).toEqual(['::1']);
    expect(server.queries.map((q) => ({ ...q, name: q.name.toLowerCase() }))).toContainEqual({ name: 'api.example.test', type: 'A', protocol: 'udp' });
  });

  it('follows CNAME chains into the answer', async () => {
    expect((await resolver.resolve4('alias.example.test')).sort()).toEqual(['127.0.0.1', '127.0.0.2']);
    expect(await resolver.resolveCname('alias.example.test')).toEqual(['hop.example.test']);
  });

  it('answers NXDOMAIN for unknown names', async () => {
    await expect(resolver.resolve4('nope.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('answers an empty NOERROR for a known name without records of that type', async () => {
    await expect(resolver.resolveTxt('api.example.test')).rejects.toMatchObject({ code: 'ENODATA' });
  });

  it('truncates answers over 512 bytes on UDP and serves them in full over TCP', async () => {
    const records = await resolver.resolveTxt('big.example.test');
    expect(records.map((chunks) => chunks.join('')).sort()).toEqual([...manyTxt].sort());
    const asked = server.queries.filter((q) => q.name === 'big.example.test');
    expect(asked.map((q) => q.protocol)).toEqual(['udp', 'tcp']);
  });

  it('splits TXT values longer than 255 bytes into strings of one record', async () => {
    const records = await resolver.resolveTxt('long.example.test');
    expect(records).toHaveLength(1);
    expect(records[0]!.join('')).toBe('y'.repeat(400));
  });

  it('answers authoritatively with the TTL, sets TC on UDP past 512 bytes and sends the whole answer over TCP', async () => {
    const udp = await queryDns({ port: server.port, name: 'big.example.test', type: 'TXT' });
    expect(udp.flags).toMatchObject({ aa: true, tc: true });
    expect(udp.answers).toEqual([]);
    expect(udp.size).toBeLessThanOrEqual(512);
    const tcp = await queryDns({ port: server.port, name: 'big.example.test', type: 'TXT', transport: 'tcp' });
    expect(tcp.flags).toMatchObject({ aa: true, tc: false });
    expect(tcp.size).toBeGreaterThan(512);
    expect(tcp.answers.map((a) => [a.ttl, a.type === 'TXT' ? a.data.join('') : a.data]).sort()).toEqual(manyTxt.map((text) => [60, text]).sort());
  });
});
