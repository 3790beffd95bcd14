import ipaddr from 'ipaddr.js';
import { ErrorCodes, ProxyError } from './errors.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** One parsed range, IPv4 or IPv6, with the text it was written as. */
interface Range {
  readonly written: string;
  readonly network: Address;
  readonly prefix: number;
}

/**
 * A set of CIDR ranges (IPv4 and IPv6). IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are
 * matched as the IPv4 address they carry, so a deny list cannot be sidestepped by spelling.
 * Likewise an IPv4-mapped IPv6 range (`::ffff:127.0.0.0/104`) is the IPv4 range it maps.
 *
 * Only canonical literals are addresses: dotted-quad IPv4 (`127.0.0.1`, not `127.1` or
 * `0x7f.0.0.1`) and IPv6 (brackets and a zone id allowed). Anything else is not an IP.
 */
export class CidrSet {
  readonly #ranges: readonly Range[];

  private constructor(ranges: readonly Range[]) {
    this.#ranges = ranges;
  }

  /** Parses CIDRs; throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) naming a bad entry. */
  static parse(cidrs: readonly string[]): CidrSet {
    return new CidrSet(cidrs.map(parseRange));
  }

  /** Number of ranges in the set. */
  get size(): number {
    return this.#ranges.length;
  }

  /** True when `address` (an IP literal) falls in any range. Non-IP input is false. */
  contains(address: string): boolean {
    return this.match(address) !== undefined;
  }

  /** The first range containing `address`, as written, or undefined. */
  match(address: string): string | undefined {
    const parsed = parseIp(address);
    return parsed === undefined ? undefined : this.matchParsed(parsed);
  }

  /** {@link match} for an address already parsed with {@link parseIp}. */
  matchParsed(address: Address): string | undefined {
    const kind = address.kind();
    for (const range of this.#ranges) {
      if (range.network.kind() === kind && address.match(range.network, range.prefix)) return range.written;
    }
    return undefined;
  }
}

/** True when `host` is an IPv4 or IPv6 literal (brackets allowed). */
export function isIpLiteral(host: string): boolean {
  return parseIp(host) !== undefined;
}

/**
 * Parses a canonical IP literal (brackets allowed, surrounding whitespace ignored). An
 * IPv4-mapped IPv6 address comes back as its IPv4 address. Undefined when not an IP.
 * Results are shared between callers (rules and the allowlist match the same destination on
 * every request): treat them as read-only.
 */
export function parseIp(text: string): Address | undefined {
  const cached = parsedIps.get(text);
  if (cached !== undefined) return cached ?? undefined;
  const parsed = parseIpText(text);
  if (parsedIps.size >= PARSED_IP_CACHE_SIZE) parsedIps.clear();
  parsedIps.set(text, parsed ?? null);
  return parsed;
}

/** Parsed literals by text (`null`: not an IP); emptied when full, so it stays bounded. */
const parsedIps = new Map<string, Address | null>();
const PARSED_IP_CACHE_SIZE = 1024;

function parseIpText(text: string): Address | undefined {
  let s = text.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s);
  if (!ipaddr.IPv6.isValid(s)) return undefined;
  const v6 = ipaddr.IPv6.parse(s);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

function parseRange(cidr: string): Range {
  const bad = (why: string): ProxyError =>
    new ProxyError(ErrorCodes.CONFIG_INVALID, `invalid CIDR "${cidr}": ${why}`, { reason: 'config_invalid' });
  const slash = cidr.lastIndexOf('/');
  if (slash < 0) throw bad('expected address/prefix, e.g. 10.0.0.0/8');
  const prefixText = cidr.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(prefixText)) throw bad('the prefix length must be a number');
  const network = parseIp(cidr.slice(0, slash));
  if (network === undefined) throw bad('not an IPv4 or IPv6 address');
  let prefix = Number(prefixText);
  const v6Written = cidr.includes(':');
  if (network.kind() === 'ipv4' && v6Written) {
    // An IPv4-mapped IPv6 range: only the low 32 bits select IPv4 addresses.
    if (prefix < 96 || prefix > 128) throw bad('an IPv4-mapped IPv6 range needs a prefix between 96 and 128');
    prefix -= 96;
  } else if (prefix > (network.kind() === 'ipv4' ? 32 : 128)) {
    throw bad(`prefix /${prefix} is too long for an ${network.kind() === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
  }
  return { written: cidr, network, prefix };
}
