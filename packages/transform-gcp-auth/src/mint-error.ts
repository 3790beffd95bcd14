import { KeyfileError } from './keyfile.js';

/**
 * Why no token could be had, as the `error` annotation says it:
 * - `keyfile_unavailable`: the keyfile's secret source has no value (yet, or any more);
 * - `keyfile_invalid`: the keyfile is not a usable service-account keyfile;
 * - the OAuth `error` code of the token endpoint's refusal (`invalid_grant`, `invalid_scope`, ...);
 * - `token_endpoint_http_<n>`: any other non-200 answer;
 * - `mint_failed`: anything else (the endpoint unreachable or refused by the upstream guard, a
 *   timeout, no Application Default Credentials).
 */
export class MintError extends Error {
  override readonly name = 'MintError';
  readonly reason: string;
  /** The keyfile source's label, when it was unavailable. */
  readonly credential: string | undefined;

  constructor(reason: string, detail: string, options: { cause?: unknown; credential?: string } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.credential = options.credential;
  }
}

/** OAuth error codes are ASCII words; anything else a server sends is not copied into the audit record. */
const OAUTH_ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Longest server-supplied text kept in a log line. */
const MAX_DETAIL = 300;

/**
 * The brand gaxios puts on its errors (its `GAXIOS_ERROR_SYMBOL`, what its `instanceof` checks),
 * read by key so that classifying an error does not load google-auth-library.
 */
const GAXIOS_ERROR = Symbol.for('gaxios-gaxios-error');

/** An error gaxios threw for an HTTP answer it did not accept. */
interface GaxiosResponseError extends Error {
  readonly response: { readonly status: number; readonly data: unknown };
}

function isGaxiosResponseError(err: unknown): err is GaxiosResponseError {
  return err instanceof Error && GAXIOS_ERROR in err && typeof (err as { response?: { status?: unknown } }).response?.status === 'number';
}

/** Classifies what minting threw (google-auth-library, gaxios, the keyfile parser). */
export function toMintError(err: unknown): MintError {
  if (err instanceof MintError) return err;
  if (err instanceof KeyfileError) return new MintError('keyfile_invalid', err.message, { cause: err });
  if (isGaxiosResponseError(err)) {
    const data: unknown = err.response.data;
    const code = typeof data === 'object' && data !== null ? (data as Record<string, unknown>).error : undefined;
    if (typeof code === 'string' && OAUTH_ERROR_CODE.test(code)) {
      return new MintError(code, `the token endpoint answered ${err.response.status}: ${err.message.slice(0, MAX_DETAIL)}`, { cause: err });
    }
    return new MintError(`token_endpoint_http_${err.response.status}`, `the token endpoint answered ${err.response.status}`, { cause: err });
  }
  const message = err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
  return new MintError('mint_failed', message.slice(0, MAX_DETAIL), { cause: err });
}
