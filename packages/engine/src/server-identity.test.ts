import { X509Certificate } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type * as Tls from 'node:tls';
import { createServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { createTestPki, type TestPki } from '@proxy/test-kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkServerIdentity } from './server-identity.js';
import { UpstreamGuard } from './upstream-guard.js';

// This file runs against a Node whose own check rejects every IPv6 literal, as Node 22.23 does
// (nodejs/node#64144), whatever Node runs the tests: every other host goes to the real check.
vi.mock('node:tls', async (importOriginal) => {
  const tls = await importOriginal<typeof Tls>();
  const broken: typeof tls.checkServerIdentity = (host, cert) =>
    isIPv6(host) ? Object.assign(new Error(`Hostname/IP does not match certificate's altnames: Host: ${host}. is not cert's CN`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }) : tls.checkServerIdentity(host, cert);
  // tls.connect falls back to Node's internal check, not this module's: make it the broken one too.
  const connect = ((options: ConnectionOptions, listener?: () => void) =>
    tls.connect({ checkServerIdentity: broken, ...options }, listener)) as typeof tls.connect;
  return { ...tls, checkServerIdentity: broken, connect };
});

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki({ names: ['upstream.test', '::1', '127.0.0.1'] });
});
afterAll(() => pki?.remove());

const peer = () => new X509Certificate(pki.cert).toLegacyObject();

describe('checkServerIdentity', () => {
  it('matches an IPv6 literal against the IP SANs, in any spelling of the address', () => {
    expect(checkServerIdentity('::1', peer())).toBeUndefined();
    expect(checkServerIdentity('0:0:0:0:0:0:0:1', peer())).toBeUndefined();
  });

  it('refuses an IPv6 literal the certificate does not name', () => {
    expect(checkServerIdentity('::2', peer())).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(checkServerIdentity('2001:db8::1', peer())).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it("leaves names and IPv4 to Node's check", () => {
    expect(checkServerIdentity('upstream.test', peer())).toBeUndefined();
    expect(checkServerIdentity('127.0.0.1', peer())).toBeUndefined();
    expect(checkServerIdentity('other.test', peer())).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(checkServerIdentity('127.0.0.2', peer())).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('does not take an IPv6 name from a DNS SAN or the common name', async () => {
    const named = await createTestPki({ names: ['::1.example.test'] });
    try {
      const cert = { ...new X509Certificate(named.cert).toLegacyObject(), subject: { CN: '::1' } };
      expect(checkServerIdentity('::1', cert as never)).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    } finally {
      await named.remove();
    }
  });
});

describe('the upstream guard dialling an IPv6 literal over TLS', () => {
  it('verifies the upstream certificate for [::1] and refuses one for another address', async () => {
    const server = createServer({ cert: pki.cert, key: pki.key }, (socket) => socket.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    const port = (server.address() as { port: number }).port;
    const guard = new UpstreamGuard({ denyCidrs: [], ca: pki.caCert });
    try {
      const socket = (await guard.connect({ host: '[::1]', port, tls: true })) as TLSSocket;
      expect(socket.authorized).toBe(true);
      socket.destroy();
      const other = await createTestPki({ names: ['::2'] });
      try {
        const wrong = createServer({ cert: other.cert, key: other.key }, (s) => s.end());
        await new Promise<void>((resolve) => wrong.listen(0, '::1', resolve));
        const wrongGuard = new UpstreamGuard({ denyCidrs: [], ca: other.caCert });
        await expect(wrongGuard.connect({ host: '::1', port: (wrong.address() as { port: number }).port, tls: true })).rejects.toMatchObject({ status: 502, reason: 'upstream_tls' });
        await new Promise((resolve) => wrong.close(resolve));
      } finally {
        await other.remove();
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
