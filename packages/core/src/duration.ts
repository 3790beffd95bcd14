import { ErrorCodes, ProxyError } from './errors.js';
import type { JsonSchema } from './schema.js';

/** Schema of a duration string such as `30s`, `5m`, `1h30m`, `250ms` (Go syntax). */
export const durationSchema: JsonSchema = Object.freeze({ type: 'string', format: 'duration' });

/** Milliseconds per unit, for every unit Go's `time.ParseDuration` knows. */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** One `<number><unit>` term, anchored at the current position. */
const TERM = /(\d+\.?\d*|\.\d+)([a-zµμ]+)/y;

/**
 * Parses a Go-style duration (`300ms`, `1.5s`, `5m`, `1h30m`, `0`) into milliseconds.
 * Throws a `ProxyError` with code `PROXY_ERR_DURATION_INVALID` on anything else: empty text,
 * a sign, a bare number other than `0`, an unknown unit.
 */
export function parseDuration(text: string): number {
  const invalid = (why: string): ProxyError =>
    new ProxyError(ErrorCodes.DURATION_INVALID, `invalid duration ${JSON.stringify(text)}: ${why}`, { reason: 'duration_invalid' });
  if (text === '0') return 0;
  if (text.length === 0) throw invalid('empty');
  if (text.startsWith('-')) throw invalid('must not be negative');
  let total = 0;
  let at = 0;
  while (at < text.length) {
    TERM.lastIndex = at;
    const m = TERM.exec(text);
    if (m === null) {
      throw invalid(/^[\d.]+$/.test(text.slice(at)) ? 'missing unit (ns, us, ms, s, m, h)' : `unexpected ${JSON.stringify(text.slice(at))}`);
    }
    const perUnit = UNIT_MS[m[2]!];
    if (perUnit === undefined) throw invalid(`unknown unit ${JSON.stringify(m[2])} (ns, us, ms, s, m, h)`);
    total += Number(m[1]) * perUnit;
    at = TERM.lastIndex;
  }
  if (!Number.isFinite(total)) throw invalid('too large');
  return total;
}
