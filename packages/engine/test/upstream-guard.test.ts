import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { DeniedDialError, UpstreamGuard } from '../src/index.js';
import { describeUpstreamFailure } from '../src/upstream-failure.js';
import { curl, DEFAULT_DENY_CIDRS, send, startEngine, type TestEngine } from './support.js';

let echo: EchoServer;
let dns: DnsTestServer;
let proxy: TestEngine;

beforeAll(async () => {
  echo = await startEchoServer();
  dns = await startDnsServer({
    records: {
      'loopback.example.test': { A: ['127.0.0.1'] },
      'mapped.example.test': { AAAA: ['::ffff:127.0.0.1'] },
      'mixed.example.test': { A: ['192.0.2.10', '127.0.0.1'] },
      'imds.example.test': { A: ['169.254.169.254'] },
      'public.example.test': { A: ['192.0.2.20'], AAAA: ['2001:db8::20'] },
      'dns64.example.test': { AAAA: ['64:ff9b::a9fe:a9fe'] },
    },
  });
  proxy = await startEngine({ upstreamDenyCidrs: DEFAULT_DENY_CIDRS, upstreamResolver: dns.resolver });
});

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
  await dns?.close();
});

describe('the upstream guard in the engine (default deny list)', () => {
  it.each([
    ['the IP literal 127.0.0.1', () => `http://127.0.0.1:${echo.port}/literal`],
    ['the IP literal [::ffff:127.0.0.1]', () => `http://[::ffff:127.0.0.1]:${echo.port}/mapped-literal`],
    ['the hex spelling [::ffff:7f00:1]', () => `http://[::ffff:7f00:1]:${echo.port}/mapped-hex`],
    ['a name resolving to 127.0.0.1', () => `http://loopback.example.test:${echo.port}/by-name`],
    ['a name resolving to ::ffff:127.0.0.1', () => `http://mapped.example.test:${echo.port}/mapped-name`],
    ['a name with one allowed and one denied address', () => `http://mixed.example.test:${echo.port}/mixed`],
  ])('refuses %s with 403 before any connection', async (_label, url) => {
    const target = url();
    const r = await curl(['-g', '-x', `http://127.0.0.1:${proxy.port()}`, '-w', '\n%{http_code}', target]);
    const lines = r.stdout.split('\n');
    expect(lines.pop()).toBe('403');
    expect(lines.join('\n')).not.toContain('127.0.0.1');
    expect(echo.connections).toBe(0);
    const path = new URL(target).pathname;
    const audit = await proxy.audit((a) => a.path === path);
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'upstream_denied', status_code: 403 });
  });

  // No NAT64 gateway, 6to4 relay or Teredo server is on the path here, and the sandbox may not
  // route these addresses at all: what matters is that the guard refuses them (403) before
  // dialling, where a dial would have ended in 502.
  it.each([
    ['a NAT64 address of IMDS', '[64:ff9b::a9fe:a9fe]', '169.254.169.254'],
    ['a NAT64 address of loopback', '[64:ff9b::127.0.0.1]', '127.0.0.1'],
    ['a 6to4 address of IMDS', '[2002:a9fe:a9fe::1]', '169.254.169.254'],
    ['an IPv4-compatible address of IMDS', '[::169.254.169.254]', '169.254.169.254'],
    ['an IPv4-compatible address of loopback', '[::7f00:1]', '127.0.0.1'],
    ['a Teredo address whose server is IMDS', '[2001:0:a9fe:a9fe::1]', '169.254.169.254'],
    ['a Teredo address whose client is IMDS', '[2001:0:4136:e378:8000:63bf:5601:5601]', '169.254.169.254'],
    ['a name resolving to a NAT64 address of IMDS', 'dns64.example.test', '169.254.169.254'],
  ])('refuses %s with 403 before dialling, naming the embedded address', async (_label, host, embedded) => {
    const path = `/embedded/${encodeURIComponent(host)}`;
    const r = await curl(['-g', '-x', `http://127.0.0.1:${proxy.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://${host}${path}`]);
    expect(r.stdout).toBe('403');
    const audit = await proxy.audit((a) => a.path === path);
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'upstream_denied', status_code: 403 });
    const logged = proxy.logger.lines.find((l) => (l.fields as { request_id?: string }).request_id === audit.request_id && 'detail' in l.fields);
    expect((logged?.fields as { detail?: string } | undefined)?.detail).toContain(`(embeds ${embedded}), inside denied`);
  });

  it('refuses a name resolving to the metadata address', async () => {
    const r = await send(proxy.port(), { target: 'http://imds.example.test/latest/meta-data/' });
    expect(r.status).toBe(403);
  });

  it('guards the HTTP client given to transforms too', async () => {
    const failure = await proxy.engine.http(`http://127.0.0.1:${echo.port}/from-transform`).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(Error);
    const cause = (failure as Error).cause;
    expect(cause).toBeInstanceOf(ProxyError);
    expect((cause as ProxyError).code).toBe(ErrorCodes.UPSTREAM_DENIED);
    expect(echo.connections).toBe(0);
  });
});

