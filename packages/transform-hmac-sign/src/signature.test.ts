import { describe, expect, it } from 'vitest';
import { decodeKey, formatTimestamp, KeyDecodeError } from './signature.js';

const AT = Date.UTC(2024, 4, 1, 12, 34, 56, 789);

describe('formatTimestamp', () => {
  it.each([
    ['unix_seconds', '1714566896'],
    ['unix_millis', '1714566896789'],
    ['unix_nanos', '1714566896789000000'],
    ['rfc3339', '2024-05-01T12:34:56Z'],
  ] as const)('%s', (format, expected) => {
    expect(formatTimestamp(format, AT)).toBe(expected);
  });

  it('drops a fraction of a millisecond rather than rounding into the next one', () => {
    expect(formatTimestamp('unix_millis', 999.9)).toBe('999');
    expect(formatTimestamp('unix_seconds', 1999.9)).toBe('1');
    expect(formatTimestamp('unix_nanos', 1.5)).toBe('1000000');
  });
});

describe('decodeKey', () => {
  it('keys with the UTF-8 bytes of a raw secret', () => {
    expect(decodeKey('kéy', 'raw')).toEqual(Buffer.from('kéy', 'utf8'));
  });

  it('decodes padded standard base64, ignoring line breaks as Go does', () => {
    const bytes = Buffer.from([0xfb, 0xff, 0x00, 0x10, 0x20]);
    expect(decodeKey(bytes.toString('base64'), 'base64')).toEqual(bytes);
    expect(decodeKey('+/8A\r\nECA=', 'base64')).toEqual(bytes);
    expect(decodeKey('', 'base64')).toEqual(Buffer.alloc(0));
  });

  it('decodes hex in either case', () => {
    expect(decodeKey('00fFa1', 'hex')).toEqual(Buffer.from([0x00, 0xff, 0xa1]));
  });

  it.each([
    ['base64', 'not base64!'],
    ['base64', '-_8AECA='],
    ['base64', '+/8AECA'],
    ['base64', ' +/8AECA='],
    ['hex', 'abc'],
    ['hex', 'zz'],
  ] as const)('refuses %s key %j without quoting it', (encoding, value) => {
    let caught: unknown;
    try {
      decodeKey(value, encoding);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KeyDecodeError);
    expect((caught as Error).message).not.toContain(value);
  });
});
