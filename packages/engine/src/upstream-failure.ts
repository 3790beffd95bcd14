import { ProxyError } from '@proxy/core';
import type { UpstreamErrorType } from './http-metrics.js';
import { DeniedDialError } from './upstream-guard.js';

/** How the engine answers a request whose upstream could not be reached or did not answer. */
export interface UpstreamFailure {
  readonly status: number;
  /** Audit reason: `upstream_timeout`, `upstream_unreachable`, `upstream_denied`, ... */
  readonly reason: string;
  /** Short client-facing text. */
  readonly message: string;
  /** The engine stage that refused the request (`upstream_guard` for a denied address). */
  readonly rejectedBy: string | undefined;
  /** The error's stable code (ours, undici's or the socket's), for the operational log. */
  readonly code: string;
  /** The guard's own description (names the address and the range), for the operational log only. */
  readonly detail: string | undefined;
  /** The `error.type` of the failed upstream call; undefined when the guard refused to dial (no call was made). */
  readonly errorType: UpstreamErrorType | undefined;
}

const MESSAGES: Readonly<Record<string, string>> = {
  upstream_denied: 'upstream address denied',
  forwarding_loop: 'forwarding loop: the destination is this proxy',
  upstream_resolve_failed: 'upstream name did not resolve',
  upstream_unreachable: 'upstream unreachable',
  upstream_tls: 'upstream TLS verification failed',
  upstream_timeout: 'upstream timed out',
  upstream_error: 'upstream error',
};

/** Reasons of the guard refusing to dial at all: policy decisions, not failed calls. */
const GUARD_REFUSALS = new Set(['upstream_denied', 'forwarding_loop']);

/** Codes answered 504: the response head did not arrive in time. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT']);

/** Codes, anywhere in the cause chain, that make a failed call's `error.type` `timeout`. */
const TIMED_OUT_CAUSE_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** How deep {@link errorTypeOf} follows `cause`. */
const MAX_CAUSE_DEPTH = 5;

/**
 * Maps a failure of the upstream leg (a guard `ProxyError`, an undici error, a socket error)
 * to the status, reason and text the client and the audit record get. Never echoes the
 * error's own message, which may name internal addresses.
 */
export function describeUpstreamFailure(err: unknown): UpstreamFailure {
  const code = codeOf(err);
  if (err instanceof ProxyError) {
    const refused = GUARD_REFUSALS.has(err.reason);
    return {
      status: err.status,
      reason: err.reason,
      message: MESSAGES[err.reason] ?? 'upstream error',
      // iron-proxy's form of a denied address is a failed dial (audit action `error`), not a rejection.
      rejectedBy: refused && !(err instanceof DeniedDialError) ? 'upstream_guard' : undefined,
      code,
      detail: err.message,
      errorType: refused ? undefined : errorTypeOf(err),
    };
  }
  const errorType = errorTypeOf(err);
  if (TIMEOUT_CODES.has(code)) {
    return { status: 504, reason: 'upstream_timeout', message: MESSAGES.upstream_timeout!, rejectedBy: undefined, code, detail: undefined, errorType };
  }
  return { status: 502, reason: 'upstream_error', message: MESSAGES.upstream_error!, rejectedBy: undefined, code, detail: undefined, errorType };
}

/**
 * Classifies a failed upstream call: `timeout` (no answer in time: connect, TLS handshake or
 * response head), `connection_refused`, or `unknown` for anything else (DNS, TLS, reset...).
 */
function errorTypeOf(err: unknown): UpstreamErrorType {
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined; depth++) {
    if (current instanceof ProxyError && current.reason === 'upstream_timeout') return 'timeout';
    const code = codeOf(current);
    if (code === 'ECONNREFUSED') return 'connection_refused';
    if (TIMED_OUT_CAUSE_CODES.has(code)) return 'timeout';
    current = current instanceof Error ? current.cause : undefined;
  }
  return 'unknown';
}

function codeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'unknown';
}
