import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reject, respond } from '@proxy/core';
import type { ProxyRequest } from '@proxy/core';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, echoed, startEngine, type TestEngine } from './support.js';
import {
  closed,
  createTlsWorld,
  dial,
  issuerOf,
  openConnectTunnel,
  readUntil,
  requestOver,
  socksDomainRequest,
  socksHandshake,
  socksIpv4Request,
  socksIpv6Request,
  startTls,
  type TlsWorld,
} from './tls-support.js';

let world: TlsWorld;
let secure: EchoServer;
let plain: EchoServer;
let dns: DnsTestServer;
let proxy: TestEngine;
/** Every request the pipeline saw, in order. */
let seen: ProxyRequest[];

beforeAll(async () => {
  world = await createTlsWorld();
  [secure, plain, dns] = await Promise.all([
    startEchoServer({ tls: world.upstreamCert }),
    startEchoServer(),
    startDnsServer({ records: { 'upstream.test': { A: ['127.0.0.1'] }, 'other.test': { A: ['127.0.0.1'] } } }),
  ]);
  proxy = await startEngine({
    httpListen: undefined,
    tunnelListen: '127.0.0.1:0',
    certificates: world.leaves,
    upstreamCa: world.upstreamCa.cert,
    upstreamResolver: dns.resolver,
    upstreamDenyCidrs: [],
  });
  await recordingPipeline();
});

afterEach(async () => {
  await recordingPipeline();
});

afterAll(async () => {
  await proxy?.close();
  await Promise.all([secure?.close(), plain?.close(), dns?.close()]);
  await world?.close();
});

/** Installs a pipeline that records every request, then runs `decide` on it. */
function recordingPipeline(decide: (request: ProxyRequest) => ReturnType<typeof reject> | undefined = () => undefined): Promise<unknown> {
  seen = [];
  return proxy.use({
    name: 'policy',
    // The same policy decides tunnel openings (onTunnel) and the requests inside them (onRequest).
    transform: {
      onRequest: (request) => {
        seen.push(request);
        return decide(request);
      },
      onTunnel: (request) => {
        seen.push(request);
        return decide(request);
      },
    },
  });
}

const tunnelProxy = (): string => `http://127.0.0.1:${proxy.port('tunnel')}`;

