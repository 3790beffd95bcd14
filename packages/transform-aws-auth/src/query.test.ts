import { describe, expect, it } from 'vitest';
import { parseQuery, toSignerQuery } from './query.js';

describe('parseQuery', () => {
  it('decodes names and values as AWS does (+ is a plus), and keeps each pair as received', () => {
    expect(parseQuery('a=1%2B2&b+c=x+y&flag&&k=%E2%82%AC')).toEqual([
      { name: 'a', value: '1+2', raw: 'a=1%2B2' },
      { name: 'b+c', value: 'x+y', raw: 'b+c=x+y' },
      { name: 'flag', value: '', raw: 'flag' },
      { name: 'k', value: '€', raw: 'k=%E2%82%AC' },
    ]);
    expect(parseQuery('')).toEqual([]);
  });

  it('keeps malformed percent-encoding as it was sent', () => {
    expect(parseQuery('bad=%zz')).toEqual([{ name: 'bad', value: '%zz', raw: 'bad=%zz' }]);
  });
});

describe('toSignerQuery', () => {
  it('groups repeated names in order, and treats __proto__ as a plain name', () => {
    const query = toSignerQuery(parseQuery('a=2&a=1&__proto__=x&b=3'));
    expect(Object.entries(query)).toEqual([
      ['a', ['2', '1']],
      ['__proto__', 'x'],
      ['b', '3'],
    ]);
  });
});
