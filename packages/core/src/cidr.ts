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
 *
 * {@link match} is the strict match rules use; {@link matchWithEmbedded} also looks inside the
 * IPv6 spellings that embed an IPv4 address, for deny lists.
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

  /**
   * The deny-direction match: like {@link match}, and an IPv6 address also matches when an
   * IPv4 address it embeds is in the set. The embedded address is extracted from every
   * spelling that carries one ({@link Ipv4Embedding}), so `64:ff9b::a9fe:a9fe` (NAT64),
   * `2002:a9fe:a9fe::1` (6to4) and `::169.254.169.254` (IPv4-compatible) all match
   * `169.254.0.0/16`. Use it to refuse addresses, never to allow them: an allowlist matched
   * this way would let an IPv6 address through on the strength of an IPv4 address it merely
   * contains. Undefined when neither the address nor an address it embeds is in the set.
   */
  matchWithEmbedded(address: string): CidrMatch | undefined {
    const parsed = parseIp(address);
    if (parsed === undefined) return undefined;
    if (parsed.kind() === 'ipv4') {
      const range = this.matchParsed(parsed);
      if (range === undefined) return undefined;
      // parseIp unmaps `::ffff:a.b.c.d`: say so when that is how the address was written.
      return address.includes(':') ? { range, embedded: { address: parsed.toString(), embedding: 'ipv4-mapped' } } : { range };
    }
    const direct = this.matchParsed(parsed);
    if (direct !== undefined) return { range: direct };
    for (const embedded of embeddedIpv4(parsed as ipaddr.IPv6)) {
      const range = this.matchParsed(embedded.ipv4);
      if (range !== undefined) return { range, embedded: { address: embedded.ipv4.toString(), embedding: embedded.embedding } };
    }
    return undefined;
  }

  /**
   * True when one range of the set holds every address of `cidr` (e.g. a deny list holding
   * `10.0.0.0/8` contains `10.0.0.0/8` and `10.1.0.0/16`). Ranges that only cover `cidr`
   * together are not counted. Throws like {@link CidrSet.parse} for a malformed `cidr`.
   */
  containsRange(cidr: string): boolean {
    const wanted = parseRange(cidr);
    const kind = wanted.network.kind();
    return this.#ranges.some(
      (range) => range.network.kind() === kind && range.prefix <= wanted.prefix && wanted.network.match(range.network, range.prefix),
    );
  }
}

/**
 * How an IPv6 address carries an IPv4 address:
 * - `ipv4-mapped`: `::ffff:a.b.c.d` (`::ffff:0:0/96`, the low 32 bits);
 * - `ipv4-compatible`: `::a.b.c.d` (`::/96`, deprecated by RFC 4291, the low 32 bits);
 * - `nat64`: the NAT64 well-known prefix `64:ff9b::/96` (RFC 6052, the low 32 bits);
 * - `6to4`: `2002::/16` (RFC 3056, bits 16 to 47);
 * - `teredo-server`, `teredo-client`: `2001::/32` (RFC 4380): the server address in bits 32
 *   to 63, the client address in the low 32 bits with every bit inverted.
 */
export type Ipv4Embedding = 'ipv4-mapped' | 'ipv4-compatible' | 'nat64' | '6to4' | 'teredo-server' | 'teredo-client';

/** A range {@link CidrSet.matchWithEmbedded} found, and the embedded IPv4 address that fell in it. */
export interface CidrMatch {
  /** The range, as written. */
  readonly range: string;
  /** Set when the range holds an IPv4 address the IPv6 address embeds rather than the address itself. */
  readonly embedded?: {
    /** The embedded IPv4 address, dotted-quad. */
    readonly address: string;
    readonly embedding: Ipv4Embedding;
  };
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
  const hex = hexIpv6(s);
  if (hex === undefined || !ipaddr.IPv6.isValid(hex)) return undefined;
  const v6 = ipaddr.IPv6.parse(hex);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/**
 * An IPv6 literal with a dotted-quad tail (`::ffff:127.0.0.1`) rewritten in hex groups
 * (`::ffff:7f00:1`); other text unchanged; undefined when the tail is not a canonical IPv4
 * address. ipaddr.js alone would read `::a.b.c.d` as `::ffff:a.b.c.d`, while the operating
 * system dials it as the IPv4-compatible `::a.b.c.d`: the address checked must be the one dialled.
 */
function hexIpv6(text: string): string | undefined {
  const tail = /^(.*:)([^:%]*\.[^:%]*)(%.*)?$/.exec(text);
  if (tail === null) return text;
  const [, head = '', dotted = '', zone = ''] = tail;
  if (!ipaddr.IPv4.isValidFourPartDecimal(dotted)) return undefined;
  const [a = 0, b = 0, c = 0, d = 0] = ipaddr.IPv4.parse(dotted).octets;
  return `${head}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}${zone}`;
}

/** The IPv4 addresses an IPv6 address embeds (IPv4-mapped addresses were unmapped by parseIp). */
function embeddedIpv4(address: ipaddr.IPv6): { ipv4: ipaddr.IPv4; embedding: Ipv4Embedding }[] {
  const [p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0] = address.parts;
  const ipv4 = (high: number, low: number): ipaddr.IPv4 => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  const middleZero = p2 === 0 && p3 === 0 && p4 === 0 && p5 === 0;
  if (p0 === 0 && p1 === 0 && middleZero) return [{ ipv4: ipv4(p6, p7), embedding: 'ipv4-compatible' }];
  if (p0 === 0x64 && p1 === 0xff9b && middleZero) return [{ ipv4: ipv4(p6, p7), embedding: 'nat64' }];
  if (p0 === 0x2002) return [{ ipv4: ipv4(p1, p2), embedding: '6to4' }];
  if (p0 === 0x2001 && p1 === 0) {
    return [
      { ipv4: ipv4(p2, p3), embedding: 'teredo-server' },
      { ipv4: ipv4(p6 ^ 0xffff, p7 ^ 0xffff), embedding: 'teredo-client' },
    ];
  }
  return [];
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
