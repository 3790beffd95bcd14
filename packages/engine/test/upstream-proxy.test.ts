import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createSocksServer } from 'simple-socks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { parseUpstreamProxy, UpstreamGuard, UpstreamProxyRoutes } from '../src/index.js';
import { curl, startEngine } from './support.js';

/** A SOCKS5 server (simple-socks) that resolves `*.proxied.test` to loopback itself, as a proxy with its own DNS view would. */
interface TestSocks {
  readonly port: number;
  /** Every destination asked for, as the client named it. */
  readonly destinations: string[];
  close(): Promise<void>;
}

async function startSocks(credentials?: { user: string; pass: string }): Promise<TestSocks> {
  const destinations: string[] = [];
  const server = createSocksServer({
    ...(credentials === undefined
      ? {}
      : { authenticate: (user, pass, _socket, done) => (user === credentials.user && pass === credentials.pass ? done() : done(new Error('bad credentials'))) }),
    connectionFilter: (destination, _origin, done) => {
      destinations.push(`${destination.address}:${destination.port}`);
      done();
    },
    connectionOptions: (destination, _origin, defaults, done) =>
      done(null, { ...defaults, host: destination.address.endsWith('.proxied.test') ? '127.0.0.1' : destination.address }),
  });
  return listen(server, destinations);
}

/** An HTTP CONNECT proxy (node's own `connect` event) resolving `*.test` to loopback, that records each CONNECT authority and its Proxy-Authorization. */
async function startConnectProxy(): Promise<TestSocks & { readonly authorizations: (string | undefined)[] }> {
  const destinations: string[] = [];
  const authorizations: (string | undefined)[] = [];
  const server = createHttpServer();
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const authority = req.url ?? '';
    destinations.push(authority);
    authorizations.push(req.headers['proxy-authorization']);
    const [host = '', port = '0'] = authority.startsWith('[') ? [authority.slice(1, authority.indexOf(']')), authority.split(':').pop()] : authority.split(':');
    if (host.endsWith('.refused.test')) {
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    // The proxy's own DNS view: every `.test` name is loopback.
    const upstream = netConnect({ host: host.endsWith('.test') ? '127.0.0.1' : host, port: Number(port) }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  return { ...(await listen(server, destinations)), authorizations };
}

/** One request a {@link startSquidLikeProxy} double received in absolute-form. */
interface ProxiedRequest {
  readonly requestLine: string;
  readonly host: string | undefined;
  readonly authorization: string | undefined;
}

/**
 * An HTTP proxy configured like squid's default: CONNECT only to port 443 (403 otherwise),
 * plain HTTP only in absolute-form (400 for an origin-form target), forwarded with the
 * proxy's own DNS view (every `.test` name is loopback). Records every request line.
 */
async function startSquidLikeProxy(): Promise<TestSocks & { readonly requests: ProxiedRequest[]; readonly connects: string[]; connections(): number }> {
  const requests: ProxiedRequest[] = [];
  const connects: string[] = [];
  let connections = 0;
  const server = createHttpServer((req, res) => {
    requests.push({ requestLine: `${req.method} ${req.url} HTTP/${req.httpVersion}`, host: req.headers.host, authorization: req.headers['proxy-authorization'] });
    if (!/^http:\/\//.test(req.url ?? '')) {
      res.writeHead(400, { 'content-length': '0' }).end();
      return;
    }
    const url = new URL(req.url!);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = httpRequest(
      { host: url.hostname.endsWith('.test') ? '127.0.0.1' : url.hostname, port: Number(url.port || 80), method: req.method, path: `${url.pathname}${url.search}`, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502, { 'content-length': '0' }).end());
    req.pipe(upstream);
  });
  server.on('connect', (req, client: Socket) => {
    connects.push(req.url ?? '');
    client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
  });
  server.on('connection', () => connections++);
  return { ...(await listen(server, [])), requests, connects, connections: () => connections };
}

async function listen(server: Server, destinations: string[]): Promise<TestSocks> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    destinations,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends one HTTP/1.1 GET over `socket` and returns the response text. */
async function get(socket: Socket, host: string, path: string): Promise<string> {
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function refusal(promise: Promise<unknown>): Promise<ProxyError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ProxyError) return err;
    throw err;
  }
  throw new Error('expected a ProxyError');
}

let echo: EchoServer;
let dns: DnsTestServer;
beforeAll(async () => {
  echo = await startEchoServer();
  dns = await startDnsServer({ records: { 'local.example.test': { A: ['127.0.0.1'] }, 'direct.example.test': { A: ['127.0.0.1'] }, 'imds.example.test': { A: ['169.254.169.254'] } } });
});
afterAll(async () => {
  await echo.close();
  await dns.close();
});

