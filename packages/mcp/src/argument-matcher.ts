import { RE2JS } from 're2js';
import type { McpArgumentMatcher } from './config.js';

/** A compiled `when` matcher: true when the call's `arguments` pass it. */
export type ArgumentPredicate = (args: unknown) => boolean;

/**
 * Compiles one matcher. `path` is dotted into the call's `arguments` (`owner`, `repo.name`,
 * `files.0.path`: a numeric segment indexes an array); a path that leads nowhere fails the
 * matcher. `equals` and `in` compare JSON values (numbers by value, objects and arrays by
 * content); `matches` searches the value, which must be a string, with an RE2 expression (Go's
 * syntax, linear time whatever the input, so a workload cannot stall the proxy with a crafted
 * argument). Throws for an expression RE2 refuses.
 */
export function compileArgumentMatcher(matcher: McpArgumentMatcher): ArgumentPredicate {
  const segments = matcher.path.split('.');
  const at = (args: unknown): unknown => valueAt(args, segments);
  if (matcher.matches !== undefined) {
    const pattern = RE2JS.compile(matcher.matches);
    return (args) => {
      const value = at(args);
      return typeof value === 'string' && pattern.matcher(value).find();
    };
  }
  if (matcher.in !== undefined) {
    const allowed = matcher.in;
    return (args) => {
      const value = at(args);
      return value !== undefined && allowed.some((candidate) => jsonEqual(candidate, value));
    };
  }
  const expected = matcher.equals;
  return (args) => {
    const value = at(args);
    return value !== undefined && jsonEqual(expected, value);
  };
}

/** The RE2 syntax error of `pattern`, or undefined when it compiles. */
export function re2Problem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The value at a dotted path, or undefined. Only own properties are followed (never the prototype chain). */
function valueAt(root: unknown, segments: readonly string[]): unknown {
  let current = root;
  for (const segment of segments) {
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(segment)) return undefined;
      current = current[Number(segment)];
    } else if (typeof current === 'object' && current !== null && Object.hasOwn(current, segment)) {
      current = (current as Record<string, unknown>)[segment];
    } else {
      return undefined;
    }
  }
  return current;
}

/** Equality of two JSON values: scalars by value, arrays in order, objects by keys and values. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