describe('forwarding loops', () => {
  let open: TestEngine;
  beforeAll(async () => {
    // No deny list: nothing but the loop check stands between the proxy and itself.
    open = await startEngine({ upstreamDenyCidrs: [], upstreamResolver: dns.resolver });
  });
  afterAll(async () => {
    await open?.close();
  });

  it.each([
    ['its own address', () => `http://127.0.0.1:${open.port()}/self`],
    ['a name resolving to its own address', () => `http://loopback.example.test:${open.port()}/self-by-name`],
  ])('refuses a request to %s with 508 and keeps serving', async (_label, url) => {
    const target = url();
    const r = await curl(['-x', `http://127.0.0.1:${open.port()}`, '-w', '\n%{http_code}', target]);
    expect(r.stdout.split('\n').pop()).toBe('508');
    const audit = await open.audit((a) => a.path === new URL(target).pathname);
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'forwarding_loop', status_code: 508 });
    // One refused request, not a storm of nested ones.
    expect(open.audits.filter((a) => a.reason === 'forwarding_loop' && a.path === new URL(target).pathname)).toHaveLength(1);
    const after = await curl(['-x', `http://127.0.0.1:${open.port()}`, '-w', '\n%{http_code}', `http://127.0.0.1:${echo.port}/after-loop`]);
    expect(after.stdout.split('\n').pop()).toBe('200');
  });
});

