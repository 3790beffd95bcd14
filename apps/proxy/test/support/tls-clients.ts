import { spawn } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { createTestPki, startEchoServer, type EchoServer, type TestPki } from '@proxy/test-kit';
import type { CommandResult } from './proxy-process.js';

/** An HTTPS echo upstream with its own test PKI, on port 443 of a loopback address when it could bind one. */
export interface HttpsUpstream {
  readonly echo: EchoServer;
  readonly pki: TestPki;
  /** The loopback address the echo listens on (what the test DNS server maps every name to). */
  readonly address: string;
  /** Its port: 443, or an ephemeral one when 443 could not be bound. */
  readonly port: number;
  /** Why port 443 could not be bound (the cases that need it skip with this), or undefined when it is bound. */
  readonly port443Unavailable: string | undefined;
  close(): Promise<void>;
}

const BIND_ATTEMPTS = 8;

/**
 * Starts the HTTPS echo upstream `https_listen` can reach: `https_listen` always dials port
 * 443 of the host named by the SNI, so the echo binds `127.0.0.X:443` with a random X in
 * 2..254 (another X on EADDRINUSE, so parallel test files do not collide). When 443 cannot be
 * bound at all (EACCES without root), it falls back to `127.0.0.1` on an ephemeral port and
 * says why in `port443Unavailable`. The certificate covers `names`, `127.0.0.1` and the address.
 */
export async function startHttpsUpstream(names: readonly string[], caName: string): Promise<HttpsUpstream> {
  let lastError: unknown;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const address = `127.0.0.${2 + Math.floor(Math.random() * 253)}`;
    const pki = await createTestPki({ names: [...names, '127.0.0.1', address], caName });
    try {
      const echo = await startEchoServer({ host: address, port: 443, tls: { cert: pki.cert, key: pki.key } });
      return upstream(echo, pki, undefined);
    } catch (error) {
      lastError = error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES') {
        const echo = await startEchoServer({ host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
        return upstream(echo, pki, `cannot bind ${address}:443 (${code}): run as root or allow unprivileged ports below 1024`);
      }
      await pki.remove();
      if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL') throw error;
    }
  }
  throw lastError;
}

function upstream(echo: EchoServer, pki: TestPki, port443Unavailable: string | undefined): HttpsUpstream {
  return {
    echo,
    pki,
    address: echo.host,
    port: echo.port,
    port443Unavailable,
    async close() {
      await echo.close();
      await pki.remove();
    },
  };
}

/** Reads from `socket` until `enough(buffer)` says the reply is complete; rejects on close first. */
function readUntil(socket: Socket, enough: (buffer: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      if (enough(buffer)) {
        cleanup();
        socket.pause();
        resolve(buffer);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`connection closed after ${buffer.length} bytes: ${buffer.toString('hex')}`));
    };
    const cleanup = (): void => {
      socket.off('data', onData).off('end', onEnd).off('close', onEnd).off('error', onEnd);
    };
    socket.on('data', onData).on('end', onEnd).on('close', onEnd).on('error', onEnd);
  });
}

function connectTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** A SOCKS5 CONNECT through the tunnel listener: the RFC 1928 reply code and the open socket. */
export async function socks5Connect(proxyPort: number, host: string, port: number): Promise<{ reply: number; socket: Socket }> {
  const socket = await connectTcp(proxyPort);
  socket.write(Buffer.from([0x05, 0x01, 0x00])); // version 5, one method: no authentication
  const method = await readUntil(socket, (b) => b.length >= 2);
  if (method[0] !== 0x05 || method[1] !== 0x00) throw new Error(`SOCKS5 method selection refused: ${method.toString('hex')}`);
  const name = Buffer.from(host, 'ascii');
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  socket.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, name.length]), name, portBytes]));
  socket.resume();
  const reply = await readUntil(socket, (b) => b.length >= 2 && (b[1] !== 0x00 || b.length >= socks5ReplyLength(b)));
  return { reply: reply[1]!, socket };
}

/** Length of a SOCKS5 reply from its address type (IPv4, domain, IPv6). */
function socks5ReplyLength(reply: Buffer): number {
  if (reply.length < 5) return Number.MAX_SAFE_INTEGER;
  const atyp = reply[3];
  if (atyp === 0x01) return 10;
  if (atyp === 0x04) return 22;
  return 7 + reply[4]!;
}

/** An HTTP CONNECT through the tunnel listener: the status code and the open socket. */
export async function httpConnect(proxyPort: number, target: string): Promise<{ status: number; socket: Socket }> {
  const socket = await connectTcp(proxyPort);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const head = await readUntil(socket, (b) => b.includes('\r\n\r\n'));
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1'));
  if (!status) throw new Error(`not an HTTP response to CONNECT: ${head.toString('latin1')}`);
  return { status: Number(status[1]), socket };
}

/** The outcome of a TLS handshake: the peer certificate, or the error that ended it. */
export type HandshakeResult = { ok: true; socket: TLSSocket; peer: X509Certificate } | { ok: false; error: string };

/** What {@link tlsHandshake} sends and checks. */
export interface HandshakeOptions {
  /** SNI to send; none when absent. */
  readonly servername?: string;
  /** PEM CA to verify the server against; without it nothing is verified. */
  readonly ca?: string;
  /** The name or IP the certificate must be valid for when verifying; default the servername. */
  readonly identity?: string;
}

/**
 * Runs a TLS handshake (ALPN http/1.1) over an open socket or to `127.0.0.1:port`. Never
 * throws: a refused, failed or closed handshake is `{ ok: false }`.
 */
export function tlsHandshake(over: Socket | number, options: HandshakeOptions): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const target = typeof over === 'number' ? { host: '127.0.0.1', port: over } : { socket: over };
    const socket = tlsConnect(
      {
        ...target,
        ALPNProtocols: ['http/1.1'],
        ...(options.servername === undefined ? {} : { servername: options.servername }),
        ...(options.ca === undefined ? { rejectUnauthorized: false } : { ca: options.ca }),
        ...(options.identity === undefined ? {} : { checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(options.identity!, cert) }),
      },
      () => {
        socket.off('close', onClose);
        const peer = socket.getPeerX509Certificate();
        if (peer === undefined) resolve({ ok: false, error: 'no peer certificate' });
        else resolve({ ok: true, socket, peer });
      },
    );
    const onClose = (): void => resolve({ ok: false, error: 'closed before the handshake completed' });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      socket.off('close', onClose);
      resolve({ ok: false, error: error.code ?? error.message });
    });
    socket.once('close', onClose);
  });
}

/** Runs a command with `input` on its stdin (never throws on a non-zero exit). */
export function runWithInput(file: string, args: readonly string[], input: string, env: Record<string, string>): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}
