import { testRequest } from '@proxy/core/testing';
import { describe, expect, it } from 'vitest';
import { buildEnvelope, ENVELOPE_LIMITS } from './envelope.js';

const noScrub = (text: string): string => text;

async function envelopeOf(init: Parameters<typeof testRequest>[0], scrub = noScrub) {
  const request = testRequest(init);
  const body = request.body.present ? await request.body.read() : undefined;
  return buildEnvelope(request, body, scrub);
}

describe('the request envelope', () => {
  it('carries method, request target, destination, headers and a text body, with no warnings when nothing is cut', async () => {
    const env = await envelopeOf({
      method: 'POST',
      host: 'api.example.test',
      port: 8443,
      scheme: 'https',
      path: '/repos/o/r/issues',
      query: 'a=1',
      headers: { 'Content-Type': 'application/json', 'X-Zed': 'z', Accept: '*/*' },
      body: '{"title":"hi"}',
    });
    expect(env).toEqual({
      method: 'POST',
      url: '/repos/o/r/issues?a=1',
      host: 'api.example.test:8443',
      headers: [
        { name: 'Host', value: 'api.example.test:8443' },
        { name: 'Content-Type', value: 'application/json' },
        { name: 'Content-Length', value: '14' },
        { name: 'Accept', value: '*/*' },
        { name: 'X-Zed', value: 'z' },
      ],
      body: '{"title":"hi"}',
      warnings: [],
    });
  });

  it('cuts a body over 16 KiB and says so', async () => {
    const env = await envelopeOf({ method: 'POST', body: 'a'.repeat(20_000) });
    expect(Buffer.byteLength(env.body!)).toBe(ENVELOPE_LIMITS.body);
    expect(env.warnings).toEqual(['body truncated: original 20000 bytes, first 16384 kept']);
  });

  it('cuts on a character boundary', async () => {
    const env = await envelopeOf({ method: 'POST', body: `${'a'.repeat(16_383)}é${'b'.repeat(10)}` });
    expect(env.body).toBe('a'.repeat(16_383));
  });

  it('cuts a URL over 2 KiB and says so', async () => {
    const env = await envelopeOf({ path: `/${'p'.repeat(3000)}` });
    expect(env.url).toHaveLength(ENVELOPE_LIMITS.url);
    expect(env.warnings).toEqual(['url truncated: original 3001 bytes, first 2048 kept']);
  });

  it('omits a non-UTF-8 body with a warning', async () => {
    const env = await envelopeOf({ method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: Buffer.from([0xff, 0xfe, 0x00, 0x81]) });
    expect(env.body).toBeUndefined();
    expect(env.warnings).toEqual(['body omitted: not valid UTF-8 (4 bytes)']);
  });

  it('caps a header value at 512 bytes with a marker and a warning', async () => {
    const env = await envelopeOf({ headers: { 'X-Long': 'v'.repeat(700) } });
    expect(env.headers.find((h) => h.name === 'X-Long')?.value).toBe(`${'v'.repeat(512)}... [truncated, original 700 bytes]`);
    expect(env.warnings).toEqual(['header X-Long value truncated: original 700 bytes, first 512 kept']);
  });

  it('keeps priority headers in view when junk headers exceed the 4 KiB budget', async () => {
    const junk: [string, string][] = Array.from({ length: 200 }, (_, i) => [`X-Junk-${String(i).padStart(3, '0')}`, 'j'.repeat(40)]);
    const env = await envelopeOf({
      method: 'POST',
      headers: [...junk, ['Authorization', 'Bearer proxy-token'], ['Cookie', 'session=abc'], ['Origin', 'https://evil.test'], ['Content-Type', 'text/plain']],
      body: 'x',
    });
    expect(env.headers.slice(0, 6).map((h) => h.name)).toEqual(['Host', 'Origin', 'Content-Type', 'Content-Length', 'Authorization', 'Cookie']);
    expect(env.headers[6]?.name).toBe('X-Junk-000');
    const used = env.headers.reduce((n, h) => n + Buffer.byteLength(h.name) + Buffer.byteLength(h.value), 0);
    expect(used).toBeLessThanOrEqual(ENVELOPE_LIMITS.headers);
    const omitted = 206 - env.headers.length;
    expect(env.warnings).toEqual([`headers truncated: ${omitted} of 206 headers omitted (4096-byte budget)`]);
  });

  it('summarises a multipart body whose file part is binary', async () => {
    const boundary = 'XyZ123';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="comment"\r\n\r\nquarterly numbers\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="payroll.xlsx"\r\nContent-Type: application/vnd.ms-excel\r\n\r\n`),
      Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xff, 0xfe]),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const env = await envelopeOf({ method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body });
    expect(env.body).toBeUndefined();
    expect(env.warnings).toEqual([`body omitted: not valid UTF-8 (${body.length} bytes)`]);
    expect(env.multipart_summary).toEqual({
      content_type: `multipart/form-data; boundary=${boundary}`,
      total_bytes: body.length,
      part_count: 2,
      parts: [
        { name: 'comment', bytes: 17 },
        { name: 'file', filename: 'payroll.xlsx', content_type: 'application/vnd.ms-excel', bytes: 6 },
      ],
    });
  });

  it('summarises a text multipart body cut at 16 KiB, keeping its first part', async () => {
    const body = `--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n${'x'.repeat(20_000)}\r\n--b\r\nContent-Disposition: form-data; name="b"\r\n\r\nsecond\r\n--b--\r\n`;
    const env = await envelopeOf({ method: 'POST', headers: { 'Content-Type': 'multipart/form-data; boundary="b"' }, body });
    expect(Buffer.byteLength(env.body!)).toBe(ENVELOPE_LIMITS.body);
    expect(env.multipart_summary?.parts.map((p) => p.name)).toEqual(['a', 'b']);
    expect(env.warnings[0]).toMatch(/^body truncated/);
  });

  it('replaces credentials the proxy knows and says where', async () => {
    const scrub = (text: string) => text.split('real-secret-value').join('[redacted:GITHUB_TOKEN]');
    const env = await envelopeOf({ method: 'POST', headers: { Authorization: 'Bearer real-secret-value' }, body: 'token=real-secret-value' }, scrub);
    expect(env.headers.find((h) => h.name === 'Authorization')?.value).toBe('Bearer [redacted:GITHUB_TOKEN]');
    expect(env.body).toBe('token=[redacted:GITHUB_TOKEN]');
    expect(env.warnings).toEqual([
      'header Authorization: a credential known to the proxy was replaced by a [redacted:<name>] marker',
      'body: a credential known to the proxy was replaced by a [redacted:<name>] marker',
    ]);
  });

  it('warns that a TLS passthrough shows only the host', async () => {
    const env = await envelopeOf({ scheme: 'https', host: 'api.example.test', mode: 'sni-only', method: '', path: '', headers: [] });
    expect(env.warnings[0]).toMatch(/^TLS passthrough/);
  });
});
