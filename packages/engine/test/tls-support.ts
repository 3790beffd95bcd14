import { request as httpRequest } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { TestContext } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import type { ClientResponse } from './support.js';
import { TestCa, TestLeafSource, type CertifiedKey } from './test-pki.js';

/** The two authorities of a TLS test: the upstreams' own CA, and the CA the proxy mints leaves with. */
export interface TlsWorld {
  readonly upstreamCa: TestCa;
  /** The upstream's certificate: `upstream.test`, `other.test`, `localhost`, `127.0.0.1`. */
  readonly upstreamCert: CertifiedKey;
  readonly proxyCa: TestCa;
  readonly leaves: TestLeafSource;
  /** A directory for CA files handed to curl; removed by `close()`. */
  readonly dir: string;
  /** Path of the proxy CA's PEM file (curl `--cacert`). */
  readonly proxyCaFile: string;
  close(): Promise<void>;
}

/** Creates both CAs, the upstream certificate and the proxy CA file. */
export async function createTlsWorld(): Promise<TlsWorld> {
  const [upstreamCa, proxyCa] = await Promise.all([TestCa.create('upstream test CA'), TestCa.create('proxy test CA')]);
  const upstreamCert = await upstreamCa.issue(['upstream.test', 'other.test', 'localhost', '127.0.0.1']);
  const dir = await mkdtemp(join(tmpdir(), 'engine-tls-'));
  const proxyCaFile = join(dir, 'proxy-ca.crt');
  await writeFile(proxyCaFile, proxyCa.cert);
  return {
    upstreamCa,
    upstreamCert,
    proxyCa,
    leaves: new TestLeafSource(proxyCa),
    dir,
    proxyCaFile,
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The TLS echo upstream the https listener dials, and whether it really is on port 443. */
export interface Port443Upstream {
  readonly echo: EchoServer;
  /** Why port 443 could not be bound (the cases that need it skip with this); undefined when the echo is on 443. */
  readonly unavailable: string | undefined;
}

/**
 * Starts a TLS echo upstream on port 443 of a random loopback address (127.x.y.z), where the
 * https listener sends its traffic. Binding port 443 needs root or a lowered
 * `net.ipv4.ip_unprivileged_port_start`; without that right (EACCES) the echo listens on an
 * ephemeral port of 127.0.0.1 instead and `unavailable` says why.
 */
export async function startEchoOnPort443(tls: CertifiedKey): Promise<Port443Upstream> {
  for (let attempt = 0; ; attempt++) {
    const host = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
    try {
      return { echo: await startEchoServer({ host, port: 443, tls }), unavailable: undefined };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES') {
        const unavailable = `cannot bind ${host}:443 (EACCES): run as root or allow unprivileged ports below 1024`;
        return { echo: await startEchoServer({ host: '127.0.0.1', tls }), unavailable };
      }
      if (code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

/**
 * Skips a case whose request the https listener forwards: it always dials port 443, so the
 * case needs the upstream there. Interception and passthrough are also covered through tunnels,
 * which dial the port they name (tunnel-listener.test.ts, the tunnel cases of sni-only.test.ts).
 */
export function needPort443(ctx: TestContext, upstream: Port443Upstream): void {
  if (upstream.unavailable !== undefined) ctx.skip(`the https listener dials port 443: ${upstream.unavailable}`);
}

/** Opens a raw TCP connection to a listener on 127.0.0.1. */
export function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Reads from `socket` until `enough(bytes)` holds or the peer closes; resolves with what arrived. */
export function readUntil(socket: Socket, enough: (bytes: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    let bytes = Buffer.alloc(0);
    const done = (): void => {
      socket.off('data', onData).off('close', done).off('end', done);
      socket.pause();
      resolve(bytes);
    };
    const onData = (chunk: Buffer): void => {
      bytes = Buffer.concat([bytes, chunk]);
      if (enough(bytes)) done();
    };
    socket.on('data', onData).on('close', done).on('end', done);
    socket.resume();
  });
}

/** Resolves when the peer has closed `socket` (or the socket failed). */
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.resume();
    socket.once('close', () => resolve());
  });
}

/** Sends `CONNECT target` on a new connection; resolves with the socket and the response head. */
export async function openConnectTunnel(port: number, target: string): Promise<{ socket: Socket; head: string }> {
  const socket = await dial(port);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const bytes = await readUntil(socket, (b) => b.includes('\r\n\r\n'));
  return { socket, head: bytes.toString('latin1') };
}

/** Opens a CONNECT tunnel to `target` and starts TLS in it for `servername`. */
export async function tlsThroughTunnel(port: number, target: string, options: { servername: string; ca: string }): Promise<TLSSocket> {
  const { socket, head } = await openConnectTunnel(port, target);
  if (!head.startsWith('HTTP/1.1 200 ')) throw new Error(`tunnel refused: ${head.split('\r\n')[0]}`);
  return startTls(socket, options);
}

/** A SOCKS5 CONNECT request for a domain name. */
export function socksDomainRequest(host: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), Buffer.from(host, 'latin1'), portBytes(port)]);
}

