import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, startEchoServer, type EchoServer, type TestPki } from './index.js';

/** Opens a TLS connection and reports whether the server certificate verified against `ca`. */
function handshake(port: number, servername: string | undefined, ca: string): Promise<{ authorized: boolean; error?: string; peer: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) }, () => {
      const result = {
        authorized: socket.authorized,
        peer: socket.getPeerCertificate(),
        ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
      };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

describe('createTestPki', () => {
  let pki: TestPki;
  let other: TestPki;
  let echo: EchoServer;

  beforeAll(async () => {
    [pki, other] = await Promise.all([
      createTestPki({ names: ['api.example.test', 'other.example.test', '127.0.0.1'], caName: 'kit test CA' }),
      createTestPki({ names: ['api.example.test'] }),
    ]);
    echo = await startEchoServer({ tls: { cert: pki.cert, key: pki.key } });
  });

  afterAll(async () => {
    await echo?.close();
    await pki?.remove();
    await other?.remove();
  });

  it('signs a server certificate with DNS and IP SANs, serverAuth, not a CA', () => {
    const cert = new X509Certificate(pki.cert);
    const ca = new X509Certificate(pki.caCert);
    expect(cert.subjectAltName).toBe('DNS:api.example.test, DNS:other.example.test, IP Address:127.0.0.1');
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toBe('CN=kit test CA');
    expect(cert.checkPrivateKey(createPrivateKey(pki.key))).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(other.key))).toBe(false);
  });

  it('writes the PEMs to files in its directory and removes them', async () => {
    expect(await readFile(pki.caFile, 'utf8')).toBe(pki.caCert);
    expect(await readFile(pki.certFile, 'utf8')).toBe(pki.cert);
    expect(await readFile(pki.keyFile, 'utf8')).toBe(pki.key);
    const extra = await createTestPki({ names: ['x.test'] });
    expect(existsSync(extra.caFile)).toBe(true);
    await extra.remove();
    expect(existsSync(extra.dir)).toBe(false);
  });

  it('serves TLS that verifies for every name against its own CA only', async () => {
    for (const name of ['api.example.test', 'other.example.test']) {
      const result = await handshake(echo.port, name, pki.caCert);
      expect(result.authorized).toBe(true);
      expect(result.peer.issuer.CN).toBe('kit test CA');
    }
    // No SNI: the client checks the host it dialled, 127.0.0.1, against the IP SAN.
    const byIp = await handshake(echo.port, undefined, pki.caCert);
    expect(byIp.authorized).toBe(true);
    const wrongName = await handshake(echo.port, 'nope.example.test', pki.caCert);
    expect(wrongName.authorized).toBe(false);
    expect(wrongName.error).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    const foreignCa = await handshake(echo.port, 'api.example.test', other.caCert);
    expect(foreignCa.authorized).toBe(false);
    expect(foreignCa.error).toMatch(/UNABLE_TO_VERIFY|unable to verify|self[- ]signed|unable to get/i);
  });

  it('issues a client certificate for mutual TLS when asked', async () => {
    const mutual = await createTestPki({ names: ['127.0.0.1'], clientName: 'workload' });
    try {
      expect(pki.client).toBeUndefined();
      const client = new X509Certificate(mutual.client!.cert);
      expect(client.subject).toBe('CN=workload');
      expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
      expect(client.checkIssued(new X509Certificate(mutual.caCert))).toBe(true);
      expect(await readFile(mutual.client!.keyFile, 'utf8')).toBe(mutual.client!.key);
    } finally {
      await mutual.remove();
    }
  });

  it('refuses an empty name list', async () => {
    await expect(createTestPki({ names: [] })).rejects.toThrow(/at least one name/);
  });
});