describe('HTTP CONNECT', () => {
  it('intercepts TLS in the tunnel: the leaf is minted for the target, transforms rewrite headers, the upstream sees them', async () => {
    await proxy.use({
      name: 'stamp',
      transform: {
        onRequest: (request) => {
          if (request.mode === 'mitm') request.headers.set('X-Stamped', `${request.scheme}://${request.host}:${request.port}`);
        },
      },
    });
    const url = `https://upstream.test:${secure.port}/hello?x=1`;
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), '-H', 'X-Client: yes', url]);
    expect(result.stderr).toBe('');
    const body = echoed(result.stdout);
    expect(body).toMatchObject({ method: 'GET', path: '/hello', query: 'x=1' });
    expect(body.headers['x-stamped']).toBe(`https://upstream.test:${secure.port}`);
    expect(body.headers['x-client']).toBe('yes');
    expect(body.headers.host).toBe(`upstream.test:${secure.port}`);
    expect(world.leaves.requested).toContain('upstream.test');

    const audit = await proxy.audit((a) => a.path === '/hello');
    expect(audit).toMatchObject({
      mode: 'mitm',
      host: 'upstream.test',
      sni: 'upstream.test',
      action: 'allow',
      status_code: 200,
      tunnel: { protocol: 'connect', target: `upstream.test:${secure.port}`, decision: 'allow' },
    });
  });

  it('decides the tunnel on a host-only request for its target, then each request inside it', async () => {
    await recordingPipeline();
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), `https://upstream.test:${secure.port}/inside`]);
    expect(echoed(result.stdout).path).toBe('/inside');
    expect(seen.map((r) => [r.mode, r.method, r.path, r.host, r.port])).toEqual([
      ['tunnel', '', '', 'upstream.test', secure.port],
      ['mitm', 'GET', '/inside', 'upstream.test', secure.port],
    ]);
    expect(seen[0]!.tunnel).toEqual({ protocol: 'connect', target: `upstream.test:${secure.port}` });
  });

  it('refuses a tunnel the policy rejects with 403 and an audit record, dialling nothing', async () => {
    await recordingPipeline((r) => (r.mode === 'tunnel' && r.host === 'other.test' ? reject(403, 'not_allowlisted') : undefined));
    const before = secure.connections;
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), `https://other.test:${secure.port}/`]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/403/);
    expect(secure.connections).toBe(before);
    const audit = await proxy.audit((a) => a.mode === 'tunnel' && a.host === 'other.test');
    expect(audit).toMatchObject({
      action: 'reject',
      status_code: 403,
      rejected_by: 'policy',
      reason: 'not_allowlisted',
      method: '',
      path: '',
      tunnel: { protocol: 'connect', target: `other.test:${secure.port}` },
    });
    expect(audit.tunnel).not.toHaveProperty('decision');
  });

  it('answers a request inside the tunnel that a transform rejects with its status', async () => {
    await recordingPipeline((r) => (r.path === '/forbidden' ? reject(403, 'path_denied') : undefined));
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), '-w', '%{http_code}', '-o', '/dev/null', `https://upstream.test:${secure.port}/forbidden`]);
    expect(result.stdout).toBe('403');
    const audit = await proxy.audit((a) => a.path === '/forbidden');
    expect(audit).toMatchObject({ mode: 'mitm', action: 'reject', reason: 'path_denied', tunnel: { decision: 'allow' } });
  });

  it('answers 400 to a CONNECT target that is not host:port', async () => {
    for (const target of ['upstream.test', 'upstream.test:0', 'user@upstream.test:443', '/path']) {
      const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), target);
      expect(head, target).toMatch(/^HTTP\/1\.1 400 /);
      socket.destroy();
    }
    const audit = await proxy.audit((a) => a.mode === 'tunnel' && a.reason === 'invalid_target');
    expect(audit).toMatchObject({ action: 'reject', status_code: 400, rejected_by: 'engine' });
  });

  it('answers 421 when a request inside the tunnel names another host', async () => {
    const result = await curl([
      '--cacert', world.proxyCaFile, '-x', tunnelProxy(), '-H', 'Host: other.test', '-w', '\n%{http_code}', `https://upstream.test:${secure.port}/misdirected`,
    ]);
    expect(result.stdout.trim().split('\n').pop()).toBe('421');
    const audit = await proxy.audit((a) => a.reason === 'host_mismatch' && a.mode === 'mitm');
    expect(audit).toMatchObject({ status_code: 421, host: 'upstream.test', tunnel: { target: `upstream.test:${secure.port}` } });
  });

  it('refuses TLS whose SNI differs from the CONNECT target, with an audit record', async () => {
    const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), `upstream.test:${secure.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    await expect(startTls(socket, { servername: 'other.test', ca: world.proxyCa.cert })).rejects.toThrow(/unrecognized name/i);
    const audit = await proxy.audit((a) => a.reason === 'sni_mismatch' && a.tunnel?.protocol === 'connect');
    expect(audit).toMatchObject({ mode: 'mitm', host: 'upstream.test', sni: 'other.test', status_code: 421, action: 'reject' });
  });

  it('mints a leaf with an IP SAN for an IP-literal target, whose client sends no SNI', async () => {
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), `https://127.0.0.1:${secure.port}/by-ip`]);
    expect(result.stderr).toBe('');
    expect(echoed(result.stdout).path).toBe('/by-ip');
    expect(world.leaves.requested).toContain('127.0.0.1');
    const audit = await proxy.audit((a) => a.path === '/by-ip');
    expect(audit).toMatchObject({ mode: 'mitm', host: '127.0.0.1', tunnel: { target: `127.0.0.1:${secure.port}` } });
    expect(audit).not.toHaveProperty('sni');
  });

  it('serves plain HTTP inside the tunnel, bound to the target', async () => {
    const url = `http://upstream.test:${plain.port}/plain?q=1`;
    const ok = await curl(['-p', '-x', tunnelProxy(), url]);
    expect(echoed(ok.stdout)).toMatchObject({ path: '/plain', query: 'q=1' });
    const audit = await proxy.audit((a) => a.path === '/plain');
    expect(audit).toMatchObject({ mode: 'http', host: 'upstream.test', tunnel: { protocol: 'connect', target: `upstream.test:${plain.port}`, decision: 'allow' } });

    const misdirected = await curl(['-p', '-x', tunnelProxy(), '-H', 'Host: other.test', '-w', '%{http_code}', '-o', '/dev/null', url]);
    expect(misdirected.stdout).toBe('421');
  });

  it('carries every request of a kept-alive tunnel over one upstream connection', async () => {
    const before = secure.connections;
    const base = `https://upstream.test:${secure.port}`;
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), `${base}/one`, `${base}/two`, `${base}/three`]);
    expect(result.stderr).toBe('');
    expect(secure.connections - before).toBe(1);
    expect(secure.requests.slice(-3).map((r) => r.path)).toEqual(['/one', '/two', '/three']);
  });

  it('refuses a CONNECT inside a tunnel with 405', async () => {
    const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), `upstream.test:${plain.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    socket.write(`CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n`);
    const answer = await readUntil(socket, (b) => b.includes('\r\n\r\n'));
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 405 /);
    socket.destroy();
    const audit = await proxy.audit((a) => a.reason === 'connect_not_supported');
    expect(audit).toMatchObject({ mode: 'http', tunnel: { target: `upstream.test:${plain.port}` } });
  });

  it('closes a tunnel whose first bytes are neither TLS nor HTTP, with a log line', async () => {
    const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), `upstream.test:${secure.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200 Connection established/);
    socket.write(Buffer.from([0x00, 0x01, 0x02, 0x03]));
    await closed(socket);
    expect(proxy.logger.lines.some((l) => l.msg === 'tunnel closed: neither TLS nor HTTP')).toBe(true);
  });

  it('serves plain forward-proxy requests on the same port', async () => {
    const result = await curl(['-x', tunnelProxy(), `http://upstream.test:${plain.port}/forward`]);
    expect(echoed(result.stdout).path).toBe('/forward');
    const audit = await proxy.audit((a) => a.path === '/forward');
    expect(audit.mode).toBe('http');
    expect(audit).not.toHaveProperty('tunnel');
  });
});

