import { promises as dnsPromises } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsTestServer } from '@proxy/test-kit';
import { startTestServer, type TestDnsServer } from './support.js';

const manyTxt = Array.from({ length: 30 }, (_, i) => `record-${i}-${'z'.repeat(60)}`);

let upstream: DnsTestServer;
let dns: TestDnsServer;
let resolver: dnsPromises.Resolver;

beforeAll(async () => {
  upstream = await startDnsServer({ records: { 'db.corp.test': { A: ['192.0.2.7'] }, 'big.corp.test': { TXT: manyTxt } } });
  dns = await startTestServer({
    proxyIpv6: 'fd00::1',
    upstreamResolver: upstream.resolver,
    passthrough: ['*.corp.test'],
    records: [
      { name: 'static.example.test', type: 'A', value: '192.0.2.1' },
      { name: 'www.example.test', type: 'CNAME', value: 'static.example.test' },
    ],
  });
  resolver = new dnsPromises.Resolver({ tries: 1, timeout: 3000 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
});

afterAll(async () => {
  await Promise.all([dns?.server.close(), upstream?.close()]);
});

describe("Node's dns.promises.Resolver pointed at the server", () => {
  it('gets proxy_ip and proxy_ipv6 for intercepted names, with the TTL', async () => {
    expect(await resolver.resolve4('registry.npmjs.org', { ttl: true })).toEqual([{ address: '10.0.0.1', ttl: 60 }]);
    expect(await resolver.resolve6('registry.npmjs.org')).toEqual(['fd00::1']);
  });

  it('gets static records and follows a static CNAME', async () => {
    expect(await resolver.resolve4('Static.Example.Test')).toEqual(['192.0.2.1']);
    expect(await resolver.resolve4('www.example.test')).toEqual(['192.0.2.1']);
    expect(await resolver.resolveCname('www.example.test')).toEqual(['static.example.test']);
  });

  it('gets passthrough answers, including a large one fetched again over TCP', async () => {
    expect(await resolver.resolve4('db.corp.test')).toEqual(['192.0.2.7']);
    const txt = await resolver.resolveTxt('big.corp.test');
    expect(txt.map((chunks) => chunks.join('')).sort()).toEqual([...manyTxt].sort());
  });

  it('gets ENODATA for other types of an intercepted name and ENOTFOUND for an unknown passthrough name', async () => {
    await expect(resolver.resolveMx('registry.npmjs.org')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(resolver.resolve4('nope.corp.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});
