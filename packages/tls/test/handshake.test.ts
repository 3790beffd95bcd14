import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { TLSSocket, connect, createServer, type ConnectionOptions, type DetailedPeerCertificate } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { checkServerIdentity } from '@proxy/engine';
import { requireCommand } from '@proxy/test-kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeafCertificateIssuer, certificateAuthorityFromPem, generateCertificateAuthority, type CaKeyAlgorithm } from '../src/index.js';
import { temporaryDirectory } from './fixtures.js';

const run = promisify(execFile);

let dir: string;
let remove: () => Promise<void>;
beforeAll(async () => ({ dir, remove } = await temporaryDirectory()));
afterAll(() => remove());

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function listen(server: Server, host: string): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

/** A TLS server answering each handshake with the issuer's context for its SNI, then greeting the client by that name. */
function sniServer(issuer: LeafCertificateIssuer): Server {
  return createServer(
    {
      SNICallback: (name, callback) => {
        issuer.secureContextFor(name).then((context) => callback(null, context), (error: Error) => callback(error));
      },
    },
    (socket) => socket.end(`hello ${socket.servername || ''}`),
  );
}

/** A TCP server that starts TLS with the issuer's context for the address the client dialled (no SNI). */
function addressServer(issuer: LeafCertificateIssuer): Server {
  return createTcpServer((tcp) => {
    issuer.secureContextFor(tcp.localAddress ?? '').then(
      (secureContext) => {
        const socket = new TLSSocket(tcp, { isServer: true, secureContext });
        socket.on('secure', () => socket.end(`hello ${tcp.localAddress ?? ''}`));
        socket.on('error', () => socket.destroy());
      },
      () => tcp.destroy(),
    );
  });
}

/** Connects, completes the handshake and reads until the server closes. */
function handshake(options: ConnectionOptions): Promise<{ authorized: boolean; peer: DetailedPeerCertificate; issuer: string | undefined; received: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(options);
    let received = '';
    let peer: DetailedPeerCertificate | undefined;
    let issuer: string | undefined;
    socket.on('secureConnect', () => {
      peer = socket.getPeerCertificate(true);
      issuer = peer.issuerCertificate?.fingerprint256;
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => {
      if (peer === undefined) reject(new Error('the server closed the connection before the handshake completed'));
      else resolve({ authorized: socket.authorized, peer, issuer, received });
    });
    socket.on('error', reject);
  });
}

async function newIssuer(algorithm: CaKeyAlgorithm = 'ec'): Promise<{ issuer: LeafCertificateIssuer; caPem: string }> {
  const generated = await generateCertificateAuthority({ algorithm });
  return { issuer: new LeafCertificateIssuer(await certificateAuthorityFromPem(generated)), caPem: generated.certPem };
}

describe('TLS handshakes with minted leaves', () => {
  for (const algorithm of ['ec', 'rsa', 'ed25519'] as const) {
    it(`a client trusting only the ${algorithm} CA accepts the leaf for its SNI`, async () => {
      const { issuer, caPem } = await newIssuer(algorithm);
      const port = await listen(sniServer(issuer), '127.0.0.1');
      const result = await handshake({ host: '127.0.0.1', port, servername: 'api.example.test', ca: [caPem] });
      expect(result.authorized).toBe(true);
      expect(result.received).toBe('hello api.example.test');
      expect(result.peer.subject.CN).toBe('api.example.test');
      expect(result.issuer).toBe(new X509Certificate(caPem).fingerprint256);
    });
  }

  it('serves the chain leaf + CA and a fresh leaf per name, reusing the cached one', async () => {
    const { issuer, caPem } = await newIssuer();
    const port = await listen(sniServer(issuer), '127.0.0.1');
    const caFile = join(dir, 'ca.crt');
    await writeFile(caFile, caPem);
    requireCommand('openssl');
    const sClient = run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'chain.example.test', '-CAfile', caFile, '-showcerts', '-ignore_unexpected_eof'], { timeout: 20_000 });
    sClient.child.stdin?.end();
    const { stdout } = await sClient;
    expect(stdout).toContain('Verify return code: 0 (ok)');
    const chain = stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    expect(chain).toHaveLength(2);
    expect(new X509Certificate(chain[0] ?? '').subject).toBe('CN=chain.example.test');
    expect(new X509Certificate(chain[1] ?? '').fingerprint256).toBe(new X509Certificate(caPem).fingerprint256);

    const again = await handshake({ host: '127.0.0.1', port, servername: 'chain.example.test', ca: [caPem] });
    expect(again.peer.fingerprint256).toBe(new X509Certificate(chain[0] ?? '').fingerprint256);
    const other = await handshake({ host: '127.0.0.1', port, servername: 'other.example.test', ca: [caPem] });
    expect(other.peer.subject.CN).toBe('other.example.test');
    expect(issuer.cachedCount).toBe(2);
  });

  it('a client trusting another CA refuses the leaf', async () => {
    const { issuer } = await newIssuer();
    const stranger = await generateCertificateAuthority();
    const port = await listen(sniServer(issuer), '127.0.0.1');
    await expect(handshake({ host: '127.0.0.1', port, servername: 'api.example.test', ca: [stranger.certPem] })).rejects.toMatchObject({
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
  });

  it('a handshake for an invalid name fails without a certificate', async () => {
    const { issuer, caPem } = await newIssuer();
    const port = await listen(sniServer(issuer), '127.0.0.1');
    await expect(handshake({ host: '127.0.0.1', port, servername: 'bad_name!', ca: [caPem] })).rejects.toThrow();
    expect(issuer.cachedCount).toBe(0);
  });

  it.each([
    ['IPv4', '127.0.0.1'],
    ['IPv6', '::1'],
  ])('a client dialling an %s literal accepts the leaf for that address', async (_family, address) => {
    const { issuer, caPem } = await newIssuer();
    const port = await listen(addressServer(issuer), address);
    // The proxy's own check: Node 22.23's rejects every IPv6 literal (nodejs/node#64144).
    const result = await handshake({ host: address, port, ca: [caPem], checkServerIdentity });
    expect(result.authorized).toBe(true);
    expect(result.received).toBe(`hello ${address}`);
    expect(result.peer.subjectaltname).toBe(address === '::1' ? 'IP Address:0:0:0:0:0:0:0:1' : `IP Address:${address}`);
  });
});
