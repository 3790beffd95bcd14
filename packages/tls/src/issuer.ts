/**
 * Leaf certificates on demand for TLS interception: one mint per server name however many
 * handshakes ask for it at once, an LRU of ready TLS contexts, and renewal before a cached leaf
 * can lapse.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import { ErrorCodes, ProxyError } from '@proxy/core';
import type { CertificateAuthority } from './authority.js';
import { LeafMinter, type MintedLeaf } from './leaf.js';
import { LruCache } from './lru-cache.js';
import { normalizeServerName, type ServerName } from './server-name.js';

/** Supplies the TLS context a client handshake for `serverName` (DNS name or IP literal) is answered with. */
export interface LeafCertificateSource {
  secureContextFor(serverName: string): Promise<SecureContext>;
}

/** How leaves are minted and kept. */
export interface LeafIssuerOptions {
  /** Validity of a leaf in hours (capped by the CA's own expiry); default 72. */
  readonly lifetimeHours?: number;
  /** How many server names keep their leaf cached; default 1000. */
  readonly cacheSize?: number;
  /** The clock, in milliseconds since the epoch; default `Date.now`. */
  readonly now?: () => number;
}

/** A minted leaf, its TLS context (leaf + CA chain), and when it must be replaced. */
interface CachedLeaf {
  readonly leaf: MintedLeaf;
  readonly secureContext: SecureContext;
  readonly renewAt: number;
}

const HOUR_MS = 60 * 60 * 1000;

/**
 * Mints leaf certificates signed by `ca` and caches their TLS contexts, keyed by the normalized
 * server name. Pass it to the engine's HTTPS and tunnel listeners as their `LeafCertificateSource`.
 */
export class LeafCertificateIssuer implements LeafCertificateSource {
  readonly #ca: CertificateAuthority;
  readonly #minter: LeafMinter;
  readonly #lifetimeMs: number;
  readonly #now: () => number;
  readonly #cache: LruCache<string, CachedLeaf>;
  /** Mints under way, so concurrent requests for one name share one. */
  readonly #minting = new Map<string, Promise<CachedLeaf>>();

  constructor(ca: CertificateAuthority, options: LeafIssuerOptions = {}) {
    const lifetimeHours = options.lifetimeHours ?? 72;
    const cacheSize = options.cacheSize ?? 1000;
    if (!(lifetimeHours > 0) || !Number.isFinite(lifetimeHours)) {
      throw new ProxyError(ErrorCodes.CONFIG_INVALID, `leaf certificate lifetime must be a positive number of hours, got ${lifetimeHours}`);
    }
    if (!Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new ProxyError(ErrorCodes.CONFIG_INVALID, `leaf certificate cache size must be a whole number >= 0, got ${cacheSize}`);
    }
    this.#ca = ca;
    this.#minter = new LeafMinter(ca);
    this.#lifetimeMs = lifetimeHours * HOUR_MS;
    this.#now = options.now ?? Date.now;
    this.#cache = new LruCache(cacheSize);
  }

  /** How many server names have a leaf cached now. */
  get cachedCount(): number {
    return this.#cache.size;
  }

  /**
   * The TLS context (leaf key, leaf + CA chain) for `serverName`, minted on first use. Rejects
   * with `TLS_SERVER_NAME_INVALID` for a name that is neither a DNS name nor an IP address, and
   * with `CA_EXPIRED` once the CA has expired.
   */
  async secureContextFor(serverName: string): Promise<SecureContext> {
    return (await this.#cachedLeafFor(serverName)).secureContext;
  }

  /** Mints (or returns the cached) leaf as PEM (the leaf alone, without the CA); for tests and tooling. */
  async leafFor(serverName: string): Promise<{ certPem: string; keyPem: string; notAfter: Date }> {
    const { leaf } = await this.#cachedLeafFor(serverName);
    return { certPem: leaf.certPem, keyPem: leaf.keyPem, notAfter: leaf.notAfter };
  }

  async #cachedLeafFor(serverName: string): Promise<CachedLeaf> {
    const name = normalizeServerName(serverName);
    const cached = this.#cache.get(name.name);
    if (cached !== undefined && this.#now() < cached.renewAt) return cached;
    const underway = this.#minting.get(name.name);
    if (underway !== undefined) return underway;
    const minting: Promise<CachedLeaf> = this.#mint(name).finally(() => {
      if (this.#minting.get(name.name) === minting) this.#minting.delete(name.name);
    });
    this.#minting.set(name.name, minting);
    return minting;
  }

  async #mint(name: ServerName): Promise<CachedLeaf> {
    const now = this.#now();
    const leaf = await this.#minter.mint(name, { now, lifetimeMs: this.#lifetimeMs });
    const secureContext = createSecureContext({ key: leaf.keyPem, cert: leaf.certPem + this.#ca.certificatePem });
    const entry = { leaf, secureContext, renewAt: renewalTime(now, leaf.notAfter.getTime()) };
    this.#cache.set(name.name, entry);
    return entry;
  }
}

/**
 * When a leaf minted at `mintedAt` is replaced: once less than 10% of its lifetime or one hour
 * remains, whichever is shorter, so a cached leaf is never served close to (or past) expiry.
 */
function renewalTime(mintedAt: number, notAfter: number): number {
  return notAfter - Math.min((notAfter - mintedAt) / 10, HOUR_MS);
}