describe('addresses registered with addOwnAddress', () => {
  let other: EchoServer;
  let engine: TestEngine;
  beforeAll(async () => {
    // Another server of the same process (a metrics endpoint, say), outside the engine.
    other = await startEchoServer({ host: '127.0.0.1' });
    engine = await startEngine({ upstreamDenyCidrs: [] });
    engine.engine.addOwnAddress({ address: '127.0.0.1', port: other.port });
  });
  afterAll(async () => {
    await engine?.close();
    await other?.close();
  });

  it('are refused with 508 like the engine own listeners, without a connection', async () => {
    const r = await curl(['-x', `http://127.0.0.1:${engine.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${other.port}/own-service`]);
    expect(r.stdout).toBe('508');
    expect(await engine.audit((a) => a.path === '/own-service')).toMatchObject({ rejected_by: 'upstream_guard', reason: 'forwarding_loop', status_code: 508 });
    expect(other.connections).toBe(0);
    // Another server on the same address is still reachable.
    const ok = await curl(['-x', `http://127.0.0.1:${engine.port()}`, '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${echo.port}/not-own`]);
    expect(ok.stdout).toBe('200');
  });
});

describe('the HTTP client given to transforms', () => {
  it('reaches allowed upstreams', async () => {
    const open = await startEngine({ httpListen: '127.0.0.1:0', upstreamDenyCidrs: [] });
    try {
      const res = await open.engine.http(`http://127.0.0.1:${echo.port}/from-transform?ok=1`, { headers: { 'x-call': 'yes' } });
      expect(res.status).toBe(200);
      const seen = (await res.json()) as { path: string; headers: Record<string, string> };
      expect(seen.path).toBe('/from-transform');
      expect(seen.headers['x-call']).toBe('yes');
    } finally {
      await open.close();
    }
  });
});

describe('UpstreamGuard', () => {
  const guard = (deny: readonly string[] = DEFAULT_DENY_CIDRS): UpstreamGuard => new UpstreamGuard({ denyCidrs: deny, resolver: dns.resolver });

  it('returns IP literals as they are, brackets removed', async () => {
    expect(await guard().resolve('[2001:db8::1]')).toEqual(['2001:db8::1']);
    expect(await guard().resolve('192.0.2.1')).toEqual(['192.0.2.1']);
  });

  it('resolves A and AAAA records with the configured server', async () => {
    expect((await guard().resolve('public.example.test')).sort()).toEqual(['192.0.2.20', '2001:db8::20']);
    expect(dns.queries.some((q) => q.name === 'public.example.test' && q.type === 'AAAA')).toBe(true);
  });

  it('reports an unknown name as upstream_resolve_failed (502)', async () => {
    const err = await guard().resolve('nowhere.example.test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({ code: ErrorCodes.UPSTREAM_RESOLVE, status: 502, reason: 'upstream_resolve_failed' });
  });

  it('denies when any address is in the list, counting IPv4-mapped IPv6 as IPv4', () => {
    const g = guard(['10.0.0.0/8']);
    expect(() => g.check('x', ['192.0.2.1', '2001:db8::1'])).not.toThrow();
    for (const addresses of [['10.1.2.3'], ['192.0.2.1', '10.1.2.3'], ['::ffff:10.1.2.3']]) {
      let thrown: unknown;
      try {
        g.check('x', addresses);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, addresses.join()).toMatchObject({ code: ErrorCodes.UPSTREAM_DENIED, status: 403, reason: 'upstream_denied' });
    }
  });

  it("answers a denied address as a failed dial (502, no rejected_by) with deniedAs: 'error', iron-proxy's form", () => {
    const g = new UpstreamGuard({ denyCidrs: ['10.0.0.0/8'], resolver: dns.resolver, deniedAs: 'error' });
    let thrown: unknown;
    try {
      g.check('x', ['10.1.2.3']);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DeniedDialError);
    expect(thrown).toMatchObject({ code: ErrorCodes.UPSTREAM_DENIED, status: 502, reason: 'upstream_denied' });
    expect(describeUpstreamFailure(thrown)).toMatchObject({ status: 502, reason: 'upstream_denied', rejectedBy: undefined, errorType: undefined });
    // The default form stays a refusal by the guard.
    const refusal = (() => {
      try {
        guard(['10.0.0.0/8']).check('x', ['10.1.2.3']);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(describeUpstreamFailure(refusal)).toMatchObject({ status: 403, reason: 'upstream_denied', rejectedBy: 'upstream_guard' });
  });

  it('refuses an IPv6 address embedding a denied IPv4 address, naming both', () => {
    const g = guard(['169.254.0.0/16']);
    expect(() => g.check('x', ['64:ff9b::a9fe:a9fe'])).toThrow(
      expect.objectContaining({
        reason: 'upstream_denied',
        status: 403,
        message: 'upstream x resolves to 64:ff9b::a9fe:a9fe (embeds 169.254.169.254), inside denied 169.254.0.0/16',
      }),
    );
    // Only what the list denies: NAT64 of a public address, or of loopback here, passes.
    expect(() => g.check('x', ['64:ff9b::808:808', '64:ff9b::7f00:1', '2002:808:808::1'])).not.toThrow();
  });

  it('connects only after the check passed', async () => {
    const before = echo.connections;
    await expect(guard().connect({ host: 'loopback.example.test', port: echo.port, tls: false })).rejects.toMatchObject({ reason: 'upstream_denied' });
    expect(echo.connections).toBe(before);
    const socket = await guard([]).connect({ host: 'loopback.example.test', port: echo.port, tls: false });
    expect(socket.remoteAddress).toBe('127.0.0.1');
    socket.destroy();
    expect(echo.connections).toBe(before + 1);
  });

  it('refuses to dial its own listeners: the bound address, or any local address when bound to all interfaces', async () => {
    const own = (address: string) => new UpstreamGuard({ denyCidrs: [], ownListeners: () => [{ address, port: echo.port }] });
    for (const [bound, host] of [
      ['127.0.0.1', '127.0.0.1'],
      ['127.0.0.1', '::ffff:127.0.0.1'],
      ['0.0.0.0', '127.0.0.2'],
      ['::', '127.0.0.1'],
    ] as const) {
      await expect(own(bound).connect({ host, port: echo.port, tls: false })).rejects.toMatchObject({ status: 508, reason: 'forwarding_loop' });
    }
    const before = echo.connections;
    // Another address on the same port, or the same address on another port, is not a loop.
    const socket = await own('127.0.0.2').connect({ host: '127.0.0.1', port: echo.port, tls: false });
    socket.destroy();
    expect(echo.connections).toBe(before + 1);
    const otherPort = await new UpstreamGuard({ denyCidrs: [], ownListeners: () => [{ address: '127.0.0.1', port: 1 }] }).connect({
      host: '127.0.0.1',
      port: echo.port,
      tls: false,
    });
    otherPort.destroy();
    expect(echo.connections).toBe(before + 2);
  });

  it('rejects a bad deny list, resolver address or CA bundle at construction', () => {
    for (const options of [{ denyCidrs: ['not-a-cidr'] }, { denyCidrs: [], resolver: 'not an address' }, { denyCidrs: [], ca: 'not a certificate' }]) {
      expect(() => new UpstreamGuard(options)).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }));
    }
  });
});
