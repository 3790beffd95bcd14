import { isIPv6 } from 'node:net';

/** Formats a host for use in a URL or `host:port` string (IPv6 literals get brackets). */
export function hostForUrl(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}
