import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileRules, reject, type RuleConfig } from '@proxy/core';
import type { ProxyRequest } from '@proxy/core';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, echoed, startEngine, type TestEngine } from './support.js';
import { closed, createTlsWorld, dial, issuerOf, openConnectTunnel, requestOver, socksDomainRequest, socksHandshake, startEchoOnPort443, startTls, needPort443, type Port443Upstream, type TlsWorld } from './tls-support.js';

let world: TlsWorld;
let upstream443: Port443Upstream;
let secure: EchoServer;
let dns: DnsTestServer;
let proxy: TestEngine;
let upstreamCaFile: string;
let seen: ProxyRequest[];

beforeAll(async () => {
  world = await createTlsWorld();
  [upstream443, secure] = await Promise.all([startEchoOnPort443(world.upstreamCert), startEchoServer({ tls: world.upstreamCert })]);
  dns = await startDnsServer({
    records: { 'upstream.test': { A: [upstream443.echo.host] }, 'other.test': { A: [upstream443.echo.host] }, localhost: { A: ['127.0.0.1'] } },
  });
  upstreamCaFile = join(world.dir, 'upstream-ca.crt');
  await writeFile(upstreamCaFile, world.upstreamCa.cert);
  // No certificates: sni-only never terminates TLS.
  proxy = await startEngine({
    httpListen: undefined,
    httpsListen: '127.0.0.1:0',
    tunnelListen: '127.0.0.1:0',
    tlsMode: 'sni-only',
    upstreamResolver: dns.resolver,
    upstreamDenyCidrs: [],
  });
  await recording();
});

afterEach(async () => {
  await recording();
});

afterAll(async () => {
  await proxy?.close();
  await Promise.all([upstream443?.echo.close(), secure?.close(), dns?.close()]);
  await world?.close();
});

function recording(decide: (request: ProxyRequest) => ReturnType<typeof reject> | undefined = () => undefined): Promise<unknown> {
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

/** An allowlist made of core rules: what a rule-based transform decides on a host-only request. */
function allowOnly(rules: RuleConfig[]): Promise<unknown> {
  const allowed = compileRules(rules);
  return recording((r) => (allowed.matches(r) ? undefined : reject(403, 'not_allowlisted')));
}

function connectDirect(servername: string): Promise<TLSSocket> {
  return new Promise((resolve, fail) => {
    const tls = tlsConnect({ host: '127.0.0.1', port: proxy.port('https'), servername, ca: world.upstreamCa.cert });
    tls.once('secureConnect', () => resolve(tls)).once('error', fail);
  });
}

describe('sni-only on the https listener', () => {
  it('passes TLS through: the client sees the upstream’s own certificate', async (ctx) => {
    needPort443(ctx, upstream443);
    const tls = await connectDirect('upstream.test');
    expect(issuerOf(tls)).toBe('upstream test CA');
    expect(tls.getPeerCertificate().fingerprint256).toBe(new X509Certificate(world.upstreamCert.cert).fingerprint256);
    const response = await requestOver(tls, { path: '/passthrough', host: 'upstream.test' });
    expect(echoed(response.body).path).toBe('/passthrough');
    tls.destroy();

    expect(seen.map((r) => [r.mode, r.method, r.path, r.host, r.port, r.sni])).toEqual([['sni-only', '', '', 'upstream.test', 443, 'upstream.test']]);
    const audit = await proxy.audit((a) => a.mode === 'sni-only' && a.action === 'allow');
    expect(audit).toMatchObject({ host: 'upstream.test', sni: 'upstream.test', method: '', path: '', status_code: 200, upstream_addr: upstream443.echo.host });
  });

  it('serves curl with the upstream CA only', async (ctx) => {
    needPort443(ctx, upstream443);
    const port = proxy.port('https');
    const result = await curl(['--cacert', upstreamCaFile, '--resolve', `upstream.test:${port}:127.0.0.1`, `https://upstream.test:${port}/curl-passthrough`]);
    expect(result.stderr).toBe('');
    expect(echoed(result.stdout).path).toBe('/curl-passthrough');
  });

  it('closes the connection of a denied host with an audit record, dialling nothing', async () => {
    await recording((r) => (r.host === 'other.test' ? reject(403, 'not_allowlisted') : undefined));
    const before = upstream443.echo.connections;
    await expect(connectDirect('other.test')).rejects.toThrow();
    expect(upstream443.echo.connections).toBe(before);
    const audit = await proxy.audit((a) => a.mode === 'sni-only' && a.host === 'other.test');
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'policy', reason: 'not_allowlisted', status_code: 403 });
  });

  it('does not match rules with methods or paths against the host-only request', async (ctx) => {
    needPort443(ctx, upstream443);
    await allowOnly([{ host: 'upstream.test', methods: ['GET'] }]);
    await expect(connectDirect('upstream.test')).rejects.toThrow();
    await allowOnly([{ host: 'upstream.test', paths: ['/*'] }]);
    await expect(connectDirect('upstream.test')).rejects.toThrow();
    await allowOnly([{ host: 'upstream.test', methods: ['*'] }]);
    (await connectDirect('upstream.test')).destroy();
    await allowOnly([{ host: '*.test' }]);
    (await connectDirect('upstream.test')).destroy();
  });

  it('closes a hello without SNI with an audit record', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: proxy.port('https'), ca: world.upstreamCa.cert });
    await expect(new Promise((resolve, fail) => socket.once('secureConnect', resolve).once('error', fail))).rejects.toThrow();
    const audit = await proxy.audit((a) => a.mode === 'sni-only' && a.reason === 'missing_sni');
    expect(audit).toMatchObject({ action: 'reject', status_code: 400 });
  });

  it('closes non-TLS bytes with an audit record', async () => {
    const socket = await dial(proxy.port('https'));
    socket.write('GET / HTTP/1.1\r\nHost: upstream.test\r\n\r\n');
    await closed(socket);
    const audit = await proxy.audit((a) => a.mode === 'sni-only' && a.reason === 'bad_client_hello');
    expect(audit).toMatchObject({ action: 'reject', status_code: 400, host: '' });
  });
});

