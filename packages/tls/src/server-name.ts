/**
 * The name a leaf certificate is minted for, normalized so that every spelling of one name
 * shares one cache entry: lowercase, no trailing dot, IPv6 without brackets and compressed.
 */
import { isIP } from 'node:net';
import { ErrorCodes, ProxyError } from '@proxy/core';

/** A normalized server name and whether it goes into the certificate as a DNS or an IP SAN. */
export interface ServerName {
  readonly name: string;
  readonly kind: 'dns' | 'ip';
}

/** One DNS label: letters, digits, hyphens and underscores (seen in real host names), 1 to 63 long. */
const DNS_NAME = /^[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*$/;
const MAX_DNS_NAME_LENGTH = 253;

/**
 * Normalizes a TLS server name (an SNI value or an IP literal, IPv6 with or without brackets).
 * Throws `TLS_SERVER_NAME_INVALID` for anything that is neither a DNS name nor an IP address
 * (empty, wildcards, spaces, an IPv6 zone, ...).
 */
export function normalizeServerName(serverName: string): ServerName {
  let name = serverName.toLowerCase();
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  switch (isIP(name)) {
    case 4:
      return { name, kind: 'ip' };
    case 6:
      return { name: compressIPv6(name, serverName), kind: 'ip' };
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length > MAX_DNS_NAME_LENGTH || !DNS_NAME.test(name)) throw invalidName(serverName);
  return { name, kind: 'dns' };
}

/** The canonical (RFC 5952) text of an IPv6 address, as the WHATWG URL parser writes it. */
function compressIPv6(address: string, original: string): string {
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    throw invalidName(original);
  }
}

function invalidName(serverName: string): ProxyError {
  return new ProxyError(
    ErrorCodes.TLS_SERVER_NAME_INVALID,
    `cannot mint a certificate for ${JSON.stringify(serverName.slice(0, 300))}: not a DNS name or an IP address`,
    { status: 400 },
  );
}
