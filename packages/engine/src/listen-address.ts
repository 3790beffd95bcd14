import { isIP } from 'node:net';
import { ErrorCodes, ProxyError } from '@proxy/core';

/** Where a listener binds. */
export interface ListenAddress {
  /** Interface address; undefined binds every interface. */
  readonly host: string | undefined;
  readonly port: number;
}

/**
 * Parses a listen string: `":8080"` (every interface), `"127.0.0.1:0"`, `"[::1]:0"`,
 * `"localhost:8080"`. Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) naming the value.
 */
export function parseListenAddress(value: string, field: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (!m || port > 65535 || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    throw new ProxyError(ErrorCodes.CONFIG_INVALID, `${field}: invalid listen address "${value}" (expected host:port, :port or [ipv6]:port)`);
  }
  return { host: host === '' ? undefined : host, port };
}