describe('sni-only inside tunnels', () => {
  it('passes TLS through a CONNECT tunnel to the CONNECT port', async () => {
    const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), `localhost:${secure.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const tls = await startTls(socket, { servername: 'localhost', ca: world.upstreamCa.cert });
    expect(tls.getPeerCertificate().fingerprint256).toBe(new X509Certificate(world.upstreamCert.cert).fingerprint256);
    const response = await requestOver(tls, { path: '/connect-passthrough', host: `localhost:${secure.port}` });
    expect(echoed(response.body).path).toBe('/connect-passthrough');
    tls.destroy();
    const audit = await proxy.audit((a) => a.mode === 'sni-only' && a.host === 'localhost');
    expect(audit).toMatchObject({ action: 'allow', sni: 'localhost', tunnel: { protocol: 'connect', target: `localhost:${secure.port}`, decision: 'allow' } });
    expect(seen.map((r) => [r.mode, r.host, r.port])).toEqual([
      ['tunnel', 'localhost', secure.port],
      ['sni-only', 'localhost', secure.port],
    ]);
  });

  it('holds the upstream back while the client does not read, and relays again once it does', async () => {
    // An upstream that sends as fast as it is let, counting what its connection took.
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 'z');
    const firehose = createTlsServer({ cert: world.upstreamCert.cert, key: world.upstreamCert.key }, (socket) => {
      const more = (): void => {
        while (!socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', more);
            return;
          }
        }
      };
      socket.on('error', () => socket.destroy());
      more();
    });
    await new Promise<void>((r) => firehose.listen(0, '127.0.0.1', r));
    try {
      const { socket } = await openConnectTunnel(proxy.port('tunnel'), `localhost:${(firehose.address() as AddressInfo).port}`);
      const tls = await startTls(socket, { servername: 'localhost', ca: world.upstreamCa.cert });
      tls.pause();
      // The kernel's socket buffers on the way fill, then every side waits: far less than the
      // hundreds of MB a relay that read without waiting would pull in by now.
      await new Promise((r) => setTimeout(r, 1000));
      const stalled = sent;
      await new Promise((r) => setTimeout(r, 500));
      expect(sent).toBe(stalled);
      expect(sent).toBeLessThan(64 * 1024 * 1024);
      // Reading again lets the upstream go on.
      let received = 0;
      tls.on('data', (data: Buffer) => (received += data.length));
      tls.resume();
      await expect.poll(() => received, { timeout: 10_000 }).toBeGreaterThan(stalled + 8 * 1024 * 1024);
      expect(sent).toBeGreaterThan(stalled);
      tls.destroy();
    } finally {
      await new Promise((r) => firehose.close(r));
    }
  });

  it('passes TLS through a SOCKS5 tunnel: the client verifies the upstream itself', async () => {
    const { socket, reply } = await socksHandshake(proxy.port('tunnel'), socksDomainRequest('localhost', secure.port));
    expect(reply![1]).toBe(0);
    const tls = await startTls(socket, { servername: 'localhost', ca: world.upstreamCa.cert });
    expect(issuerOf(tls)).toBe('upstream test CA');
    const response = await requestOver(tls, { path: '/socks-passthrough', host: `localhost:${secure.port}` });
    expect(echoed(response.body).path).toBe('/socks-passthrough');
    tls.destroy();
  });

  it('refuses an SNI that differs from the tunnel target', async () => {
    const { socket } = await socksHandshake(proxy.port('tunnel'), socksDomainRequest('localhost', secure.port));
    await expect(startTls(socket, { servername: 'other.test', ca: world.upstreamCa.cert })).rejects.toThrow();
    const audit = await proxy.audit((a) => a.mode === 'sni-only' && a.reason === 'sni_mismatch');
    expect(audit).toMatchObject({ host: 'localhost', sni: 'other.test', status_code: 421, tunnel: { protocol: 'socks5' } });
  });

  it('applies host-only policy again inside the tunnel', async () => {
    await recording((r) => (r.mode === 'sni-only' ? reject(403, 'tls_denied') : undefined));
    const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), `localhost:${secure.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    await expect(startTls(socket, { servername: 'localhost', ca: world.upstreamCa.cert })).rejects.toThrow();
    const audit = await proxy.audit((a) => a.reason === 'tls_denied');
    expect(audit).toMatchObject({ mode: 'sni-only', action: 'reject', tunnel: { decision: 'allow' } });
  });
});
