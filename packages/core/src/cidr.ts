/**
 * A set of CIDR ranges (IPv4 and IPv6). IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are
 * matched as the IPv4 address they carry, so a deny list cannot be sidestepped by spelling.
 */
export class CidrSet {
  /** Parses CIDRs; throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) naming a bad entry. */
  static parse(cidrs: readonly string[]): CidrSet {
    void cidrs;
    throw new Error('TODO(core): CidrSet.parse');
  }

  /** True when `address` (an IP literal) falls in any range. Non-IP input is false. */
  contains(address: string): boolean {
    void address;
    throw new Error('TODO(core): CidrSet.contains');
  }

  /** The first range containing `address`, as written, or undefined. */
  match(address: string): string | undefined {
    void address;
    throw new Error('TODO(core): CidrSet.match');
  }
}

/** True when `host` is an IPv4 or IPv6 literal (brackets allowed). */
export function isIpLiteral(host: string): boolean {
  void host;
  throw new Error('TODO(core): isIpLiteral');
}
