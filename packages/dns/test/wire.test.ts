import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDns, startDnsServer, type DnsQueryOptions, type DnsRecord, type DnsResponse, type DnsTestServer } from '@proxy/test-kit';
import { startTestServer, type TestDnsServer } from './support.js';

// The server as a stub resolver sees it on the wire, over UDP and TCP: header flags, rcodes,
// TTLs, truncation and EDNS, asked with the test-kit's DNS client.

/** 30 TXT records of ~65 bytes: ~2.7 KB, more than any UDP answer this server sends. */
const bigTxt = Array.from({ length: 30 }, (_, i) => `big-${i}-${'x'.repeat(60)}`);
/** 12 TXT records: ~1 KB, over 512 bytes but within the EDNS limit of 1232. */
const mediumTxt = Array.from({ length: 12 }, (_, i) => `medium-${i}-${'y'.repeat(60)}`);
const UPSTREAM_TTL = 123;

let upstream: DnsTestServer;
let dns: TestDnsServer;
let dnsV6: TestDnsServer;
let dnsResolverDown: TestDnsServer;

beforeAll(async () => {
  upstream = await startDnsServer({
    ttl: UPSTREAM_TTL,
    records: {
      'db.corp.test': { A: ['192.0.2.7'], AAAA: ['2001:db8::7'] },
      'big.corp.test': { TXT: bigTxt },
      'medium.corp.test': { TXT: mediumTxt },
    },
  });
  const records = [
    { name: 'Static.Example.Test', type: 'A', value: '192.0.2.1' },
    { name: 'static.example.test', type: 'A', value: '192.0.2.2' },
    { name: 'static.example.test', type: 'AAAA', value: '2001:db8::1' },
    { name: 'alias.example.test', type: 'CNAME', value: 'hop.example.test' },
    { name: 'hop.example.test', type: 'CNAME', value: 'static.example.test.' },
    { name: 'to-intercepted.example.test', type: 'CNAME', value: 'api.example.com' },
    { name: 'to-passthrough.example.test', type: 'CNAME', value: 'db.corp.test' },
  ] as const;
  const common = { upstreamResolver: upstream.resolver, passthrough: ['*.corp.test'], records };
  dns = await startTestServer(common);
  dnsV6 = await startTestServer({ ...common, proxyIpv6: 'fd00::1' });
  const gone = await startDnsServer({ records: {} });
  await gone.close();
  dnsResolverDown = await startTestServer({ ...common, upstreamResolver: gone.resolver });
});

afterAll(async () => {
  await Promise.all([dns?.server.close(), dnsV6?.server.close(), dnsResolverDown?.server.close(), upstream?.close()]);
});

/** Asks `server` the way a modern stub resolver (and dig) does by default: RD set, EDNS advertising 1232 bytes. */
function ask(server: TestDnsServer, name: string, type: NonNullable<DnsQueryOptions['type']>, options: Partial<DnsQueryOptions> = {}): Promise<DnsResponse> {
  return queryDns({ port: server.port, name, type, ednsUdpSize: 1232, ...options });
}

const txtText = (record: DnsRecord): string => (record.type === 'TXT' ? record.data.join('') : `not TXT: ${record.type}`);

