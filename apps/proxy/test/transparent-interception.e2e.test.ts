import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { queryDns, startDnsServer, type DnsResponse, type DnsTestServer } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';
import { startHttpsUpstream, type HttpsUpstream } from './support/tls-clients.js';

// Transparent interception end to end (issue 4): the workload's resolver is the proxy's own DNS
// server, which answers every intercepted name with proxy_ip; the workload then connects to
// https_listen (where a port 443 would be in production) with the name as SNI, and the proxy
// terminates TLS with its CA, applies the allowlist and the secret swap, and dials the real
// upstream, which it finds through dns.upstream_resolver (the test-kit DNS server). Clients
// trust only the proxy's CA; the upstream has its own test CA that only the proxy trusts.

const REAL_TOKEN = 'real-token-dns-7c41e9';
const PROXY_IP = '127.0.0.1';
const STATIC_ADDRESS = '10.1.2.3';
const PASSTHROUGH_ADDRESS = '10.9.8.7';
/** TTL of the test resolver's answers: a passthrough answer relays it, the proxy's own answers use 60. */
const RESOLVER_TTL = 37;

let upstream: HttpsUpstream;
let resolverDns: DnsTestServer;
let dir: string;
let proxy: ProxyProcess;
let proxyCa: string;
let proxyCaPem: string;
let dnsPort: number;
let httpsPort: number;

