/**
 * Binding the DNS server: `dns.listen` parsing, one port for UDP and TCP, and the errors an
 * operator sees when the bind fails.
 */
import { createSocket, type Socket as UdpSocket, type SocketType } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { ErrorCodes, ProxyError } from '@proxy/core';

/** Where the server binds: `host` undefined means every interface. */
export interface ListenAddress {
  readonly host: string | undefined;
  readonly port: number;
}

/**
 * Parses `dns.listen`: `":53"` (every interface), `"127.0.0.1:5353"`, `"[::1]:0"`,
 * `"localhost:5353"`. Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) naming the value.
 */
export function parseListenAddress(value: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535 || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `dns.listen: invalid listen address "${value}" (expected host:port, :port or [ipv6]:port)`, {
      reason: 'config_invalid',
    });
  }
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

/**
 * Maps a bind failure to the error an operator should read. EACCES (a port below 1024 without
 * the privilege) and EADDRINUSE become a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) that names
 * `dns.listen` and the fix; anything else is returned unchanged.
 */
export function listenError(error: unknown, listen: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES') {
    return new ProxyError(
      ErrorCodes.CONFIG_INVALID,
      `dns.listen "${listen}": permission denied binding a privileged port (below 1024). ` +
        'Either let node bind it (`sudo setcap cap_net_bind_service=+ep $(which node)`) ' +
        'or set dns.listen to a port >= 1024 (e.g. ":5353") and point clients or a port forward at it.',
      { reason: 'listen_permission_denied', cause: error },
    );
  }
  if (code === 'EADDRINUSE') {
    return new ProxyError(
      ErrorCodes.CONFIG_INVALID,
      `dns.listen "${listen}": the address is already in use (another DNS server, e.g. systemd-resolved or dnsmasq?). ` +
        'Stop it or choose another dns.listen address.',
      { reason: 'listen_address_in_use', cause: error },
    );
  }
  return error;
}

/** A UDP socket and a TCP server bound to the same address and port. */
export interface BoundSockets {
  readonly udp: UdpSocket;
  readonly tcp: Server;
  readonly address: string;
  readonly port: number;
}

/** How many ephemeral ports to try when port 0 is free for UDP but taken for TCP. */
const EPHEMERAL_ATTEMPTS = 20;

/**
 * Binds UDP then TCP on `address`. With port 0, the TCP server takes the port UDP got,
 * retrying with a new port when TCP finds it taken. Rejects with the raw bind error.
 */
export async function bindUdpAndTcp(address: ListenAddress, onConnection: (socket: Socket) => void): Promise<BoundSockets> {
  const target = await resolveBindTarget(address.host);
  let lastError: unknown;
  for (let attempt = 0; attempt < (address.port === 0 ? EPHEMERAL_ATTEMPTS : 1); attempt++) {
    const udp = await bindUdp(target, address.port);
    const port = udp.address().port;
    const tcp = createServer({ allowHalfOpen: true }, onConnection);
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ port, host: target.host }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      const bound = tcp.address() as AddressInfo;
      return { udp, tcp, address: bound.address, port: bound.port };
    } catch (error) {
      lastError = error;
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  throw lastError;
}

/** The UDP socket types to try and the address to bind, per listen host. */
interface BindTarget {
  /** Undefined: every interface (TCP picks the dual-stack wildcard itself). */
  readonly host: string | undefined;
  readonly udp: readonly { readonly type: SocketType; readonly address: string }[];
}

async function resolveBindTarget(host: string | undefined): Promise<BindTarget> {
  if (host === undefined) {
    // The dual-stack wildcard, or IPv4 only on hosts without IPv6.
    return { host: undefined, udp: [{ type: 'udp6', address: '::' }, { type: 'udp4', address: '0.0.0.0' }] };
  }
  const literal = isIP(host) === 0 ? await lookup(host) : { address: host, family: isIP(host) };
  return { host: literal.address, udp: [{ type: literal.family === 6 ? 'udp6' : 'udp4', address: literal.address }] };
}

async function bindUdp(target: BindTarget, port: number): Promise<UdpSocket> {
  let lastError: unknown;
  for (const { type, address } of target.udp) {
    const udp = createSocket({ type, reuseAddr: false });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, address, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      return udp;
    } catch (error) {
      lastError = error;
      udp.close();
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') break;
    }
  }
  throw lastError;
}