describe('parseUpstreamProxy', () => {
  it.each([
    ['http://squid.corp:3128', { protocol: 'http', host: 'squid.corp', port: 3128, display: 'http://squid.corp:3128', resolvesLocally: false }],
    ['squid.corp:3128', { protocol: 'http', host: 'squid.corp', port: 3128 }],
    ['https://proxy.corp', { protocol: 'https', port: 443 }],
    ['http://proxy.corp', { protocol: 'http', port: 80 }],
    ['socks5://gw', { protocol: 'socks5', port: 1080, resolvesLocally: true }],
    ['SOCKS5H://[::1]:9050', { protocol: 'socks5h', host: '::1', port: 9050, display: 'socks5h://[::1]:9050' }],
    ['http://us%40er:p%3Ass@squid:3128/', { username: 'us@er', password: 'p:ss', display: 'http://squid:3128' }],
  ])('%s', (value, expected) => {
    expect(parseUpstreamProxy(value, 'http_proxy')).toMatchObject(expected);
  });

  it.each([
    ['ftp://proxy:21', 'unsupported proxy scheme "ftp"'],
    ['socks4://proxy:1080', 'unsupported proxy scheme "socks4"'],
    ['http://proxy:3128/path', 'a proxy URL is scheme://host:port only'],
    ['http://:3128', 'not a proxy URL'],
    ['http://user:hunter2@proxy:99999', 'not a proxy URL'],
  ])('refuses %s without echoing credentials', (value, message) => {
    const err = (() => {
      try {
        parseUpstreamProxy(value, 'https_proxy');
      } catch (e) {
        return e as ProxyError;
      }
      throw new Error('parsed');
    })();
    expect(err.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(err.message).toContain(`https_proxy: ${message}`);
    expect(err.message).not.toContain('hunter2');
  });
});

describe('UpstreamProxyRoutes (Go httpproxy rules)', () => {
  const routes = new UpstreamProxyRoutes({
    httpProxy: 'http://plain:3128',
    httpsProxy: 'http://secure:3128',
    noProxy: 'direct.example, .sub.example, *.star.example, 10.0.0.0/8, 192.0.2.7, ported.example:8443, [2001:db8::1]:443',
  });
  it.each([
    ['api.example', 443, 'https', 'secure'],
    ['api.example', 80, 'http', 'plain'],
    ['direct.example', 443, 'https', undefined],
    ['a.direct.example', 443, 'https', undefined],
    ['sub.example', 443, 'https', 'secure'],
    ['x.sub.example', 443, 'https', undefined],
    ['star.example', 443, 'https', 'secure'],
    ['x.star.example', 443, 'https', undefined],
    ['10.1.2.3', 443, 'https', undefined],
    ['11.1.2.3', 443, 'https', 'secure'],
    ['192.0.2.7', 80, 'http', undefined],
    ['ported.example', 8443, 'https', undefined],
    ['ported.example', 443, 'https', 'secure'],
    ['2001:db8::1', 443, 'https', undefined],
    ['2001:db8::1', 8443, 'https', 'secure'],
    ['localhost', 80, 'http', undefined],
    ['127.0.0.1', 443, 'https', undefined],
    ['::1', 443, 'https', undefined],
    ['DIRECT.EXAMPLE.', 443, 'https', undefined],
  ] as const)('%s:%d (%s) -> %s', (host, port, scheme, expected) => {
    expect(routes.route(host, port, scheme)?.host).toBe(expected);
  });

  it('"*" exempts everything; an unset scheme goes direct', () => {
    expect(new UpstreamProxyRoutes({ httpsProxy: 'http://p:1', noProxy: '*' }).route('api.example', 443, 'https')).toBeUndefined();
    const httpsOnly = new UpstreamProxyRoutes({ httpsProxy: 'http://p:1' });
    expect(httpsOnly.route('api.example', 80, 'http')).toBeUndefined();
    expect(httpsOnly.active).toBe(true);
    expect(new UpstreamProxyRoutes({}).active).toBe(false);
  });
});

describe('the guard dialling through a SOCKS5 proxy', () => {
  it('socks5h: the proxy gets the name and resolves it; the request reaches the upstream', async () => {
    const socks = await startSocks();
    try {
      const guard = new UpstreamGuard({ denyCidrs: [], upstreamProxy: { httpProxy: `socks5h://127.0.0.1:${socks.port}` } });
      const socket = await guard.connect({ host: 'echo.proxied.test', port: echo.port, tls: false });
      expect(await get(socket as Socket, 'echo.proxied.test', '/via-socks5h')).toMatch(/^HTTP\/1\.1 200/);
      expect(socks.destinations).toEqual([`echo.proxied.test:${echo.port}`]);
    } finally {
      await socks.close();
    }
  });

  it('socks5: the name is resolved and checked here, and the proxy gets the checked address', async () => {
    const socks = await startSocks({ user: 'agent', pass: 's0cks-pass' });
    try {
      const guard = new UpstreamGuard({
        denyCidrs: ['169.254.0.0/16'],
        resolver: dns.resolver,
        upstreamProxy: { httpsProxy: `socks5://agent:s0cks-pass@127.0.0.1:${socks.port}` },
      });
      const socket = await guard.connect({ host: 'local.example.test', port: echo.port, tls: false, scheme: 'https' });
      expect(await get(socket as Socket, 'local.example.test', '/via-socks5')).toMatch(/^HTTP\/1\.1 200/);
      expect(socks.destinations).toEqual([`127.0.0.1:${echo.port}`]);
      const denied = await refusal(guard.connect({ host: 'imds.example.test', port: 80, tls: false, scheme: 'https' }));
      expect(denied).toMatchObject({ status: 403, reason: 'upstream_denied' });
      expect(socks.destinations).toHaveLength(1);
    } finally {
      await socks.close();
    }
  });

  it('wrong SOCKS credentials fail as upstream_unreachable naming the proxy without them', async () => {
    const socks = await startSocks({ user: 'agent', pass: 'right-pass' });
    try {
      const guard = new UpstreamGuard({ denyCidrs: [], upstreamProxy: { httpProxy: `socks5h://agent:wrong-pass@127.0.0.1:${socks.port}` } });
      const err = await refusal(guard.connect({ host: 'echo.proxied.test', port: echo.port, tls: false }));
      expect(err).toMatchObject({ status: 502, reason: 'upstream_unreachable' });
      expect(err.message).toContain(`through proxy socks5h://127.0.0.1:${socks.port}`);
      expect(err.message).not.toContain('wrong-pass');
    } finally {
      await socks.close();
    }
  });
});

describe('the guard dialling through an HTTP CONNECT proxy', () => {
  it('tunnels with CONNECT name:port and Basic proxy credentials; the deny list still applies to IP literals and local answers', async () => {
    const proxy = await startConnectProxy();
    try {
      const guard = new UpstreamGuard({
        denyCidrs: ['169.254.0.0/16'],
        resolver: dns.resolver,
        upstreamProxy: { httpProxy: `http://ci:pr0xy@127.0.0.1:${proxy.port}` },
      });
      const socket = await guard.connect({ host: 'local.example.test', port: echo.port, tls: false });
      expect(await get(socket as Socket, 'local.example.test', '/via-connect')).toMatch(/^HTTP\/1\.1 200/);
      expect(proxy.destinations).toEqual([`local.example.test:${echo.port}`]);
      expect(proxy.authorizations).toEqual([`Basic ${Buffer.from('ci:pr0xy').toString('base64')}`]);
      expect(await refusal(guard.connect({ host: '169.254.169.254', port: 80, tls: false }))).toMatchObject({ reason: 'upstream_denied' });
      expect(await refusal(guard.connect({ host: 'imds.example.test', port: 80, tls: false }))).toMatchObject({ reason: 'upstream_denied' });
      expect(await refusal(guard.connect({ host: 'nowhere.example.test', port: 80, tls: false }))).toMatchObject({ reason: 'upstream_resolve_failed' });
      expect(proxy.destinations).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it('a refused CONNECT is upstream_unreachable (502) with the proxy status', async () => {
    const proxy = await startConnectProxy();
    try {
      const guard = new UpstreamGuard({ denyCidrs: [], upstreamProxy: { httpProxy: `http://127.0.0.1:${proxy.port}` } });
      const err = await refusal(guard.connect({ host: 'x.refused.test', port: 80, tls: false }));
      expect(err).toMatchObject({ status: 502, reason: 'upstream_unreachable' });
      expect(err.message).toContain('the proxy answered CONNECT with 403');
    } finally {
      await proxy.close();
    }
  });

  it('an unreachable proxy is upstream_unreachable (502)', async () => {
    const guard = new UpstreamGuard({ denyCidrs: [], upstreamProxy: { httpProxy: 'http://127.0.0.1:9' } });
    expect(await refusal(guard.connect({ host: 'x.example', port: 80, tls: false }))).toMatchObject({ status: 502, reason: 'upstream_unreachable' });
  });
});

describe('the engine forwarding through an upstream proxy', () => {
  it('proxies requests by scheme, honours no_proxy, and keeps loopback direct', async () => {
    const socks = await startSocks();
    const engine = await startEngine({ upstreamProxy: { httpProxy: `socks5h://127.0.0.1:${socks.port}`, noProxy: 'direct.proxied.test' } });
    try {
      const via = await curl(['-x', `http://127.0.0.1:${engine.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://echo.proxied.test:${echo.port}/engine-via`]);
      expect(via.stdout).toBe('200');
      expect(socks.destinations).toEqual([`echo.proxied.test:${echo.port}`]);
      // no_proxy: dialled directly, where the name does not resolve.
      const direct = await curl(['-x', `http://127.0.0.1:${engine.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://direct.proxied.test:${echo.port}/engine-direct`]);
      expect(direct.stdout).toBe('502');
      const loopback = await curl(['-x', `http://127.0.0.1:${engine.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/engine-loopback`]);
      expect(loopback.stdout).toBe('200');
      expect(socks.destinations).toHaveLength(1);
    } finally {
      await engine.close();
      await socks.close();
    }
  });
});

describe('plain HTTP through an http:// upstream proxy that allows CONNECT only to 443 (squid\'s default)', () => {
  it('sends absolute-form requests with Basic proxy credentials, never CONNECT; the deny list and no_proxy still apply', async () => {
    const proxy = await startSquidLikeProxy();
    const engine = await startEngine({
      upstreamDenyCidrs: ['169.254.0.0/16'],
      upstreamResolver: dns.resolver,
      upstreamProxy: { httpProxy: `http://ci:pr0xy@127.0.0.1:${proxy.port}`, noProxy: 'direct.example.test' },
    });
    const fetchVia = async (url: string): Promise<string> =>
      (await curl(['-x', `http://127.0.0.1:${engine.port()}`, '-o', '/dev/null', '-w', '%{http_code}', url])).stdout;
    try {
      expect(await fetchVia(`http://local.example.test:${echo.port}/abs-form?q=1`)).toBe('200');
      expect(await fetchVia(`http://local.example.test:${echo.port}/again`)).toBe('200');
      expect(proxy.connects).toEqual([]);
      expect(proxy.requests).toEqual([
        { requestLine: `GET http://local.example.test:${echo.port}/abs-form?q=1 HTTP/1.1`, host: `local.example.test:${echo.port}`, authorization: `Basic ${Buffer.from('ci:pr0xy').toString('base64')}` },
        { requestLine: `GET http://local.example.test:${echo.port}/again HTTP/1.1`, host: `local.example.test:${echo.port}`, authorization: `Basic ${Buffer.from('ci:pr0xy').toString('base64')}` },
      ]);
      const connections = proxy.connections();

      // Denied destinations are refused here, before anything is sent to the proxy (not even a connection): a name resolving into the deny list, an IP literal in it.
      expect(await fetchVia('http://imds.example.test/latest/meta-data/')).toBe('403');
      expect(await fetchVia('http://169.254.169.254/latest/meta-data/')).toBe('403');
      expect((await engine.audit((r) => r.host === '169.254.169.254')).reason).toBe('upstream_denied');
      // A name that does not resolve here fails as a direct dial would.
      expect(await fetchVia('http://nowhere.example.test/')).toBe('502');
      // no_proxy: dialled directly; the proxy sees nothing.
      expect(await fetchVia(`http://direct.example.test:${echo.port}/direct`)).toBe('200');
      expect(proxy.requests).toHaveLength(2);
      expect(proxy.connects).toEqual([]);
      expect(proxy.connections()).toBe(connections);

      // The transforms' HTTP client goes the same way.
      const answer = await engine.engine.http(`http://local.example.test:${echo.port}/from-transform`);
      expect(answer.status).toBe(200);
      await answer.arrayBuffer();
      expect(proxy.requests.at(-1)?.requestLine).toBe(`GET http://local.example.test:${echo.port}/from-transform HTTP/1.1`);
      expect(proxy.connects).toEqual([]);
    } finally {
      await engine.close();
      await proxy.close();
    }
  });

  it('without credentials sends no Proxy-Authorization (a client\'s own is never forwarded); an unreachable proxy is 502', async () => {
    const proxy = await startSquidLikeProxy();
    const engine = await startEngine({ upstreamProxy: { httpProxy: `http://127.0.0.1:${proxy.port}` } });
    const unreachable = await startEngine({ upstreamProxy: { httpProxy: 'http://127.0.0.1:9' } });
    try {
      const ok = await curl(['-x', `http://127.0.0.1:${engine.port()}`, '-U', 'client:secret', '-o', '/dev/null', '-w', '%{http_code}', `http://echo.proxied.test:${echo.port}/anon`]);
      expect(ok.stdout).toBe('200');
      expect(proxy.requests).toEqual([{ requestLine: `GET http://echo.proxied.test:${echo.port}/anon HTTP/1.1`, host: `echo.proxied.test:${echo.port}`, authorization: undefined }]);
      const down = await curl(['-x', `http://127.0.0.1:${unreachable.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://echo.proxied.test:${echo.port}/down`]);
      expect(down.stdout).toBe('502');
      expect((await unreachable.audit((r) => r.path === '/down')).reason).toBe('upstream_unreachable');
    } finally {
      await engine.close();
      await unreachable.close();
      await proxy.close();
    }
  });
});