beforeAll(async () => {
  upstream = await startHttpsUpstream(['api.example.test'], 'upstream dns-e2e CA');
  const toUpstream = { A: [upstream.address] };
  resolverDns = await startDnsServer({
    records: {
      'api.example.test': toUpstream,
      'other.example.test': toUpstream,
      'db.internal.test': { A: [PASSTHROUGH_ADDRESS] },
      'static.example.test': { A: ['10.200.200.200'] },
    },
    ttl: RESOLVER_TTL,
  });
  dir = await mkdtemp(join(tmpdir(), 'proxy-dns-e2e-'));
  const generated = await runCli(['ca', 'generate', '--out', dir, '--name', 'proxy dns-e2e CA']);
  if (generated.code !== 0) throw new Error(`proxy ca generate failed:\n${generated.stderr}`);
  proxyCa = join(dir, 'ca.crt');
  proxyCaPem = await readFile(proxyCa, 'utf8');
  proxy = await startProxyProcess(
    `
dns:
  listen: "127.0.0.1:0"
  proxy_ip: "${PROXY_IP}"
  upstream_resolver: "${resolverDns.resolver}"
  records:
    - { name: "static.example.test", type: A, value: "${STATIC_ADDRESS}" }
  passthrough: ["*.internal.test"]
proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
tls:
  ca_cert: "ca.crt"
  ca_key: "ca.key"
  upstream_ca_bundle: "${upstream.pki.caFile}"
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: REAL_TOKEN }
          replace:
            proxy_value: "proxy-tok-dns"
            match_headers: ["Authorization"]
          rules:
            - host: "api.example.test"
`,
    { dir, env: { REAL_TOKEN } },
  );
  dnsPort = proxy.port('dns');
  httpsPort = proxy.port('https');
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
  await resolverDns?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A resolver whose only server is the proxy's DNS port (what a workload's resolv.conf would say). */
function proxyResolver(): Resolver {
  const resolver = new Resolver({ timeout: 2_000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  return resolver;
}

/** Asks the proxy's DNS server for the A records of `name` over UDP or TCP, as a stub resolver would (EDNS on). */
function askProxyDns(name: string, transport: 'udp' | 'tcp' = 'udp'): Promise<DnsResponse> {
  return queryDns({ port: dnsPort, name, type: 'A', transport, ednsUdpSize: 1232 });
}

/** The addresses the proxy's DNS server gives for `name`. */
async function addressesOf(name: string, transport: 'udp' | 'tcp' = 'udp'): Promise<string[]> {
  const response = await askProxyDns(name, transport);
  expect(response.rcode).toBe('NOERROR');
  return response.answers.map((record) => (record.type === 'A' ? record.data : `${record.type} ${JSON.stringify(record.data)}`));
}

/** Queries the test resolver received for `name`. */
const resolverQueriesFor = (name: string): number => resolverDns.queries.filter((q) => q.name.toLowerCase() === name).length;

const interceptLines = (name: string): LogLine[] => proxy.lines().filter((l) => l.msg === 'dns_intercept' && l.name === name);

/**
 * Waits until the proxy has logged the interception of a fresh name. The log is one ordered
 * stream, so every line about earlier queries has been read by then.
 */
async function flushInterceptLog(fence: string): Promise<void> {
  expect(await proxyResolver().resolve4(fence)).toEqual([PROXY_IP]);
  await proxy.waitForLine((l) => l.msg === 'dns_intercept' && l.name === fence);
}

/** The echo upstream's view of the request the proxy sent. */
interface Echoed {
  path: string;
  headers: Record<string, string>;
}

/** Skips a case that needs the upstream on port 443 (what https_listen dials) when it could not be bound. */
function needPort443(ctx: TestContext): void {
  if (upstream.port443Unavailable !== undefined) ctx.skip(`https_listen dials port 443: ${upstream.port443Unavailable}`);
}

/** curl at https_listen, connecting to the address the proxy's DNS gave for `host`. */
async function curlViaProxyDns(host: string, path: string, headers: readonly string[] = []): Promise<{ exit: number; status: string; body: string }> {
  const [address] = await addressesOf(host);
  expect(address).toBe(PROXY_IP);
  const headerArgs = headers.flatMap((h) => ['-H', h]);
  const r = await curl(['--cacert', proxyCa, '--connect-to', `${host}:443:${address}:${httpsPort}`, ...headerArgs, '-w', '\n%{http_code}', `https://${host}${path}`]);
  const cut = r.stdout.lastIndexOf('\n');
  return { exit: r.code, status: r.stdout.slice(cut + 1), body: r.stdout.slice(0, Math.max(cut, 0)) };
}

describe('the proxy DNS server answers the workload', () => {
  it('resolves an intercepted name to proxy_ip (Node resolver, a DNS client over UDP and TCP) without asking upstream', async () => {
    const before = resolverQueriesFor('api.example.test');
    expect(await proxyResolver().resolve4('api.example.test')).toEqual([PROXY_IP]);
    expect(await addressesOf('api.example.test', 'udp')).toEqual([PROXY_IP]);
    expect(await addressesOf('api.example.test', 'tcp')).toEqual([PROXY_IP]);
    expect(resolverQueriesFor('api.example.test')).toBe(before);
  });

  it('audits an intercepted name once for repeated queries', async () => {
    const name = 'repeat.example.test';
    const resolver = proxyResolver();
    expect(await resolver.resolve4(name)).toEqual([PROXY_IP]);
    expect(await resolver.resolve4(name)).toEqual([PROXY_IP]);
    expect(await addressesOf(name, 'udp')).toEqual([PROXY_IP]);
    expect(await addressesOf(name, 'tcp')).toEqual([PROXY_IP]);
    await flushInterceptLog('fence-repeat.example.test');
    const lines = interceptLines(name);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ name, type: 'A', client: '127.0.0.1', answer: PROXY_IP, count: 1 });
  });

  it('answers a dns.records name from the static record, not from upstream and not intercepted', async () => {
    const answer = await askProxyDns('static.example.test');
    expect(answer.answers.map(({ type, data }) => [type, data])).toEqual([['A', STATIC_ADDRESS]]);
    expect(await proxyResolver().resolve4('static.example.test')).toEqual([STATIC_ADDRESS]);
    expect(resolverQueriesFor('static.example.test')).toBe(0);
    await flushInterceptLog('fence-static.example.test');
    expect(interceptLines('static.example.test')).toEqual([]);
  });

  it('answers a dns.passthrough name from the upstream resolver, its TTL relayed', async () => {
    const before = resolverQueriesFor('db.internal.test');
    const answer = await askProxyDns('db.internal.test');
    expect(answer.answers).toEqual([{ name: 'db.internal.test', ttl: RESOLVER_TTL, type: 'A', data: PASSTHROUGH_ADDRESS }]);
    expect(resolverQueriesFor('db.internal.test')).toBe(before + 1);
    await flushInterceptLog('fence-passthrough.example.test');
    expect(interceptLines('db.internal.test')).toEqual([]);
  });
});

describe('a workload resolving through the proxy reaches https_listen', () => {
  it('curl: the allowlisted name reaches the upstream with the secret swapped', async (ctx) => {
    needPort443(ctx);
    const requests = upstream.echo.requests.length;
    const r = await curlViaProxyDns('api.example.test', '/transparent/curl', ['Authorization: Bearer proxy-tok-dns']);
    expect(r).toMatchObject({ exit: 0, status: '200' });
    const seen = JSON.parse(r.body) as Echoed;
    expect(seen.path).toBe('/transparent/curl');
    expect(seen.headers.authorization).toBe(`Bearer ${REAL_TOKEN}`);
    expect(upstream.echo.requests.length).toBe(requests + 1);
    const record = await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/transparent/curl');
    expect(record).toMatchObject({ host: 'api.example.test', mode: 'mitm', sni: 'api.example.test', action: 'allow', status_code: 200 });
    expect(JSON.stringify(record)).not.toContain(REAL_TOKEN);
  });

  it('Node https.request: its lookup asks the proxy DNS, and the request is swapped upstream', async (ctx) => {
    needPort443(ctx);
    const resolver = proxyResolver();
    const looked: string[] = [];
    const lookup: LookupFunction = (hostname, options, callback) => {
      resolver.resolve4(hostname).then(
        (addresses) => {
          looked.push(...addresses);
          if (options.all === true) callback(null, addresses.map((address) => ({ address, family: 4 })));
          else callback(null, addresses[0] ?? '', 4);
        },
        (error: NodeJS.ErrnoException) => callback(error, '', 4),
      );
    };
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        { host: 'api.example.test', port: httpsPort, path: '/transparent/node', ca: proxyCaPem, lookup, agent: false, headers: { authorization: 'Bearer proxy-tok-dns' } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text })).once('error', reject);
        },
      );
      req.once('error', reject).end();
    });
    expect(looked).toEqual([PROXY_IP]);
    expect(status).toBe(200);
    expect((JSON.parse(body) as Echoed).headers.authorization).toBe(`Bearer ${REAL_TOKEN}`);
    expect(await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/transparent/node')).toMatchObject({
      host: 'api.example.test',
      sni: 'api.example.test',
      status_code: 200,
    });
  });

  it('a name that is not allowlisted resolves to the proxy too, and gets 403 without reaching the upstream', async () => {
    const requests = upstream.echo.requests.length;
    const connections = upstream.echo.connections;
    const r = await curlViaProxyDns('other.example.test', '/transparent/denied', ['Authorization: Bearer proxy-tok-dns']);
    expect(r).toMatchObject({ exit: 0, status: '403' });
    expect(upstream.echo.requests.length).toBe(requests);
    expect(upstream.echo.connections).toBe(connections);
    expect(await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/transparent/denied')).toMatchObject({
      host: 'other.example.test',
      sni: 'other.example.test',
      action: 'reject',
      rejected_by: 'allowlist',
      status_code: 403,
    });
  });
});
