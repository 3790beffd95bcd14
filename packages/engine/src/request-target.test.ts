import { describe, expect, it } from 'vitest';
import { hasDotSegment, parseAuthority } from './request-target.js';

describe('parseAuthority', () => {
  it('normalises hosts and reads the written port, else the fallback', () => {
    expect(parseAuthority('API.Example.COM.', 443)).toEqual({ host: 'api.example.com', port: 443 });
    expect(parseAuthority('[::1]:8080', 80)).toEqual({ host: '::1', port: 8080 });
    expect(parseAuthority('0x7f.1:80', 443)).toEqual({ host: '127.0.0.1', port: 80 });
  });

  it('answers repeated calls the same way, keyed by the fallback port too', () => {
    expect(parseAuthority('repeat.test', 80)).toEqual({ host: 'repeat.test', port: 80 });
    expect(parseAuthority('repeat.test', 443)).toEqual({ host: 'repeat.test', port: 443 });
    expect(parseAuthority('repeat.test', 80)).toEqual({ host: 'repeat.test', port: 80 });
    expect(parseAuthority('user@evil.test', 80)).toBeUndefined();
    expect(parseAuthority('user@evil.test', 80)).toBeUndefined();
  });

  it('hands out results nobody can alter for the next request', () => {
    const first = parseAuthority('shared.test:9000', 80)!;
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => ((first as { host: string }).host = 'other.test')).toThrow(TypeError);
    expect(parseAuthority('shared.test:9000', 80)).toEqual({ host: 'shared.test', port: 9000 });
  });

  it('keeps answering correctly past the cache bound', () => {
    for (let i = 0; i < 3000; i++) expect(parseAuthority(`h${i}.test`, 80)?.host).toBe(`h${i}.test`);
    expect(parseAuthority('h0.test:81', 80)).toEqual({ host: 'h0.test', port: 81 });
  });
});

describe('hasDotSegment', () => {
  it('passes paths without dot segments, including dots inside names', () => {
    for (const path of ['/', '/v1/models', '/file.txt', '/a..b/c', '/%41%42']) expect(hasDotSegment(path)).toBe(false);
  });

  it('finds plain, encoded and parameterised dot segments', () => {
    for (const path of ['/a/../b', '/./x', '/a/%2e%2E/b', '/a%2f..%2fb', '/a\\..\\b', '/a/..;/b', '/%2e']) {
      expect(hasDotSegment(path)).toBe(true);
    }
  });
});
