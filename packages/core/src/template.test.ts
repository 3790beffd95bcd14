import { describe, expect, it } from 'vitest';
import { ErrorCodes, ProxyError } from './errors.js';
import { compileTemplate } from './template.js';

const render = (source: string, data: Record<string, string>, fields = ['Value']) => compileTemplate(source, fields).render(data);
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('compileTemplate', () => {
  it.each([
    ['plain text', 'plain text'],
    ['', ''],
    ['Bearer {{ .Value }}', 'Bearer s3cr3t'],
    ['Bearer {{.Value}}', 'Bearer s3cr3t'],
    ['{{ .Value }}{{ .Value }}', 's3cr3ts3cr3t'],
    ['Basic {{ base64 "x-access-token:" .Value }}', `Basic ${b64('x-access-token:s3cr3t')}`],
    ['{{ base64 .Value }}', b64('s3cr3t')],
    ['{{ base64 "a" "b" .Value "c" }}', b64('abs3cr3tc')],
    ['{{ base64 "q\\"u\\\\ote" }}', b64('q"u\\ote')],
    ['{{ "lit" }}', 'lit'],
    ['a  {{- .Value -}}  b', 'as3cr3tb'],
    ['a \n\t{{- .Value }} b', 'as3cr3t b'],
    ['a {{ .Value -}}\n b', 'a s3cr3tb'],
    ['a }} b', 'a }} b'],
    ['{{ base64 "ü" }}', b64('ü')],
  ])('%j renders %j', (source, expected) => {
    expect(render(source, { Value: 's3cr3t' })).toBe(expected);
  });

  it('lists the fields it references once each', () => {
    expect(compileTemplate('{{ .Value }} {{ base64 .User .Value }}', ['Value', 'User']).fields).toEqual(['Value', 'User']);
    expect(compileTemplate('static', ['Value']).fields).toEqual([]);
  });

  it('renders a field missing from the data as empty', () => {
    expect(render('[{{ .Value }}]', {})).toBe('[]');
  });

  it('renders with new data each time', () => {
    const t = compileTemplate('Bearer {{ .Value }}', ['Value']);
    expect(t.render({ Value: 'a' })).toBe('Bearer a');
    expect(t.render({ Value: 'b' })).toBe('Bearer b');
  });

  it('supports dotted fields under an allowed prefix', () => {
    const t = compileTemplate('{{ .Credentials.key }}:{{ .Signature }}', ['Signature', 'Credentials.*']);
    expect(t.fields).toEqual(['Credentials.key', 'Signature']);
    expect(t.render({ 'Credentials.key': 'k', Signature: 'sig' })).toBe('k:sig');
  });

  it('renders to bytes, keeping byte fields as they are', () => {
    const t = compileTemplate('{{.Timestamp}}POST/v1ü{{.Body}}{{ base64 "k:" .Body }}', ['Timestamp', 'Body']);
    const body = Buffer.from([0xff, 0x00, 0xc3]);
    const expected = Buffer.concat([Buffer.from('1700000000POST/v1ü', 'utf8'), body, Buffer.from(Buffer.concat([Buffer.from('k:'), body]).toString('base64'))]);
    expect(t.renderBytes({ Timestamp: '1700000000', Body: body })).toEqual(expected);
    expect(t.renderBytes({ Timestamp: '1', Body: 'text' }).toString('utf8')).toBe(`1POST/v1ütext${b64('k:text')}`);
  });

  it('renders to bytes like render for string data, empty and static templates included', () => {
    for (const source of ['', 'static', 'Bearer {{ .Value }}', '{{ base64 "x-access-token:" .Value }}']) {
      const t = compileTemplate(source, ['Value']);
      expect(t.renderBytes({ Value: 's3cr3t' }).toString('utf8')).toBe(t.render({ Value: 's3cr3t' }));
    }
    expect(compileTemplate('[{{ .Value }}]', ['Value']).renderBytes({})).toEqual(Buffer.from('[]'));
  });

  it.each([
    ['{{ .Foo }}', 'references unknown field .Foo at offset 3'],
    ['ab{{ .Value.x }}', 'references unknown field .Value.x at offset 5'],
    ['{{ .Credentials.key }}', 'references unknown field .Credentials.key at offset 3'],
    ['{{ upper .Value }}', 'calls unknown function upper at offset 3'],
    ['{{ base64 }}', 'calls base64 without arguments at offset 3'],
    ['{{ }}', 'has an empty action at offset 0'],
    ['x {{}}', 'has an empty action at offset 2'],
    ['Bearer {{ .Value', 'has an unterminated action at offset 7'],
    ['{{ "abc }}', 'has an unterminated string at offset 3'],
    ['{{ "a\\n" }}', 'has an unsupported escape \\n'],
    ['{{ . }}', 'has a "." that is not followed by a field name at offset 3'],
    ['{{ .Value .Value }}', 'has more than one value in an action without a function at offset 10'],
    ['{{ base64 base64 }}', 'uses function base64 as an argument at offset 10'],
    ['{{ 42 }}', 'has an unexpected character "4" at offset 3'],
    ['{{ .Value| }}', 'has an unexpected character "|" at offset 9'],
    ['{{ if .Value }}x{{ end }}', 'calls unknown function if at offset 3'],
  ])('rejects %j: %s', (source, message) => {
    let caught: unknown;
    try {
      compileTemplate(source, ['Value']);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProxyError);
    expect((caught as ProxyError).code).toBe(ErrorCodes.CONFIG_TEMPLATE);
    expect((caught as ProxyError).message).toContain(message);
  });
});
