import { describe, expect, it } from 'vitest';
import { encodePathValue, encodeQueryValue, setQueryParam } from './url-encoding.js';

describe('URL encoding of secret values', () => {
  it('keeps a path value inside its segment and a query value inside its parameter', () => {
    expect(encodePathValue('a/b?c#d:e@f')).toBe('a%2Fb%3Fc%23d:e@f');
    expect(encodeQueryValue('a&b=c d+e')).toBe('a%26b%3Dc%20d%2Be');
  });

  it('sets a parameter, dropping every earlier one of that name (compared decoded) and keeping the rest raw', () => {
    expect(setQueryParam('', 'key', 'v')).toBe('key=v');
    expect(setQueryParam('a=%2F&key=x&k%65y=y&b', 'key', 's&t')).toBe('a=%2F&b&key=s%26t');
    expect(setQueryParam('a+b=1', 'a b', '2')).toBe('a%20b=2');
  });
});
