/**
 * Why no token could be had, as the `error` annotation says it:
 * - `invalid_grant`: the authorization server refused the grant (a revoked or rotated-away
 *   refresh token, a wrong password); a person has to fix the credential;
 * - another OAuth `error` code of a 4xx JSON answer (`invalid_client`, `invalid_scope`, ...);
 * - `token_endpoint_http_<n>`: any other non-200 answer (a 5xx, a redirect, a 401 challenge);
 * - `token_endpoint_error`: a 200 answer that is no usable token response;
 * - `mint_failed`: anything else (the endpoint unreachable or refused by the upstream guard, a
 *   credential unavailable, a private key that does not load).
 */
export type MintFailureReason = string;

/** A failed mint, with the reason that goes into the audit record and a detail for the log. */
export class MintError extends Error {
  override readonly name = 'MintError';
  readonly reason: MintFailureReason;
  /** The credential (its source label) that was unavailable, when that is why. */
  readonly credential: string | undefined;

  constructor(reason: MintFailureReason, detail: string, options: { cause?: unknown; credential?: string } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.credential = options.credential;
  }
}

/** Longest server-supplied text kept in a log line. */
export const MAX_DETAIL = 200;

/**
 * A failure that is not already a {@link MintError}, as `mint_failed`. What the token endpoint
 * answered is classified where the grant is sent (`grantFailure`), with oauth4webapi loaded.
 */
export function toMintError(err: unknown): MintError {
  if (err instanceof MintError) return err;
  return new MintError('mint_failed', describe(err), { cause: err });
}

/** An error's message and its cause's (fetch wraps the socket error), never more than a line. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, MAX_DETAIL);
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.message}${cause}`.slice(0, MAX_DETAIL * 2);
}