describe('SOCKS5', () => {
  it('tunnels curl --socks5-hostname with TLS interception', async () => {
    const result = await curl(['--cacert', world.proxyCaFile, '--socks5-hostname', `127.0.0.1:${proxy.port('tunnel')}`, `https://upstream.test:${secure.port}/socks`]);
    expect(result.stderr).toBe('');
    expect(echoed(result.stdout).path).toBe('/socks');
    const audit = await proxy.audit((a) => a.path === '/socks');
    expect(audit).toMatchObject({ mode: 'mitm', sni: 'upstream.test', tunnel: { protocol: 'socks5', target: `upstream.test:${secure.port}`, decision: 'allow' } });
  });

  it('tunnels an IPv4 target (curl --socks5); in mitm mode it replies with the unspecified address, having dialled nothing yet', async () => {
    const { socket, reply } = await socksHandshake(proxy.port('tunnel'), socksIpv4Request('127.0.0.1', plain.port));
    expect([...reply!.subarray(0, 10)]).toEqual([5, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    const response = await requestOver(socket, { path: '/socks-ipv4', host: `127.0.0.1:${plain.port}` });
    expect(echoed(response.body).path).toBe('/socks-ipv4');

    const viaCurl = await curl(['--cacert', world.proxyCaFile, '--socks5', `127.0.0.1:${proxy.port('tunnel')}`, `https://127.0.0.1:${secure.port}/curl-socks5`]);
    expect(echoed(viaCurl.stdout).path).toBe('/curl-socks5');
  });

  it('tunnels an IPv6 target', async () => {
    const mapped = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    const { socket, reply } = await socksHandshake(proxy.port('tunnel'), socksIpv6Request(mapped, plain.port));
    expect(reply![1]).toBe(0x00);
    const response = await requestOver(socket, { path: '/socks-ipv6', host: `[::ffff:127.0.0.1]:${plain.port}` });
    expect(echoed(response.body).path).toBe('/socks-ipv6');
    const audit = await proxy.audit((a) => a.path === '/socks-ipv6');
    expect(audit).toMatchObject({ host: '::ffff:7f00:1', tunnel: { protocol: 'socks5', target: `[::ffff:7f00:1]:${plain.port}` } });
  });

  it('answers 0xFF when no-auth is not offered', async () => {
    const { socket, method } = await socksHandshake(proxy.port('tunnel'), Buffer.alloc(0), [0x02]);
    expect(method).toBe(0xff);
    await closed(socket);
  });

  it('answers 0x07 to a command other than CONNECT', async () => {
    const bind = socksDomainRequest('upstream.test', secure.port);
    bind[1] = 0x02;
    const { socket, reply } = await socksHandshake(proxy.port('tunnel'), bind);
    expect(reply![1]).toBe(0x07);
    await closed(socket);
  });

  it('answers 0x08 to an unknown address type', async () => {
    const { socket, reply } = await socksHandshake(proxy.port('tunnel'), Buffer.from([5, 1, 0, 0x09, 1, 2, 3, 4, 0, 80]));
    expect(reply![1]).toBe(0x08);
    await closed(socket);
  });

  it('answers 0x02 to a target the policy rejects, with an audit record', async () => {
    await recordingPipeline((r) => (r.host === 'other.test' ? reject(403, 'not_allowlisted') : undefined));
    const { socket, reply } = await socksHandshake(proxy.port('tunnel'), socksDomainRequest('other.test', secure.port));
    expect(reply![1]).toBe(0x02);
    await closed(socket);
    const audit = await proxy.audit((a) => a.mode === 'tunnel' && a.tunnel?.protocol === 'socks5' && a.host === 'other.test');
    expect(audit).toMatchObject({ action: 'reject', status_code: 403, reason: 'not_allowlisted' });
  });

  it('refuses TLS whose SNI differs from the SOCKS5 target', async () => {
    const { socket, reply } = await socksHandshake(proxy.port('tunnel'), socksDomainRequest('upstream.test', secure.port));
    expect(reply![1]).toBe(0x00);
    await expect(startTls(socket, { servername: 'other.test', ca: world.proxyCa.cert })).rejects.toThrow();
    const audit = await proxy.audit((a) => a.reason === 'sni_mismatch' && a.tunnel?.protocol === 'socks5');
    expect(audit).toMatchObject({ mode: 'mitm', host: 'upstream.test', sni: 'other.test', status_code: 421 });
  });

  it('answers with the proxy CA’s leaf, not the upstream certificate', async () => {
    const { socket } = await socksHandshake(proxy.port('tunnel'), socksDomainRequest('upstream.test', secure.port));
    const tls = await startTls(socket, { servername: 'upstream.test', ca: world.proxyCa.cert });
    expect(issuerOf(tls)).toBe('proxy test CA');
    const response = await requestOver(tls, { path: '/issuer', host: `upstream.test:${secure.port}` });
    expect(response.status).toBe(200);
  });
});

/** A tunnel listener whose TLS is spliced unread (`sni-only`): it dials each target when the tunnel opens. */
function startSplicingEngine(denyCidrs: string[]): Promise<TestEngine> {
  return startEngine({ httpListen: undefined, tunnelListen: '127.0.0.1:0', tlsMode: 'sni-only', upstreamResolver: dns.resolver, upstreamDenyCidrs: denyCidrs });
}

describe('spliced tunnels: the target is dialled when the tunnel opens', () => {
  it('replies to SOCKS5 with the address it dialled from', async () => {
    const splicing = await startSplicingEngine([]);
    try {
      const { socket, reply } = await socksHandshake(splicing.port('tunnel'), socksIpv4Request('127.0.0.1', plain.port));
      expect([...reply!.subarray(0, 4)]).toEqual([5, 0x00, 0, 1]);
      expect(reply!.subarray(4, 8).join('.')).toBe('127.0.0.1');
      expect(reply!.readUInt16BE(8)).toBeGreaterThan(0);
      socket.destroy();
    } finally {
      await splicing.close();
    }
  });

  it('answers 0x05 when the target refuses the connection and 0x04 when its name does not resolve; CONNECT gets 502', async () => {
    const splicing = await startSplicingEngine([]);
    try {
      const refused = await socksHandshake(splicing.port('tunnel'), socksIpv4Request('127.0.0.1', 1));
      expect(refused.reply![1]).toBe(0x05);
      const unresolved = await socksHandshake(splicing.port('tunnel'), socksDomainRequest('missing.test', 443));
      expect(unresolved.reply![1]).toBe(0x04);
      const audit = await splicing.audit((a) => a.host === 'missing.test');
      expect(audit).toMatchObject({ mode: 'tunnel', action: 'error', reason: 'upstream_resolve_failed', status_code: 502 });
      const { socket, head } = await openConnectTunnel(splicing.port('tunnel'), '127.0.0.1:1');
      expect(head).toMatch(/^HTTP\/1\.1 502 /);
      socket.destroy();
    } finally {
      await splicing.close();
    }
  });

  it('refuses a target in the deny list: CONNECT 403, SOCKS5 0x02, both audited', async () => {
    const guarded = await startSplicingEngine(['127.0.0.0/8']);
    try {
      const before = secure.connections;
      const { socket, head } = await openConnectTunnel(guarded.port('tunnel'), `upstream.test:${secure.port}`);
      expect(head).toMatch(/^HTTP\/1\.1 403 /);
      socket.destroy();
      const socks = await socksHandshake(guarded.port('tunnel'), socksIpv4Request('127.0.0.1', secure.port));
      expect(socks.reply![1]).toBe(0x02);
      expect(secure.connections).toBe(before);
      const audits = guarded.audits.filter((a) => a.mode === 'tunnel');
      expect(audits.map((a) => [a.tunnel?.protocol, a.rejected_by, a.reason, a.status_code])).toEqual([
        ['connect', 'upstream_guard', 'upstream_denied', 403],
        ['socks5', 'upstream_guard', 'upstream_denied', 403],
      ]);
    } finally {
      await guarded.close();
    }
  });
});

describe('mitm tunnels: nothing is dialled until a request is forwarded', () => {
  it('a request a transform answers inside a tunnel to an unreachable target gets the answer; nothing is dialled', async () => {
    await proxy.use({ name: 'stub', transform: { onRequest: (r) => (r.path === '/token' ? respond(200, '{"access_token":"placeholder"}', { 'content-type': 'application/json' }) : undefined) } });
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), '-w', '\n%{http_code}', 'https://unresolvable.test:443/token']);
    const lines = result.stdout.trim().split('\n');
    expect(lines.pop()).toBe('200');
    expect(lines.join('\n')).toBe('{"access_token":"placeholder"}');
    const audit = await proxy.audit((a) => a.path === '/token' && a.host === 'unresolvable.test');
    expect(audit).toMatchObject({ mode: 'mitm', action: 'stub', status_code: 200 });
    expect(audit.upstream_addr).toBeUndefined();
    // The name was never even looked up.
    expect(dns.queries.some((q) => q.name === 'unresolvable.test')).toBe(false);
  });

  it('a forwarded request to an unreachable target fails with 502 and an audit record; the tunnel opened', async () => {
    const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), '127.0.0.1:1');
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const response = await requestOver(socket, { path: '/refused', host: '127.0.0.1:1' });
    expect(response.status).toBe(502);
    const audit = await proxy.audit((a) => a.path === '/refused');
    expect(audit).toMatchObject({ mode: 'http', action: 'error', status_code: 502, tunnel: { target: '127.0.0.1:1' } });
  });

  it('refuses a forwarded request to a target in the deny list with 403, contacting nothing', async () => {
    const guarded = await startEngine({
      httpListen: undefined,
      tunnelListen: '127.0.0.1:0',
      certificates: world.leaves,
      upstreamResolver: dns.resolver,
      upstreamDenyCidrs: ['127.0.0.0/8'],
    });
    try {
      const before = secure.connections;
      const result = await curl(['--cacert', world.proxyCaFile, '-x', `http://127.0.0.1:${guarded.port('tunnel')}`, '-w', '\n%{http_code}', `https://upstream.test:${secure.port}/denied`]);
      expect(result.stdout.trim().split('\n').pop()).toBe('403');
      const { socket, reply } = await socksHandshake(guarded.port('tunnel'), socksIpv4Request('127.0.0.1', plain.port));
      expect(reply![1]).toBe(0x00);
      const response = await requestOver(socket, { path: '/denied-socks', host: `127.0.0.1:${plain.port}` });
      expect(response.status).toBe(403);
      expect(secure.connections).toBe(before);
      const audits = guarded.audits.filter((a) => a.path === '/denied' || a.path === '/denied-socks');
      expect(audits.map((a) => [a.tunnel?.protocol, a.rejected_by, a.reason, a.status_code])).toEqual([
        ['connect', 'upstream_guard', 'upstream_denied', 403],
        ['socks5', 'upstream_guard', 'upstream_denied', 403],
      ]);
    } finally {
      await guarded.close();
    }
  });
});