/** A SOCKS5 CONNECT request for an IPv4 address. */
export function socksIpv4Request(address: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([5, 1, 0, 1, ...address.split('.').map(Number)]), portBytes(port)]);
}

/** A SOCKS5 CONNECT request for an IPv6 address given as 16 bytes. */
export function socksIpv6Request(address: Buffer, port: number): Buffer {
  return Buffer.concat([Buffer.from([5, 1, 0, 4]), address, portBytes(port)]);
}

/**
 * Runs a SOCKS5 handshake (greeting offering `methods`, then `request`); resolves with the
 * socket, the method the server chose and its reply to the request (undefined when it closed
 * after the greeting).
 */
export async function socksHandshake(port: number, request: Buffer, methods: number[] = [0]): Promise<{ socket: Socket; method: number; reply: Buffer | undefined }> {
  const socket = await dial(port);
  socket.write(Buffer.from([5, methods.length, ...methods]));
  const selection = await readUntil(socket, (b) => b.length >= 2);
  if (selection[1] !== 0) return { socket, method: selection[1]!, reply: undefined };
  socket.write(request);
  const reply = await readUntil(socket, (b) => b.length >= 4 && b.length >= replyLength(b));
  return { socket, method: selection[1]!, reply };
}

/** Starts TLS on an open tunnel. Rejects when the handshake fails. */
export function startTls(socket: Socket, options: { servername?: string; ca: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, ca: options.ca, ...(options.servername === undefined ? {} : { servername: options.servername }) });
    tls.once('secureConnect', () => {
      tls.off('error', reject);
      resolve(tls);
    });
    tls.once('error', reject);
  });
}

/** Sends one HTTP/1.1 request over an already open connection (a tunnel, or TLS in one). */
export function requestOver(socket: Socket, options: { path: string; host: string; method?: string; headers?: Record<string, string> }): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        method: options.method ?? 'GET',
        path: options.path,
        headers: { host: options.host, ...options.headers },
        createConnection: () => socket,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
    // `readUntil` leaves the socket paused; the HTTP client reads it from here on.
    socket.resume();
  });
}

/** The issuer CN of the certificate a TLS connection was answered with. */
export function issuerOf(tls: TLSSocket): string | undefined {
  const cert: PeerCertificate = tls.getPeerCertificate();
  const cn = cert.issuer.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

function portBytes(port: number): Buffer {
  return Buffer.from([port >> 8, port & 0xff]);
}

/** Length of a complete SOCKS5 reply, from its address type. */
function replyLength(bytes: Buffer): number {
  switch (bytes[3]) {
    case 1:
      return 10;
    case 4:
      return 22;
    case 3:
      return 7 + (bytes[4] ?? 0);
    default:
      return 4;
  }
}
