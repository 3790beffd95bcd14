/**
 * What oauth4webapi throws for a token endpoint's answer, as a {@link MintError} reason. This
 * module is loaded with the grant code, when the first token is minted.
 */
import * as oauth from 'oauth4webapi';
import { MAX_DETAIL, MintError, toMintError } from './mint-error.js';

/** OAuth error codes are ASCII words; anything else a server sends is not copied into the audit record. */
const OAUTH_ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Classifies what a grant request threw (from oauth4webapi, the HTTP client or the key import). */
export function grantFailure(err: unknown): MintError {
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
  return toMintError(err);
}
