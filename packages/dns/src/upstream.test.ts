import { describe, expect, it } from 'vitest';
import { isOwnAddress, parseResolverAddress } from './upstream.js';

describe('parseResolverAddress', () => {
  it.each([
    ['8.8.8.8', { host: '8.8.8.8', port: 53 }],
    ['8.8.8.8:5353', { host: '8.8.8.8', port: 5353 }],
    ['2001:4860:4860::8888', { host: '2001:4860:4860::8888', port: 53 }],
    ['[2001:4860:4860::8888]:53', { host: '2001:4860:4860::8888', port: 53 }],
  ])('parses %s', (value, expected) => {
    expect(parseResolverAddress(value)).toEqual(expected);
  });

  it.each(['dns.google', 'dns.google:53', '8.8.8.8:0', '8.8.8.8:dns', '[8.8.8.8]:53', ''])('rejects %j', (value) => {
    expect(() => parseResolverAddress(value)).toThrow(
      expect.objectContaining({ code: 'PROXY_ERR_CONFIG_INVALID', message: expect.stringContaining('dns.upstream_resolver') }),
    );
  });
});

describe('isOwnAddress', () => {
  it('recognizes the server itself: same port on the bound, a loopback or (wildcard bind) a local address', () => {
    expect(isOwnAddress({ host: '127.0.0.1', port: 53 }, { address: '0.0.0.0', port: 53 })).toBe(true);
    expect(isOwnAddress({ host: '127.0.0.53', port: 53 }, { address: '::', port: 53 })).toBe(true);
    expect(isOwnAddress({ host: '::1', port: 53 }, { address: '::', port: 53 })).toBe(true);
    expect(isOwnAddress({ host: '10.9.9.9', port: 5353 }, { address: '::ffff:10.9.9.9', port: 5353 })).toBe(true);
  });

  it('does not flag another port or a remote resolver', () => {
    expect(isOwnAddress({ host: '127.0.0.1', port: 5353 }, { address: '127.0.0.1', port: 53 })).toBe(false);
    expect(isOwnAddress({ host: '192.0.2.53', port: 53 }, { address: '0.0.0.0', port: 53 })).toBe(false);
    expect(isOwnAddress({ host: '192.0.2.53', port: 53 }, { address: '10.0.0.1', port: 53 })).toBe(false);
  });
});