describe.each(['udp', 'tcp'] as const)('over %s', (transport) => {
  it('answers an intercepted A query with proxy_ip, authoritatively', async () => {
    const result = await ask(dns, 'api.example.com', 'A', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.flags).toMatchObject({ qr: true, aa: true, rd: true, ra: true, tc: false });
    expect(result.answers).toEqual([{ name: 'api.example.com', ttl: 60, type: 'A', data: '10.0.0.1' }]);
  });

  it('answers AAAA with proxy_ipv6 when it is set', async () => {
    const result = await ask(dnsV6, 'api.example.com', 'AAAA', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.answers).toEqual([{ name: 'api.example.com', ttl: 60, type: 'AAAA', data: 'fd00::1' }]);
  });

  it('answers AAAA with NOERROR and no records without proxy_ipv6', async () => {
    const result = await ask(dns, 'api.example.com', 'AAAA', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.flags.aa).toBe(true);
    expect(result.answers).toEqual([]);
  });

  it('answers other types of an intercepted name with NOERROR and no records', async () => {
    const result = await ask(dns, 'api.example.com', 'MX', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.answers).toEqual([]);
  });

  it('answers static records first, matching names case-insensitively and echoing the question', async () => {
    const result = await ask(dns, 'STATIC.example.TEST', 'A', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.flags.aa).toBe(true);
    expect(result.questions).toEqual([{ name: 'STATIC.example.TEST', type: 'A', class: 'IN' }]);
    expect(result.answers).toEqual([
      { name: 'STATIC.example.TEST', ttl: 60, type: 'A', data: '192.0.2.1' },
      { name: 'STATIC.example.TEST', ttl: 60, type: 'A', data: '192.0.2.2' },
    ]);
    const v6 = await ask(dns, 'static.example.test', 'AAAA', { transport });
    expect(v6.answers.map((a) => a.data)).toEqual(['2001:db8::1']);
  });

  it('follows a CNAME chain through the static records', async () => {
    const result = await ask(dns, 'alias.example.test', 'A', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.answers).toEqual([
      { name: 'alias.example.test', ttl: 60, type: 'CNAME', data: 'hop.example.test' },
      { name: 'hop.example.test', ttl: 60, type: 'CNAME', data: 'static.example.test' },
      { name: 'static.example.test', ttl: 60, type: 'A', data: '192.0.2.1' },
      { name: 'static.example.test', ttl: 60, type: 'A', data: '192.0.2.2' },
    ]);
    const cname = await ask(dns, 'alias.example.test', 'CNAME', { transport });
    expect(cname.answers).toEqual([{ name: 'alias.example.test', ttl: 60, type: 'CNAME', data: 'hop.example.test' }]);
  });

  it('resolves a CNAME target outside the static records like any name: intercepted', async () => {
    const result = await ask(dns, 'to-intercepted.example.test', 'A', { transport });
    expect(result.answers).toEqual([
      { name: 'to-intercepted.example.test', ttl: 60, type: 'CNAME', data: 'api.example.com' },
      { name: 'api.example.com', ttl: 60, type: 'A', data: '10.0.0.1' },
    ]);
  });

  it('resolves a CNAME target outside the static records like any name: passthrough', async () => {
    const result = await ask(dns, 'to-passthrough.example.test', 'AAAA', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.answers).toEqual([
      { name: 'to-passthrough.example.test', ttl: 60, type: 'CNAME', data: 'db.corp.test' },
      { name: 'db.corp.test', ttl: UPSTREAM_TTL, type: 'AAAA', data: '2001:db8::7' },
    ]);
  });

  it('forwards passthrough names to the upstream resolver and relays its answer and TTL', async () => {
    const before = upstream.queries.length;
    const result = await ask(dns, 'DB.corp.test', 'A', { transport });
    expect(result.rcode).toBe('NOERROR');
    expect(result.answers).toEqual([{ name: 'DB.corp.test', ttl: UPSTREAM_TTL, type: 'A', data: '192.0.2.7' }]);
    expect(upstream.queries.slice(before).map((q) => q.name)).toContain('DB.corp.test');
  });

  it('relays the upstream NXDOMAIN for an unknown passthrough name', async () => {
    const result = await ask(dns, 'missing.corp.test', 'A', { transport });
    expect(result.rcode).toBe('NXDOMAIN');
    expect(result.answers).toEqual([]);
  });

  it('answers SERVFAIL for a passthrough name when the upstream resolver is down', async () => {
    const result = await ask(dnsResolverDown, 'db.corp.test', 'A', { transport });
    expect(result.rcode).toBe('SERVFAIL');
    expect(result.answers).toEqual([]);
    // Names that are not passthrough do not depend on the resolver.
    expect((await ask(dnsResolverDown, 'api.example.com', 'A', { transport })).answers.map((a) => a.data)).toEqual(['10.0.0.1']);
  });
});

describe('truncation and EDNS', () => {
  it('sets TC on a passthrough answer too large for UDP', async () => {
    const before = dns.server.stats.truncated;
    const result = await ask(dns, 'big.corp.test', 'TXT');
    expect(result.rcode).toBe('NOERROR');
    expect(result.flags.tc).toBe(true);
    expect(result.answers).toEqual([]);
    expect(result.ednsUdpSize).toBe(1232);
    expect(dns.server.stats.truncated).toBe(before + 1);
  });

  it('serves the whole answer when the client asks again over TCP after TC', async () => {
    expect((await ask(dns, 'big.corp.test', 'TXT')).flags.tc).toBe(true);
    const result = await ask(dns, 'big.corp.test', 'TXT', { transport: 'tcp' });
    expect(result.flags.tc).toBe(false);
    expect(result.answers.map(txtText).sort()).toEqual([...bigTxt].sort());
    expect(result.answers.every((a) => a.ttl === UPSTREAM_TTL)).toBe(true);
  });

  it('uses the client EDNS size: ~1 KB fits with EDNS, is truncated at 512 without, and at a small advertised size', async () => {
    const withEdns = await ask(dns, 'medium.corp.test', 'TXT');
    expect(withEdns.flags.tc).toBe(false);
    expect(withEdns.answers).toHaveLength(mediumTxt.length);
    expect(withEdns.size).toBeGreaterThan(512);

    const withoutEdns = await ask(dns, 'medium.corp.test', 'TXT', { ednsUdpSize: undefined });
    expect(withoutEdns.flags.tc).toBe(true);
    expect(withoutEdns.answers).toEqual([]);

    const smallBuffer = await ask(dns, 'medium.corp.test', 'TXT', { ednsUdpSize: 600 });
    expect(smallBuffer.flags.tc).toBe(true);
  });

  it('caps the UDP size at 1232 whatever the client advertises', async () => {
    const whole = await ask(dns, 'big.corp.test', 'TXT', { transport: 'tcp', ednsUdpSize: 4096 });
    // The whole answer would fit in the advertised 4096 bytes: only the server's cap truncates it.
    expect(whole.size).toBeGreaterThan(1232);
    expect(whole.size).toBeLessThan(4096);
    const result = await ask(dns, 'big.corp.test', 'TXT', { ednsUdpSize: 4096 });
    expect(result.flags.tc).toBe(true);
  });

  it('includes an OPT record (udp 1232) only when the query has EDNS', async () => {
    expect((await ask(dns, 'api.example.com', 'A', { ednsUdpSize: 4096 })).ednsUdpSize).toBe(1232);
    expect((await ask(dns, 'api.example.com', 'A', { ednsUdpSize: undefined })).ednsUdpSize).toBeUndefined();
    expect((await ask(dns, 'api.example.com', 'A', { transport: 'tcp' })).ednsUdpSize).toBe(1232);
    expect((await ask(dns, 'api.example.com', 'A', { transport: 'tcp', ednsUdpSize: undefined })).ednsUdpSize).toBeUndefined();
  });
});
