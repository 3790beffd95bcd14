import { describe, expect, it } from 'vitest';
import { HeaderList } from './headers.js';

describe('HeaderList', () => {
  it('matches names case-insensitively and preserves casing and order', () => {
    const h = HeaderList.fromRaw(['Host', 'a.com', 'X-Api-Key', 'k1', 'accept', '*/*', 'x-api-key', 'k2']);
    expect(h.size).toBe(4);
    expect(h.get('x-api-key')).toBe('k1');
    expect(h.getAll('X-API-KEY')).toEqual(['k1', 'k2']);
    expect(h.has('HOST')).toBe(true);
    expect(h.names()).toEqual(['Host', 'X-Api-Key', 'accept']);
    expect(h.toRaw()).toEqual(['Host', 'a.com', 'X-Api-Key', 'k1', 'accept', '*/*', 'x-api-key', 'k2']);
  });

  it('set() replaces every field of that name with one field in the given casing', () => {
    const h = HeaderList.from([
      ['authorization', 'a'],
      ['Accept', 'x'],
      ['AUTHORIZATION', 'b'],
    ]);
    h.set('Authorization', 'Bearer t');
    expect([...h]).toEqual([
      ['Accept', 'x'],
      ['Authorization', 'Bearer t'],
    ]);
  });

  it('delete() removes adjacent and scattered duplicates', () => {
    const h = HeaderList.from([
      ['a', '1'],
      ['A', '2'],
      ['b', '3'],
      ['a', '4'],
    ]);
    expect(h.delete('a')).toBe(true);
    expect([...h]).toEqual([['b', '3']]);
    expect(h.delete('a')).toBe(false);
  });

  it('builds from a record with multi-values', () => {
    const h = HeaderList.from({ 'Set-Cookie': ['a=1', 'b=2'], Host: 'x' });
    expect(h.getAll('set-cookie')).toEqual(['a=1', 'b=2']);
    expect(h.get('host')).toBe('x');
  });

  it('supports index access and edits', () => {
    const h = HeaderList.from([
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(h.at(1)).toEqual(['b', '2']);
    expect(h.at(2)).toBeUndefined();
    h.setAt(0, '9', 'A');
    h.deleteAt(1);
    expect([...h]).toEqual([['A', '9']]);
    expect(() => h.setAt(5, 'x')).toThrow(RangeError);
  });

  it('clone() is independent', () => {
    const h = HeaderList.from({ a: '1' });
    const c = h.clone();
    c.set('a', '2');
    c.append('b', '3');
    expect(h.get('a')).toBe('1');
    expect(h.size).toBe(1);
    expect(c.get('a')).toBe('2');
  });

  it('a name that is a prefix of another does not match', () => {
    const h = HeaderList.from({ 'x-api': '1', 'x-api-key': '2' });
    expect(h.getAll('x-api')).toEqual(['1']);
  });

  it('keyAt() and valueAt() read a field by index; renaming with setAt() moves it to the new name', () => {
    const h = HeaderList.from([
      ['X-Old', '1'],
      ['Accept', '2'],
    ]);
    expect([h.keyAt(0), h.valueAt(0), h.keyAt(2)]).toEqual(['x-old', '1', undefined]);
    h.setAt(0, '3', 'X-New');
    expect(h.get('x-old')).toBeUndefined();
    expect(h.get('x-new')).toBe('3');
    expect(h.keyAt(0)).toBe('x-new');
    h.deleteAt(0);
    expect(h.keyAt(0)).toBe('accept');
  });

  it('fromRaw() reads Buffer items (undici raw headers) as latin1 bytes', () => {
    const h = HeaderList.fromRaw([Buffer.from('Content-Type'), Buffer.from('text/plain'), 'X-Caf', Buffer.from([0x63, 0x61, 0x66, 0xe9])]);
    expect([...h]).toEqual([
      ['Content-Type', 'text/plain'],
      ['X-Caf', 'caf\u00e9'],
    ]);
    expect(h.get('content-type')).toBe('text/plain');
  });
});
