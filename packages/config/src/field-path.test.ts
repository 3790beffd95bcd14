import { describe, expect, it } from 'vitest';
import { formatFieldPath, pointerToFieldPath } from './field-path.js';

describe('field paths', () => {
  it('renders keys dotted, indexes in brackets and odd keys quoted', () => {
    expect(formatFieldPath(['transforms', 1, 'config', 'secrets', 0, 'source', 'var'])).toBe('transforms[1].config.secrets[0].source.var');
    expect(formatFieldPath(['headers', 'x.trace', 'a b'])).toBe('headers["x.trace"]["a b"]');
    expect(formatFieldPath([])).toBe('');
  });

  it('reads JSON pointers, telling sequence indexes from numeric-looking keys', () => {
    const data = { list: [{ '0': 'x' }], 'a/b': { '~': 1 } };
    expect(pointerToFieldPath('/list/0/0', data)).toEqual(['list', 0, '0']);
    expect(pointerToFieldPath('/a~1b/~0', data)).toEqual(['a/b', '~']);
    expect(pointerToFieldPath('', data)).toEqual([]);
  });
});
