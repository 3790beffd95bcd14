import { describe, expect, it } from 'vitest';
import { canonicalHeaderName, compileHeaderPatterns, isRegexHeaderPattern } from './header-patterns.js';

describe('canonicalHeaderName', () => {
  it.each([
    ['x-trace-id', 'X-Trace-Id'],
    ['AUTHORIZATION', 'Authorization'],
    ['content-MD5', 'Content-Md5'],
  ])('%s -> %s', (input, out) => expect(canonicalHeaderName(input)).toBe(out));
});

describe('compileHeaderPatterns', () => {
  const set = compileHeaderPatterns(['X-Api-Key', 'authorization', '/^X-Trace-.*$/']);

  it('matches literal names case-insensitively and returns the configured casing', () => {
    expect(set.match('x-api-key')).toBe('X-Api-Key');
    expect(set.match('AUTHORIZATION')).toBe('authorization');
  });

  it('matches regex entries against the canonical name and keeps the header own name', () => {
    expect(set.match('x-trace-id')).toBe('x-trace-id');
    expect(set.match('x-tracer')).toBeUndefined();
  });

  it('matches nothing else', () => {
    expect(set.match('cookie')).toBeUndefined();
    expect(compileHeaderPatterns([]).match('anything')).toBeUndefined();
    expect(compileHeaderPatterns([]).size).toBe(0);
  });

  it('tells regex entries from literal names', () => {
    expect(isRegexHeaderPattern('/x/')).toBe(true);
    expect(isRegexHeaderPattern('x')).toBe(false);
    expect(isRegexHeaderPattern('/')).toBe(false);
  });
});
