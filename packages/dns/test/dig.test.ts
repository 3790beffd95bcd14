import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsTestServer } from '@proxy/test-kit';
import { dig, hasDig, startTestServer, type TestDnsServer } from './support.js';

const digInstalled = await hasDig();

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

const transports = [
  { transport: 'UDP', extra: [] },
  { transport: 'TCP', extra: ['+tcp'] },
] as const;

describe.skipIf(!digInstalled).each(transports)('dig over $transport', ({ extra }) => {
  it('answers an intercepted A query with proxy_ip, authoritatively', async () => {
    const result = await dig(dns.port, 'api.example.com', 'A', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.flags).toEqual(expect.arrayContaining(['qr', 'aa', 'rd', 'ra']));
    expect(result.answers).toEqual([{ name: 'api.example.com.', ttl: 60, type: 'A', data: '10.0.0.1' }]);
  });

  it('answers AAAA with proxy_ipv6 when it is set', async () => {
    const result = await dig(dnsV6.port, 'api.example.com', 'AAAA', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.answers).toEqual([{ name: 'api.example.com.', ttl: 60, type: 'AAAA', data: 'fd00::1' }]);
  });

  it('answers AAAA with NOERROR and no records without proxy_ipv6', async () => {
    const result = await dig(dns.port, 'api.example.com', 'AAAA', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.flags).toContain('aa');
    expect(result.answers).toEqual([]);
  });

  it('answers other types of an intercepted name with NOERROR and no records', async () => {
    const result = await dig(dns.port, 'api.example.com', 'MX', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.answers).toEqual([]);
  });

  it('answers static records first, matching names case-insensitively and echoing the question', async () => {
    const result = await dig(dns.port, 'STATIC.example.TEST', 'A', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.flags).toContain('aa');
    expect(result.answers).toEqual([
      { name: 'STATIC.example.TEST.', ttl: 60, type: 'A', data: '192.0.2.1' },
      { name: 'STATIC.example.TEST.', ttl: 60, type: 'A', data: '192.0.2.2' },
    ]);
    const v6 = await dig(dns.port, 'static.example.test', 'AAAA', extra);
    expect(v6.answers.map((a) => a.data)).toEqual(['2001:db8::1']);
  });

  it('follows a CNAME chain through the static records', async () => {
    const result = await dig(dns.port, 'alias.example.test', 'A', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.answers).toEqual([
      { name: 'alias.example.test.', ttl: 60, type: 'CNAME', data: 'hop.example.test.' },
      { name: 'hop.example.test.', ttl: 60, type: 'CNAME', data: 'static.example.test.' },
      { name: 'static.example.test.', ttl: 60, type: 'A', data: '192.0.2.1' },
      { name: 'static.example.test.', ttl: 60, type: 'A', data: '192.0.2.2' },
    ]);
    const cname = await dig(dns.port, 'alias.example.test', 'CNAME', extra);
    expect(cname.answers).toEqual([{ name: 'alias.example.test.', ttl: 60, type: 'CNAME', data: 'hop.example.test.' }]);
  });

  it('resolves a CNAME target outside the static records like any name: intercepted', async () => {
    const result = await dig(dns.port, 'to-intercepted.example.test', 'A', extra);
    expect(result.answers).toEqual([
      { name: 'to-intercepted.example.test.', ttl: 60, type: 'CNAME', data: 'api.example.com.' },
      { name: 'api.example.com.', ttl: 60, type: 'A', data: '10.0.0.1' },
    ]);
  });

  it('resolves a CNAME target outside the static records like any name: passthrough', async () => {
    const result = await dig(dns.port, 'to-passthrough.example.test', 'AAAA', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.answers).toEqual([
      { name: 'to-passthrough.example.test.', ttl: 60, type: 'CNAME', data: 'db.corp.test.' },
      { name: 'db.corp.test.', ttl: UPSTREAM_TTL, type: 'AAAA', data: '2001:db8::7' },
    ]);
  });

  it('forwards passthrough names to the upstream resolver and relays its answer and TTL', async () => {
    const before = upstream.queries.length;
    const result = await dig(dns.port, 'DB.corp.test', 'A', extra);
    expect(result.status).toBe('NOERROR');
    expect(result.answers).toEqual([{ name: 'DB.corp.test.', ttl: UPSTREAM_TTL, type: 'A', data: '192.0.2.7' }]);
    expect(upstream.queries.slice(before).map((q) => q.name)).toContain('DB.corp.test');
  });

  it('relays the upstream NXDOMAIN for an unknown passthrough name', async () => {
    const result = await dig(dns.port, 'missing.corp.test', 'A', extra);
    expect(result.status).toBe('NXDOMAIN');
    expect(result.answers).toEqual([]);
  });

  it('answers SERVFAIL for a passthrough name when the upstream resolver is down', async () => {
    const result = await dig(dnsResolverDown.port, 'db.corp.test', 'A', extra);
    expect(result.status).toBe('SERVFAIL');
    expect(result.answers).toEqual([]);
    // Names that are not passthrough do not depend on the resolver.
    expect((await dig(dnsResolverDown.port, 'api.example.com', 'A', extra)).answers.map((a) => a.data)).toEqual(['10.0.0.1']);
  });
});

describe.skipIf(!digInstalled)('dig: truncation and EDNS', () => {
  it('sets TC on a passthrough answer too large for UDP', async () => {
    const before = dns.server.stats.truncated;
    const result = await dig(dns.port, 'big.corp.test', 'TXT', ['+ignore']);
    expect(result.status).toBe('NOERROR');
    expect(result.flags).toContain('tc');
    expect(result.answers).toEqual([]);
    expect(dns.server.stats.truncated).toBe(before + 1);
  });

  it('serves the whole answer when dig retries over TCP after TC', async () => {
    const result = await dig(dns.port, 'big.corp.test', 'TXT');
    expect(result.stdout).toContain('Truncated, retrying in TCP mode');
    expect(result.flags).not.toContain('tc');
    expect(result.answers.map((a) => a.data.replaceAll('"', '')).sort()).toEqual([...bigTxt].sort());
    expect(result.answers.every((a) => a.ttl === UPSTREAM_TTL)).toBe(true);
  });

  it('uses the client EDNS size: ~1 KB fits with EDNS, is truncated at 512 without, and at a small advertised size', async () => {
    const withEdns = await dig(dns.port, 'medium.corp.test', 'TXT', ['+ignore']);
    expect(withEdns.flags).not.toContain('tc');
    expect(withEdns.answers).toHaveLength(mediumTxt.length);

    const withoutEdns = await dig(dns.port, 'medium.corp.test', 'TXT', ['+ignore', '+noedns']);
    expect(withoutEdns.flags).toContain('tc');
    expect(withoutEdns.answers).toEqual([]);

    const smallBuffer = await dig(dns.port, 'medium.corp.test', 'TXT', ['+ignore', '+bufsize=600']);
    expect(smallBuffer.flags).toContain('tc');
  });

  it('caps the UDP size at 1232 whatever the client advertises', async () => {
    const result = await dig(dns.port, 'big.corp.test', 'TXT', ['+ignore', '+bufsize=4096']);
    expect(result.flags).toContain('tc');
  });

  it('includes an OPT record (udp 1232) only when the query has EDNS', async () => {
    expect((await dig(dns.port, 'api.example.com', 'A')).ednsUdpSize).toBe(1232);
    expect((await dig(dns.port, 'api.example.com', 'A', ['+noedns'])).ednsUdpSize).toBeUndefined();
    expect((await dig(dns.port, 'api.example.com', 'A', ['+tcp'])).ednsUdpSize).toBe(1232);
  });
});
