import { createSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decode, encode } from 'dns-packet';
import { startDnsServer } from '@proxy/test-kit';
import { createDnsServer, type DnsServerOptions } from '../src/index.js';
import { MAX_EXCHANGES_IN_FLIGHT } from '../src/upstream.js';
import { RecordingLogger, startTestServer, type TestDnsServer } from './support.js';

const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((close) => close()));
});

async function started(overrides: Partial<DnsServerOptions> = {}): Promise<TestDnsServer> {
  const dns = await startTestServer(overrides);
  cleanup.push(() => dns.server.close());
  return dns;
}

function resolverFor(address: string, port: number): dnsPromises.Resolver {
  const resolver = new dnsPromises.Resolver({ tries: 1, timeout: 3000 });
  resolver.setServers([address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`]);
  return resolver;
}

describe('createDnsServer validation', () => {
  const base: DnsServerOptions = { listen: '127.0.0.1:0', proxyIp: '10.0.0.1', passthrough: [], records: [], logger: new RecordingLogger() };

  it.each<[string, Partial<DnsServerOptions>, RegExp]>([
    ['listen', { listen: '53' }, /dns\.listen/],
    ['proxy_ip', { proxyIp: 'fd00::1' }, /dns\.proxy_ip: "fd00::1" is not an IPv4 address/],
    ['proxy_ipv6', { proxyIpv6: '10.0.0.2' }, /dns\.proxy_ipv6/],
    ['upstream_resolver', { upstreamResolver: 'dns.google' }, /dns\.upstream_resolver/],
    ['passthrough', { passthrough: ['ok.test', 'bad..glob'] }, /dns\.passthrough\[1\]/],
    ['records', { records: [{ name: 'a.test', type: 'A', value: 'nope' }] }, /dns\.records\[0\]/],
    ['limits', { tcpMaxQueriesPerConnection: 0 }, /tcpMaxQueriesPerConnection/],
  ])('rejects a bad %s with PROXY_ERR_CONFIG_INVALID', (_field, overrides, message) => {
    expect(() => createDnsServer({ ...base, ...overrides })).toThrow(expect.objectContaining({ code: 'PROXY_ERR_CONFIG_INVALID', message: expect.stringMatching(message) }));
  });
});

describe('DNS server lifecycle', () => {
  it('rejects listen() with a ProxyError naming dns.listen when the port is taken', async () => {
    const taken = createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => taken.close(() => resolve())));
    const listen = `127.0.0.1:${taken.address().port}`;
    const server = createDnsServer({ listen, proxyIp: '10.0.0.1', passthrough: [], records: [], logger: new RecordingLogger() });
    await expect(server.listen()).rejects.toMatchObject({ code: 'PROXY_ERR_CONFIG_INVALID', reason: 'listen_address_in_use', message: expect.stringContaining(listen) });
  });

  it('listens on every interface for ":0" (dual stack), reporting IPv4 clients by their plain address', async () => {
    const dns = await started({ listen: ':0' });
    expect(await resolverFor('127.0.0.1', dns.port).resolve4('dual.example.com')).toEqual(['10.0.0.1']);
    expect(await resolverFor('::1', dns.port).resolve4('dual6.example.com')).toEqual(['10.0.0.1']);
    expect(dns.intercepts.map((e) => [e.name, e.client])).toEqual([
      ['dual.example.com', '127.0.0.1'],
      ['dual6.example.com', '::1'],
    ]);
  });

  it('closes idempotently, and refuses a second listen()', async () => {
    const dns = await started();
    await expect(dns.server.listen()).rejects.toThrow(/cannot listen/);
    await dns.server.close();
    await dns.server.close();
    await expect(resolverFor('127.0.0.1', dns.port).resolve4('gone.example.com')).rejects.toBeDefined();
  });
});

describe('DNS server logging and audit', () => {
  it('logs every query at debug level with the rule that answered it', async () => {
    const upstream = await startDnsServer({ records: { 'db.corp.test': { A: ['192.0.2.7'] } } });
    cleanup.push(() => upstream.close());
    const dns = await started({ upstreamResolver: upstream.resolver, passthrough: ['*.corp.test'], records: [{ name: 's.test', type: 'A', value: '192.0.2.1' }] });
    const resolver = resolverFor('127.0.0.1', dns.port);
    await resolver.resolve4('s.test');
    await resolver.resolve4('db.corp.test');
    await resolver.resolve4('api.example.com');
    const queries = dns.logger.entries.filter((e) => e.msg === 'dns query');
    expect(queries.every((e) => e.level === 'debug')).toBe(true);
    expect(queries.map((e) => [e.fields.name, e.fields.type, e.fields.source, e.fields.rcode, e.fields.protocol, e.fields.client])).toEqual([
      ['s.test', 'A', 'static', 'NOERROR', 'udp', '127.0.0.1'],
      ['db.corp.test', 'A', 'passthrough', 'NOERROR', 'udp', '127.0.0.1'],
      ['api.example.com', 'A', 'intercept', 'NOERROR', 'udp', '127.0.0.1'],
    ]);
  });

  it('audits an intercepted name once, then with the count of the queries since (flushed at close)', async () => {
    const dns = await started({ records: [{ name: 's.test', type: 'A', value: '192.0.2.1' }] });
    const resolver = resolverFor('127.0.0.1', dns.port);
    for (let i = 0; i < 5; i++) await resolver.resolve4('API.example.com');
    await resolver.resolve4('s.test'); // static: not intercepted
    await expect(resolver.resolveTxt('api.example.com')).rejects.toMatchObject({ code: 'ENODATA' });
    expect(dns.intercepts).toEqual([
      { name: 'api.example.com', type: 'A', client: '127.0.0.1', answer: '10.0.0.1', count: 1 },
      { name: 'api.example.com', type: 'TXT', client: '127.0.0.1', answer: null, count: 1 },
    ]);
    await dns.server.close();
    expect(dns.intercepts.slice(2)).toEqual([{ name: 'api.example.com', type: 'A', client: '127.0.0.1', answer: '10.0.0.1', count: 4 }]);
  });

  it('reports the pending count once the audit window has passed, without another query', async () => {
    const dns = await started({ auditWindowMs: 200 });
    const resolver = resolverFor('127.0.0.1', dns.port);
    for (let i = 0; i < 3; i++) await resolver.resolve4('again.example.com');
    await vi.waitFor(() => expect(dns.intercepts.length).toBeGreaterThanOrEqual(2), { timeout: 5000 });
    expect(dns.intercepts[0]?.count).toBe(1);
    expect(dns.intercepts.reduce((sum, e) => sum + e.count, 0)).toBe(3);
  });

  it('logs the audit at info level when there is no onIntercept', async () => {
    const logger = new RecordingLogger();
    const server = createDnsServer({ listen: '127.0.0.1:0', proxyIp: '10.0.0.1', passthrough: [], records: [], logger });
    const { port } = await server.listen();
    cleanup.push(() => server.close());
    await resolverFor('127.0.0.1', port).resolve4('logged.example.com');
    expect(logger.entries.filter((e) => e.msg === 'dns: intercepted')).toEqual([
      { level: 'info', msg: 'dns: intercepted', fields: { name: 'logged.example.com', type: 'A', client: '127.0.0.1', answer: '10.0.0.1', count: 1 } },
    ]);
  });
});

describe('DNS server upstream handling', () => {
  it('ignores garbage and answers to other queries from the upstream, relaying the matching answer', async () => {
    const hostile = createSocket('udp4');
    hostile.on('message', (message, peer) => {
      const query = decode(message);
      const reply = (packet: Buffer): void => void hostile.send(packet, peer.port, peer.address);
      reply(Buffer.from('garbage'));
      reply(encode({ type: 'response', id: ((query.id ?? 0) + 1) % 0x10000, questions: query.questions ?? [], answers: [{ type: 'A', name: 'db.corp.test', data: '6.6.6.6' }] }));
      reply(encode({ type: 'response', id: query.id ?? 0, questions: [{ name: 'other.corp.test', type: 'A' }], answers: [{ type: 'A', name: 'other.corp.test', data: '6.6.6.7' }] }));
      reply(encode({ type: 'response', id: query.id ?? 0, flags: 1 << 7, questions: query.questions ?? [], answers: [{ type: 'A', name: 'db.corp.test', ttl: 42, data: '192.0.2.7' }] }));
    });
    await new Promise<void>((resolve) => hostile.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => hostile.close(() => resolve())));
    const dns = await started({ upstreamResolver: `127.0.0.1:${hostile.address().port}`, passthrough: ['*.corp.test'] });
    expect(await resolverFor('127.0.0.1', dns.port).resolve4('db.corp.test', { ttl: true })).toEqual([{ address: '192.0.2.7', ttl: 42 }]);
  });

  it('answers SERVFAIL when the upstream never answers, and logs why', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => silent.close(() => resolve())));
    const dns = await started({ upstreamResolver: `127.0.0.1:${silent.address().port}`, passthrough: ['*.corp.test'], upstreamTimeoutMs: 200 });
    await expect(resolverFor('127.0.0.1', dns.port).resolve4('db.corp.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    const logged = dns.logger.entries.find((e) => e.msg === 'dns query');
    expect(logged?.fields).toMatchObject({ source: 'passthrough', rcode: 'SERVFAIL', failure: expect.stringContaining('no answer within 200 ms') });
  });

  it('answers SERVFAIL at once beyond the limit of upstream queries in flight', async () => {
    const silent = createSocket('udp4');
    let forwarded = 0;
    silent.on('message', () => forwarded++);
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => silent.close(() => resolve())));
    const dns = await started({ upstreamResolver: `127.0.0.1:${silent.address().port}`, passthrough: ['*.corp.test'], upstreamTimeoutMs: 60_000 });
    const client = createSocket('udp4');
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => client.close(() => resolve())));
    const answers: { id: number; rcode: string | undefined }[] = [];
    client.on('message', (reply) => {
      const packet = decode(reply);
      answers.push({ id: packet.id ?? -1, rcode: (packet as { rcode?: string }).rcode });
    });
    const send = (id: number): void =>
      client.send(encode({ type: 'query', id, flags: 1 << 8, questions: [{ name: `n${id}.corp.test`, type: 'A' }] }), dns.port, '127.0.0.1');
    // Fill the limit in batches (a burst would overflow the socket buffers), each seen upstream.
    for (let id = 0; id < MAX_EXCHANGES_IN_FLIGHT; id++) {
      send(id);
      if ((id + 1) % 64 === 0) await vi.waitFor(() => expect(forwarded).toBe(id + 1), { timeout: 10_000 });
    }
    for (let id = MAX_EXCHANGES_IN_FLIGHT; id < MAX_EXCHANGES_IN_FLIGHT + 8; id++) send(id);
    // The resolver never answers and the timeout is long: only the queries over the limit are answered.
    await vi.waitFor(() => expect(answers.length).toBe(8), { timeout: 10_000 });
    expect(answers.every((a) => a.rcode === 'SERVFAIL')).toBe(true);
    const failures = dns.logger.entries.filter((e) => String(e.fields.failure).includes('already in flight'));
    expect(failures).toHaveLength(8);
    expect(forwarded).toBe(MAX_EXCHANGES_IN_FLIGHT);
  });

  it('does not forward to itself: an upstream resolver that is this server is skipped with a warning', async () => {
    // The server must be told its own address before it listens: take a free UDP port, and try
    // another when the TCP side of that number is taken meanwhile (by a parallel test's socket).
    const startOnFreePort = async (attempts: number): ReturnType<typeof started> => {
      const probe = createSocket('udp4');
      await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
      const port = probe.address().port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      try {
        return await started({ listen: `127.0.0.1:${port}`, upstreamResolver: `127.0.0.1:${port}`, passthrough: ['*.corp.test'] });
      } catch (err) {
        if (attempts > 1 && String((err as Error).message).includes('already in use')) return startOnFreePort(attempts - 1);
        throw err;
      }
    };
    const dns = await startOnFreePort(5);
    expect(dns.logger.entries.some((e) => e.level === 'warn' && e.msg?.includes('is this server itself'))).toBe(true);
    await expect(resolverFor('127.0.0.1', dns.port).resolve4('loop.corp.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    expect(dns.server.stats.queries).toBe(1);
  });
});
