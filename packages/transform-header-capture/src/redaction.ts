/**
 * Which request headers carry credentials: `header_capture` records that such a header was
 * present, never its value. The built-in list below always applies; a config's
 * `redact_headers` adds to it and cannot take anything away.
 */
import { compileHeaderPatterns, type HeaderPatternSet } from '@proxy/core';

/**
 * Header patterns (literal names and `/regex/` entries, as in `headers`) always redacted: the
 * standard credential headers, and any name with a word that says credential in it
 * (`X-Api-Key`, `X-Auth-Token`, `X-Amz-Security-Token`, `Private-Token`, `X-Hub-Signature`...).
 */
export const DEFAULT_REDACTED_HEADERS: readonly string[] = Object.freeze([
  'Authorization',
  'Proxy-Authorization',
  'Cookie',
  'Set-Cookie',
  'X-Api-Key',
  '/(^|-)(auth|authorization|apikey|key|token|secret|password|passwd|pass|session|cookie|credential|credentials|signature|jwt|bearer)(-|$)/',
]);

/** The text recorded in place of a redacted header's value. */
export const REDACTED = '[redacted]';

/** Compiles the built-in list plus the configured extra patterns. */
export function compileRedaction(extra: readonly string[]): HeaderPatternSet {
  return compileHeaderPatterns([...DEFAULT_REDACTED_HEADERS, ...extra]);
}
