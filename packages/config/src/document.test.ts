import { describe, expect, it } from 'vitest';
import { parseConfigText } from './document.js';

const text = [
  /* 1 */ 'proxy:',
  /* 2 */ '  http_listen: ":8080"',
  /* 3 */ '  reverse:',
  /* 4 */ '    - listen: ":9000"',
  /* 5 */ '      upstream_host:',
  /* 6 */ 'tls: { mode: sni-only }',
  /* 7 */ 'shared: &rules',
  /* 8 */ '  - host: example.com',
  /* 9 */ 'transforms:',
  /* 10 */ '  - name: allowlist',
  /* 11 */ '    config: { rules: *rules }',
  /* 12 */ '  - config: {}',
  /* 13 */ '  - name: 42',
  /* 14 */ '  - name: secrets',
].join('\n');

describe('ConfigDocument', () => {
  const doc = parseConfigText(text, 'proxy.yaml');

  it('keeps the plain value of the document, aliases expanded', () => {
    expect(doc.file).toBe('proxy.yaml');
    expect(doc.data).toMatchObject({ proxy: { http_listen: ':8080' }, tls: { mode: 'sni-only' } });
    expect((doc.data as { transforms: unknown[] }).transforms[0]).toEqual({ name: 'allowlist', config: { rules: [{ host: 'example.com' }] } });
  });

  it('locates scalars at their value and block collections at their key', () => {
    expect(doc.locate(['proxy', 'http_listen'])).toEqual({ line: 2, column: 16 });
    expect(doc.locate(['proxy'])).toEqual({ line: 1, column: 1 });
    expect(doc.locate(['proxy', 'reverse'])).toEqual({ line: 3, column: 3 });
    expect(doc.locate(['proxy', 'reverse', 0])).toEqual({ line: 4, column: 7 });
  });

  it('locates flow collections where they open, and empty values at their key', () => {
    expect(doc.locate(['tls'])).toEqual({ line: 6, column: 6 });
    expect(doc.locate(['tls', 'mode'])).toEqual({ line: 6, column: 14 });
    expect(doc.locate(['proxy', 'reverse', 0, 'upstream_host'])).toEqual({ line: 5, column: 7 });
  });

  it('follows aliases to their anchor', () => {
    expect(doc.locate(['transforms', 0, 'config', 'rules', 0, 'host'])).toEqual({ line: 8, column: 11 });
  });

  it('locates keys, and nothing for paths not in the file', () => {
    expect(doc.locateKey(['tls', 'mode'])).toEqual({ line: 6, column: 8 });
    expect(doc.locateKey(['transforms', 0])).toBeUndefined();
    expect(doc.locate(['proxy', 'https_listen'])).toBeUndefined();
    expect(doc.locate(['transforms', 9])).toBeUndefined();
    expect(doc.locate(['proxy', 'http_listen', 'deeper'])).toBeUndefined();
  });

  it('lists the transform names it can read, whatever else is wrong', () => {
    expect(doc.transformNames()).toEqual([
      { index: 0, name: 'allowlist' },
      { index: 3, name: 'secrets' },
    ]);
    expect(parseConfigText('transforms: nope\n', 'x.yaml').transformNames()).toEqual([]);
    expect(parseConfigText('- a\n', 'x.yaml').transformNames()).toEqual([]);
  });

  it('reports a second YAML document as a syntax error', () => {
    expect(() => parseConfigText('log: {}\n---\nlog: {}\n', 'x.yaml')).toThrow(/x\.yaml:2:1: the file holds more than one YAML document/);
  });
});
