/**
 * Header-name patterns as transforms take them in config (`headers`, `match_headers`): literal
 * names, matched case-insensitively, and `/regex/` entries, matched case-insensitively against
 * the canonical name. Compiled once at create time.
 */

/** The canonical form of a header name (`x-trace-id` -> `X-Trace-Id`): what regex entries see and audit keys use. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase());
}

/** A compiled list of header patterns. */
export interface HeaderPatternSet {
  /** Number of entries. */
  readonly size: number;
  /**
   * The name a matching header is to be sent with: the casing written in config for a literal
   * entry, the header's own name for a regex entry. Undefined when nothing matches.
   */
  match(name: string): string | undefined;
}

/** True when a pattern is a `/regex/` entry rather than a literal name. */
export function isRegexHeaderPattern(pattern: string): boolean {
  return pattern.length >= 2 && pattern.startsWith('/') && pattern.endsWith('/');
}

/** Compiles header patterns; the config schema (`format: header-pattern`) has checked each regex. */
export function compileHeaderPatterns(patterns: readonly string[]): HeaderPatternSet {
  const literals = new Map<string, string>();
  const regexes: RegExp[] = [];
  for (const pattern of patterns) {
    if (isRegexHeaderPattern(pattern)) regexes.push(new RegExp(pattern.slice(1, -1), 'i'));
    else if (!literals.has(pattern.toLowerCase())) literals.set(pattern.toLowerCase(), pattern);
  }
  return {
    size: patterns.length,
    match(name) {
      const literal = literals.get(name.toLowerCase());
      if (literal !== undefined) return literal;
      if (regexes.length === 0) return undefined;
      const canonical = canonicalHeaderName(name);
      return regexes.some((re) => re.test(canonical)) ? name : undefined;
    },
  };
}
