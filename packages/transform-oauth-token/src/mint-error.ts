import * as oauth from 'oauth4webapi';

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

/** OAuth error codes are ASCII words; anything else a server sends is not copied into the audit record. */
const OAUTH_ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Longest server-supplied text kept in a log line. */
const MAX_DETAIL = 200;

/** Classifies what a grant request threw (from oauth4webapi, the HTTP client or the key import). */
export function toMintError(err: unknown): MintError {
  if (err instanceof MintError) return err;
  if (err instanceof oauth.ResponseBodyError) {
    const code = OAUTH_ERROR_CODE.test(err.error) ? err.error : 'token_endpoint_error';
    const description = err.error_description === undefined ? '' : `: ${err.error_description.slice(0, MAX_DETAIL)}`;
    return new MintError(code, `the token endpoint answered ${err.status} ${err.error}${description}`, { cause: err });
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    return new MintError(`token_endpoint_http_${err.status}`, `the token endpoint answered ${err.status} with an authentication challenge`, { cause: err });
  }
  if (err instanceof oauth.OperationProcessingError && err.code === oauth.RESPONSE_IS_NOT_CONFORM && err.cause instanceof Response) {
    return new MintError(`token_endpoint_http_${err.cause.status}`, `the token endpoint answered ${err.cause.status}`, { cause: err });
  }
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) {
    return new MintError('token_endpoint_error', `the token endpoint's answer is not a usable token response: ${err.message}`, { cause: err });
  }
  return new MintError('mint_failed', describe(err), { cause: err });
}

/** An error's message and its cause's (fetch wraps the socket error), never more than a line. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, MAX_DETAIL);
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.message}${cause}`.slice(0, MAX_DETAIL * 2);
}
