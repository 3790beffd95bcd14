import { describe, expect, it } from 'vitest';
import { formatTextLine } from './text-log.js';

describe('formatTextLine', () => {
  it("writes slog's text form: time, upper-case level, msg, then every field", () => {
    const line = formatTextLine(JSON.stringify({ time: '2026-12-05T10:00:00.000Z', level: 'debug', msg: 'request', path: '/a b', status_code: 200 }));
    expect(line).toBe('time=2026-12-05T10:00:00.000Z level=DEBUG msg=request path="/a b" status_code=200\n');
  });

  it('writes nested objects as dotted keys (slog groups) and arrays as JSON', () => {
    const line = formatTextLine(JSON.stringify({ time: 't', level: 'info', msg: 'request', tunnel: { target: 'h:443', inner: { x: 1 } }, request_transforms: [{ name: 'aws_jwt' }] }));
    expect(line).toBe('time=t level=INFO msg=request tunnel.target=h:443 tunnel.inner.x=1 request_transforms=[{"name":"aws_jwt"}]\n');
  });

  it('quotes empty strings and values holding quotes or =, and passes a line that is not a JSON object unchanged', () => {
    expect(formatTextLine(JSON.stringify({ time: 't', level: 'warn', msg: '', q: 'a"b', e: 'k=v' }))).toBe('time=t level=WARN msg="" q="a\\"b" e="k=v"\n');
    expect(formatTextLine('not json')).toBe('not json\n');
    expect(formatTextLine('[1,2]\n')).toBe('[1,2]\n');
  });
});
