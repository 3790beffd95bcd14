/** One `name=value` of a raw query string: decoded, and as received. */
export interface QueryPair {
  readonly name: string;
  readonly value: string;
  /** The pair exactly as it was in the query string. */
  readonly raw: string;
}

/**
 * Splits a raw query string (no `?`) into its pairs, percent-decoded as AWS decodes them (`+`
 * is a literal plus). A pair whose encoding is malformed keeps its raw text: its signature then
 * covers what was sent. A name without `=` has the empty value, as in SigV4's canonical query.
 */
export function parseQuery(rawQuery: string): QueryPair[] {
  if (rawQuery === '') return [];
  return rawQuery
    .split('&')
    .filter((raw) => raw !== '')
    .map((raw) => {
      const at = raw.indexOf('=');
      const name = at < 0 ? raw : raw.slice(0, at);
      const value = at < 0 ? '' : raw.slice(at + 1);
      return { name: decode(name), value: decode(value), raw };
    });
}

/**
 * The pairs as the `query` of a request to sign: each name once, with its values in order
 * (a list when a name repeats).
 */
export function toSignerQuery(pairs: readonly QueryPair[]): Record<string, string | string[]> {
  // No prototype: a parameter named `__proto__` is a parameter like any other.
  const query = Object.create(null) as Record<string, string | string[]>;
  for (const { name, value } of pairs) {
    const current = query[name];
    query[name] = current === undefined ? value : Array.isArray(current) ? [...current, value] : [current, value];
  }
  return query;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
