/**
 * Keeps secret values out of everything the proxy writes. Every value a secret source fetches
 * (and every credential a transform mints) is registered here; log lines and audit records are
 * passed through {@link SecretRedactor.redact} as they are written, so a secret that reached an
 * annotation, a log field or a rewritten path is replaced by `[redacted:<label>]`, whatever the
 * order of the transforms that put it there.
 *
 * Besides the value as is, the spellings a value takes on its way through the proxy are
 * recognised: JSON-escaped (as a log line holds it), percent-encoded (a query or a path) and
 * base64 at any alignment (inside `Authorization: Basic` credentials, where the base64 run that
 * carries it is redacted whole).
 */
export class SecretRedactor {
  /** Registered values by value, oldest first (a `Map` keeps insertion order). */
  readonly #secrets = new Map<string, Registered>();
  readonly #capacity: number;

  /**
   * `capacity`: how many values are remembered; the oldest are forgotten first (a rotated
   * secret stays redacted until that many newer values were registered).
   */
  constructor(capacity = DEFAULT_CAPACITY) {
    this.#capacity = capacity;
  }

  /** Number of values remembered. */
  get size(): number {
    return this.#secrets.size;
  }

  /**
   * Remembers `value` as a secret named `label` (its env var, its secret id: never the value).
   * Values shorter than {@link MIN_SECRET_LENGTH} characters are not remembered: redacting them
   * would erase ordinary text everywhere; `add` returns false for them so the caller can warn.
   */
  add(value: string, label: string): boolean {
    if (value.length < MIN_SECRET_LENGTH) return false;
    const known = this.#secrets.get(value);
    if (known !== undefined) {
      // Seen again: it is among the newest now.
      this.#secrets.delete(value);
      this.#secrets.set(value, known);
      return true;
    }
    this.#secrets.set(value, { replacement: `[redacted:${safeLabel(label)}]`, ...spellingsOf(value) });
    if (this.#secrets.size > this.#capacity) this.#secrets.delete(this.#secrets.keys().next().value!);
    return true;
  }

  /** `text` with every remembered secret, in every spelling, replaced by `[redacted:<label>]`. */
  redact(text: string): string {
    if (this.#secrets.size === 0) return text;
    let out = text;
    for (const secret of this.#secrets.values()) {
      for (const spelling of secret.literal) {
        if (out.includes(spelling)) out = out.split(spelling).join(secret.replacement);
      }
      for (const segment of secret.base64) {
        if (out.includes(segment)) out = redactBase64Runs(out, segment, secret.replacement);
      }
    }
    return out;
  }
}

/** Values shorter than this are not treated as secrets (see {@link SecretRedactor.add}). */
export const MIN_SECRET_LENGTH = 6;

/** Shortest base64 segment searched for: shorter ones would match ordinary base64 by chance. */
const MIN_BASE64_SEGMENT = 8;

const DEFAULT_CAPACITY = 4096;

interface Registered {
  readonly replacement: string;
  /** Spellings replaced as they are: the value, JSON-escaped, percent-encoded, form-encoded. */
  readonly literal: readonly string[];
  /** The base64 characters that depend only on the value, at each of the three alignments (standard and URL-safe alphabets). */
  readonly base64: readonly string[];
}

function spellingsOf(value: string): Pick<Registered, 'literal' | 'base64'> {
  const literal = new Set<string>([value, JSON.stringify(value).slice(1, -1)]);
  try {
    const percent = encodeURIComponent(value);
    literal.add(percent);
    literal.add(percent.replace(/%20/g, '+'));
    // Log lines escape what JSON must: a percent-encoded value holds nothing JSON escapes.
  } catch {
    // A lone surrogate cannot be percent-encoded; the value itself is still redacted.
  }
  for (const spelling of [...literal]) literal.add(JSON.stringify(spelling).slice(1, -1));
  const base64 = new Set<string>();
  const bytes = Buffer.from(value, 'utf8');
  for (let offset = 0; offset < 3; offset++) {
    const segment = alignedBase64(bytes, offset);
    if (segment.length >= MIN_BASE64_SEGMENT) {
      base64.add(segment);
      base64.add(segment.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  return { literal: [...literal].sort((a, b) => b.length - a.length), base64: [...base64] };
}

/**
 * The base64 characters that encode only bytes of `bytes` when it starts `offset` bytes into
 * an encoded text: whatever precedes or follows it, these characters are always the same.
 */
function alignedBase64(bytes: Buffer, offset: number): string {
  const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64').replace(/=+$/, '');
  // Characters touching the `offset` filler bytes at the start, or the unknown bytes after the
  // value at the end, change with the surrounding text: drop them.
  const start = Math.ceil((offset * 8) / 6);
  const end = Math.floor(((offset + bytes.length) * 8) / 6);
  return encoded.slice(start, end);
}

/** A base64 character (either alphabet); `=` only ends a run, so it is taken on the right alone. */
const BASE64_CHAR = /[A-Za-z0-9+/_-]/;

/** Replaces every base64 run of `text` that contains `segment` by `replacement`. */
function redactBase64Runs(text: string, segment: string, replacement: string): string {
  let out = '';
  let from = 0;
  for (let at = text.indexOf(segment); at >= 0; at = text.indexOf(segment, from)) {
    let start = at;
    while (start > from && BASE64_CHAR.test(text[start - 1]!)) start--;
    let end = at + segment.length;
    while (end < text.length && BASE64_CHAR.test(text[end]!)) end++;
    while (end < text.length && text[end] === '=') end++;
    out += text.slice(from, start) + replacement;
    from = end;
  }
  return out + text.slice(from);
}

/** A label fit to stand in a log line: printable, no quotes or backslashes, bounded. */
function safeLabel(label: string): string {
  return label.replace(/[^A-Za-z0-9_.:/@-]/g, '_').slice(0, 64) || 'secret';
}
