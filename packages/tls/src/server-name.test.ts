import { ErrorCodes } from '@proxy/core';
import { describe, expect, it } from 'vitest';
import { normalizeServerName } from './server-name.js';

describe('normalizeServerName', () => {
  it('lowercases DNS names and drops a trailing dot', () => {
    expect(normalizeServerName('API.Example.COM.')).toEqual({ name: 'api.example.com', kind: 'dns' });
    expect(normalizeServerName('localhost')).toEqual({ name: 'localhost', kind: 'dns' });
    expect(normalizeServerName('_acme-challenge.example.org')).toEqual({ name: '_acme-challenge.example.org', kind: 'dns' });
  });

  it('recognizes IPv4 and IPv6 literals, IPv6 unbracketed and compressed', () => {
    expect(normalizeServerName('10.0.0.1')).toEqual({ name: '10.0.0.1', kind: 'ip' });
    expect(normalizeServerName('[::1]')).toEqual({ name: '::1', kind: 'ip' });
    expect(normalizeServerName('2001:DB8:0:0::0001')).toEqual({ name: '2001:db8::1', kind: 'ip' });
    expect(normalizeServerName('[2001:db8::1]')).toEqual(normalizeServerName('2001:0db8::1'));
  });

  it.each([
    ['an empty name', ''],
    ['a lone dot', '.'],
    ['a wildcard', '*.example.com'],
    ['a space', 'exa mple.com'],
    ['an empty label', 'a..example.com'],
    ['a label over 63 characters', `${'a'.repeat(64)}.example.com`],
    ['a name over 253 characters', `${'a.'.repeat(127)}com`],
    ['an IPv6 zone', 'fe80::1%eth0'],
    ['a port', 'example.com:443'],
    ['non-ASCII (not punycode)', 'bücher.example'],
  ])('refuses %s', (_what, name) => {
    expect(() => normalizeServerName(name)).toThrow(expect.objectContaining({ code: ErrorCodes.TLS_SERVER_NAME_INVALID }));
  });

  it('accepts a 253-character name', () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(name).toHaveLength(253);
    expect(normalizeServerName(name).name).toBe(name);
  });
});
