import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { echoed, startEngine } from './support.js';
import { closed, createTlsWorld, dial, openConnectTunnel, requestOver, startTls, tlsThroughTunnel, type TlsWorld } from './tls-support.js';

let world: TlsWorld;
let secure: EchoServer;
let dns: DnsTestServer;

beforeAll(async () => {
  world = await createTlsWorld();
  secure = await startEchoServer({ tls: world.upstreamCert });
  dns = await startDnsServer({ records: { 'upstream.test': { A: ['127.0.0.1'] } } });
});

afterAll(async () => {
  await Promise.all([secure?.close(), dns?.close()]);
  await world?.close();
});

function startTunnelEngine(tlsMode: 'mitm' | 'sni-only' = 'mitm'): ReturnType<typeof startEngine> {
  return startEngine({
    httpListen: undefined,
    httpsListen: '127.0.0.1:0',
    tunnelListen: '127.0.0.1:0',
    tlsMode,
    certificates: world.leaves,
    upstreamCa: world.upstreamCa.cert,
    upstreamResolver: dns.resolver,
    upstreamDenyCidrs: [],
  });
}

describe('close(graceMs) with TLS listeners and tunnels', () => {
  it('lets a request in flight inside a tunnel finish, refuses new connections, then resolves', async () => {
    const proxy = await startTunnelEngine();
    const tls = await tlsThroughTunnel(proxy.port('tunnel'), `upstream.test:${secure.port}`, { servername: 'upstream.test', ca: world.proxyCa.cert });
    const inFlight = requestOver(tls, { path: '/delay/400', host: `upstream.test:${secure.port}` });
    await waitFor(() => secure.requests.some((r) => r.path === '/delay/400'));
    const shutdown = proxy.close(5_000);
    await expect(dial(proxy.port('tunnel'))).rejects.toThrow(/ECONNREFUSED/);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.headers.connection).toBe('close');
    await shutdown;
    expect(proxy.audits.map((a) => a.path)).toEqual(['/delay/400']);
  });

  it('closes idle intercepted connections and handshakes in progress without waiting for the grace period', async () => {
    const proxy = await startTunnelEngine();
    const idle = await tlsThroughTunnel(proxy.port('tunnel'), `upstream.test:${secure.port}`, { servername: 'upstream.test', ca: world.proxyCa.cert });
    const response = await requestOver(idle, { path: '/keep-alive', host: `upstream.test:${secure.port}` });
    expect(echoed(response.body).path).toBe('/keep-alive');
    const silentTunnel = await dial(proxy.port('tunnel'));
    const silentTls = await dial(proxy.port('https'));
    // The test would time out long before a 60 s grace period ended.
    await proxy.close(60_000);
    await Promise.all([closed(idle), closed(silentTunnel), closed(silentTls)]);
  });

  it('ends a passthrough splice once the grace period is over', async () => {
    const proxy = await startTunnelEngine('sni-only');
    const { socket, head } = await openConnectTunnel(proxy.port('tunnel'), `upstream.test:${secure.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const tls = await startTls(socket, { servername: 'upstream.test', ca: world.upstreamCa.cert });
    const response = await new Promise<number>((resolve, reject) => {
      httpRequest({ path: '/spliced', headers: { host: 'upstream.test' }, createConnection: () => tls }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(response).toBe(200);
    await proxy.close(100);
    await closed(tls);
    const audit = proxy.audits.find((a) => a.mode === 'sni-only');
    expect(audit).toMatchObject({ action: 'allow', host: 'upstream.test', status_code: 200 });
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
