import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retarget } from '@proxy/core';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, DEFAULT_DENY_CIDRS, echoed, startEngine, type TestEngine } from './support.js';
import { createTlsWorld, type TlsWorld } from './tls-support.js';

/** A transform re-targeting every request to `host:port`. */
function router(host: string, port: number) {
  return { name: 'router', transform: { onRequest: () => retarget(host, port) } };
}

describe('a re-targeted request in the engine', () => {
  let original: EchoServer;
  let mirror: EchoServer;
  let dns: DnsTestServer;
  let world: TlsWorld;
  let guarded: TestEngine;
  let open: TestEngine;

  beforeAll(async () => {
    world = await createTlsWorld();
    [original, mirror, dns] = await Promise.all([
      startEchoServer(),
      startEchoServer({ tls: world.upstreamCert }),
      startDnsServer({ records: { 'public.example.test': { A: ['192.0.2.20'] }, 'upstream.test': { A: ['127.0.0.1'] } } }),
    ]);
    guarded = await startEngine({ upstreamDenyCidrs: DEFAULT_DENY_CIDRS, upstreamResolver: dns.resolver });
    open = await startEngine({
      tunnelListen: '127.0.0.1:0',
      certificates: world.leaves,
      upstreamCa: world.upstreamCa.cert,
      upstreamResolver: dns.resolver,
      upstreamDenyCidrs: [],
    });
  });

  afterAll(async () => {
    await Promise.all([guarded?.close(), open?.close()]);
    await Promise.all([original?.close(), mirror?.close(), dns?.close()]);
    await world?.close();
  });

  it('is refused by the upstream guard when the new address is denied, and nothing is dialled', async () => {
    await guarded.use(router('127.0.0.1', mirror.port));
    const before = mirror.connections;
    const r = await curl(['-x', `http://127.0.0.1:${guarded.port()}`, '-o', '/dev/null', '-w', '%{http_code}', 'http://public.example.test/denied-retarget']);
    expect(r.stdout).toBe('403');
    const audit = await guarded.audit((a) => a.path === '/denied-retarget');
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'upstream_denied', host: 'public.example.test' });
    expect(mirror.connections).toBe(before);
  });

  it('is refused by the guard when the new name resolves to a denied address', async () => {
    await guarded.use(router('upstream.test', mirror.port));
    const before = mirror.connections;
    const r = await curl(['-x', `http://127.0.0.1:${guarded.port()}`, '-o', '/dev/null', '-w', '%{http_code}', 'http://public.example.test/denied-by-name']);
    expect(r.stdout).toBe('403');
    expect(mirror.connections).toBe(before);
  });

  it('goes to the new destination, with its Host header, and never to the old one', async () => {
    const plainMirror = await startEchoServer();
    try {
      await open.use(router('127.0.0.1', plainMirror.port));
      const r = await curl(['-x', `http://127.0.0.1:${open.port()}`, `http://127.0.0.1:${original.port}/moved?x=1`]);
      const seen = echoed(r.stdout);
      expect(seen.path).toBe('/moved');
      expect(seen.headers.host).toBe(`127.0.0.1:${plainMirror.port}`);
      expect(original.requests.some((q) => q.path === '/moved')).toBe(false);
    } finally {
      await plainMirror.close();
    }
  });

  it('leaves a tunnel\'s own connection for the new destination inside a CONNECT tunnel (TLS interception)', async () => {
    await open.use(router('upstream.test', mirror.port));
    const r = await curl(['--cacert', world.proxyCaFile, '-x', `http://127.0.0.1:${open.port('tunnel')}`, `https://upstream.test:${original.port}/in-tunnel`]);
    const seen = echoed(r.stdout);
    expect(seen.path).toBe('/in-tunnel');
    expect(seen.headers.host).toBe(`upstream.test:${mirror.port}`);
    const audit = await open.audit((a) => a.path === '/in-tunnel');
    expect(audit.request_transforms[0]).toMatchObject({ name: 'router', annotations: { retarget: `upstream.test:${mirror.port}` } });
  });
});
