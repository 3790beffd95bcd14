import { createHash } from 'node:crypto';
import type { Clock, SecretHandle } from '@proxy/core';
import type { CredentialField } from './config.js';
import type { MintedToken } from './grants.js';
import { MintError } from './mint-error.js';

/** Most time before expiry at which a cached token is replaced. */
export const EXPIRY_SKEW_MS = 30_000;

/** What one mint gets: the credential values read from their sources, and the endpoint headers. */
export interface MintInput {
  readonly credentials: Readonly<Partial<Record<CredentialField, string>>>;
  readonly headers: Readonly<Record<string, string>>;
}

/** What {@link TokenSource} needs. */
export interface TokenSourceOptions {
  /** The entry's credential sources, by field. */
  readonly credentials: ReadonlyMap<CredentialField, SecretHandle>;
  /** The `token_endpoint_headers` sources, by header name. */
  readonly headers: ReadonlyMap<string, SecretHandle>;
  readonly clock: Clock;
  /** Posts the grant. Runs on the transform's lifetime, detached from the request that asked. */
  mint(input: MintInput): Promise<MintedToken>;
  /** Called when a credential value changed and the cached token was dropped. */
  onRotated?(): void;
}

/** How a token was served: from the cache, or minted for this request (or one it joined). */
export type TokenOutcome = 'hit' | 'miss';

/**
 * The access token of one `tokens[]` entry.
 *
 * - A token is cached until it is within {@link EXPIRY_SKEW_MS} (at most half its lifetime) of
 *   its expiry, by the injected clock; one without `expires_in` is kept until a credential
 *   changes.
 * - Concurrent requests that find no usable token share one mint.
 * - Every call reads the credentials from their sources and compares a SHA-256 fingerprint of
 *   them (not the values) with the one the cache was minted with: a rotated value drops the
 *   cached token (and an in-flight mint's result), so the next token is minted with it.
 * - A refresh token the endpoint rotates is used for the next exchange, in memory only, until
 *   the source's own refresh token changes (another rotated credential keeps it).
 * - A credential whose source is unavailable fails the call with `mint_failed`.
 */
export class TokenSource {
  readonly #options: TokenSourceOptions;
  #fingerprint: string | undefined;
  #token: MintedToken | undefined;
  #rotatedRefreshToken: string | undefined;
  /** Fingerprint of the source's refresh token the rotated one descends from. */
  #rotatedFrom: string | undefined;
  #inflight: Promise<MintedToken> | undefined;

  constructor(options: TokenSourceOptions) {
    this.#options = options;
  }

  /** A usable access token. Rejects with a {@link MintError} when none can be had. */
  async token(): Promise<{ token: string; outcome: TokenOutcome }> {
    const input = this.#read();
    const fingerprint = fingerprintOf(input);
    if (fingerprint !== this.#fingerprint) {
      const rotated = this.#fingerprint !== undefined;
      this.#fingerprint = fingerprint;
      this.#token = undefined;
      this.#inflight = undefined;
      if (rotated) this.#options.onRotated?.();
    }
    const cached = this.#token;
    if (cached !== undefined && this.#usable(cached)) return { token: cached.accessToken, outcome: 'hit' };
    const minted = await (this.#inflight ?? this.#mint(input, fingerprint));
    return { token: minted.accessToken, outcome: 'miss' };
  }

  /** Forgets the cached token. */
  clear(): void {
    this.#token = undefined;
    this.#rotatedRefreshToken = undefined;
    this.#rotatedFrom = undefined;
    this.#inflight = undefined;
  }

  #usable(token: MintedToken): boolean {
    if (token.expiresAt === undefined) return true;
    const skew = Math.min(EXPIRY_SKEW_MS, (token.expiresAt - token.mintedAt) / 2);
    return this.#options.clock.now() < token.expiresAt - skew;
  }

  #mint(input: MintInput, fingerprint: string): Promise<MintedToken> {
    // The rotated refresh token replaces the source's as long as the source still holds the one
    // it descends from: a new client secret keeps it, a new refresh token in the store does not.
    const source = input.credentials.refresh_token;
    const from = source === undefined ? undefined : fingerprintOf({ credentials: { refresh_token: source }, headers: {} });
    const refreshToken = from !== undefined && from === this.#rotatedFrom ? this.#rotatedRefreshToken : undefined;
    const credentials = refreshToken === undefined ? input.credentials : { ...input.credentials, refresh_token: refreshToken };
    const inflight = this.#options
      .mint({ credentials, headers: input.headers })
      .then((minted) => {
        // A credential that changed meanwhile makes this token stale: it is handed to the
        // requests that waited for it, but not cached.
        if (this.#fingerprint === fingerprint) {
          this.#token = minted;
          if (minted.refreshToken !== undefined && from !== undefined) {
            this.#rotatedRefreshToken = minted.refreshToken;
            this.#rotatedFrom = from;
          }
        }
        return minted;
      })
      .finally(() => {
        if (this.#inflight === inflight) this.#inflight = undefined;
      });
    this.#inflight = inflight;
    return inflight;
  }

  /** The current values of every source; throws `mint_failed` naming the first unavailable one. */
  #read(): MintInput {
    const credentials: Partial<Record<CredentialField, string>> = {};
    for (const [field, handle] of this.#options.credentials) credentials[field] = valueOf(handle, field);
    const headers: Record<string, string> = {};
    for (const [name, handle] of this.#options.headers) headers[name] = valueOf(handle, `token_endpoint_headers.${name}`);
    return { credentials, headers };
  }
}

function valueOf(handle: SecretHandle, field: string): string {
  if (!handle.available) {
    throw new MintError('mint_failed', `credential ${field} (${handle.type} ${handle.label}) is unavailable`, { credential: handle.label });
  }
  try {
    return handle.value();
  } catch (err) {
    throw new MintError('mint_failed', `credential ${field} (${handle.type} ${handle.label}) is unavailable`, { cause: err, credential: handle.label });
  }
}

/** SHA-256 over every name and value, each length-prefixed so that no two inputs collide by concatenation. */
function fingerprintOf(input: MintInput): string {
  const hash = createHash('sha256');
  const add = (text: string): void => {
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length).update(bytes);
  };
  for (const [field, value] of Object.entries(input.credentials)) {
    add(field);
    add(value);
  }
  for (const [name, value] of Object.entries(input.headers)) {
    add(`header:${name}`);
    add(value);
  }
  return hash.digest('base64url');
}
