/**
 * What minting a token yields or fails with, without the AWS SDK: the transform's request path
 * and cache use these, and the SDK is loaded only when a transform is created.
 */

/** A web-identity token and when it expires (ms since the epoch). */
export interface MintedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/** Why a token could not be minted, reduced to what may be logged, counted and audited. */
export class TokenMintError extends Error {
  /**
   * The AWS error code (`AccessDenied`, `OutboundWebIdentityFederationDisabledException`, ...),
   * `transport` when STS could not be reached or answered (network, DNS, credentials chain,
   * timeout), or `invalid_response` when STS answered without a token or without a valid
   * `Expiration` (a token whose lifetime is unknown is not cached on a guess).
   */
  readonly errorClass: string;

  constructor(errorClass: string, options: { cause?: unknown } = {}) {
    super(`GetWebIdentityToken failed: ${errorClass}`, options);
    this.name = 'TokenMintError';
    this.errorClass = errorClass;
  }
}
