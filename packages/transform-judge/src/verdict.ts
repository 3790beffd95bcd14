/** Reading the model's answer: a bare (or fenced) JSON object whose `decision` is ALLOW or DENY. */

/** A well-formed answer. */
export interface Verdict {
  readonly decision: 'ALLOW' | 'DENY';
  readonly reason: string;
}

/** Longest `judge.reason` kept. */
export const MAX_REASON_CHARS = 512;

const FENCE = /^```[A-Za-z]*\s*\n?([\s\S]*?)\n?\s*```$/;

/**
 * Parses the model output: trims it, strips one surrounding ```` ``` ```` or ```` ```json ````
 * fence, decodes the JSON object and upper-cases `decision`. Anything else (prose, a decision
 * other than ALLOW/DENY, a non-object) is undefined: a failure, never a guess.
 */
export function parseVerdict(output: string): Verdict | undefined {
  let text = output.trim();
  const fenced = FENCE.exec(text);
  if (fenced !== null) text = fenced[1]!.trim();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { decision, reason } = value as { decision?: unknown; reason?: unknown };
  if (typeof decision !== 'string') return undefined;
  const upper = decision.trim().toUpperCase();
  if (upper !== 'ALLOW' && upper !== 'DENY') return undefined;
  return { decision: upper, reason: typeof reason === 'string' ? truncateChars(reason, MAX_REASON_CHARS) : '' };
}

/** `text` cut to `max` characters (code points). */
export function truncateChars(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, max).join('');
}