describe('tunnels and the upstream guard', () => {
  it('fails with 502 upstream_tls when the upstream certificate does not verify', async () => {
    const untrusting = await startEngine({
      httpListen: undefined,
      tunnelListen: '127.0.0.1:0',
      certificates: world.leaves,
      upstreamResolver: dns.resolver,
      upstreamDenyCidrs: [],
    });
    try {
      const result = await curl(['--cacert', world.proxyCaFile, '-x', `http://127.0.0.1:${untrusting.port('tunnel')}`, '-w', '\n%{http_code}', `https://upstream.test:${secure.port}/unverified`]);
      const lines = result.stdout.trim().split('\n');
      expect(lines.pop()).toBe('502');
      expect(lines.join('\n')).toBe('upstream TLS verification failed');
      const audit = await untrusting.audit((a) => a.path === '/unverified');
      expect(audit).toMatchObject({ mode: 'mitm', action: 'error', reason: 'upstream_tls', status_code: 502 });
    } finally {
      await untrusting.close();
    }
  });
});

describe('abuse of the tunnel listener', () => {
  it('survives truncated and random handshakes and keeps serving', async () => {
    const port = proxy.port('tunnel');
    const garbage: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      garbage.push(Buffer.from([5, i % 4]), Buffer.from([5, 1, 0, 1, 3, 0, 0]), Buffer.from([5, 1, 0]), Buffer.from(`CONNECT ${'a'.repeat(i)}`));
    }
    await Promise.all(
      garbage.map(async (bytes) => {
        const socket = await dial(port);
        socket.write(bytes);
        socket.end();
        await readUntil(socket, () => false);
        socket.destroy();
      }),
    );
    const result = await curl(['--cacert', world.proxyCaFile, '-x', tunnelProxy(), `https://upstream.test:${secure.port}/still-serving`]);
    expect(echoed(result.stdout).path).toBe('/still-serving');
  });
});
