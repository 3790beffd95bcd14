import { describe, expect, it } from 'vitest';
import { readSignedBody } from './body-integrity.js';
import { testRequest } from './testing.js';

describe('readSignedBody', () => {
  it('returns the whole body with its framing', async () => {
    await expect(readSignedBody(testRequest({ method: 'POST', body: 'abc' }), false)).resolves.toEqual({ bytes: Buffer.from('abc'), chunked: false });
  });

  it('refuses a chunked body unless allowed, and reads it whole when allowed', async () => {
    const chunked = { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' }, body: 'abc' };
    await expect(readSignedBody(testRequest(chunked), false)).resolves.toEqual({ refusal: { status: 400, reason: 'chunked_body_not_allowed', annotations: {} } });
    await expect(readSignedBody(testRequest(chunked), true)).resolves.toEqual({ bytes: Buffer.from('abc'), chunked: true });
  });

  it('refuses a body over the limit (413), a short one (413) and an absent one (400)', async () => {
    const over = await readSignedBody(testRequest({ method: 'POST', body: 'x'.repeat(10), maxBodyBytes: 4 }), false);
    expect(over).toEqual({ refusal: { status: 413, reason: 'body_truncated', annotations: { max_request_body_bytes: 4, content_length: 10 } } });
    const short = await readSignedBody(testRequest({ method: 'POST', headers: { 'Content-Length': '5' }, body: 'abc' }), false);
    expect(short).toEqual({ refusal: { status: 413, reason: 'body_truncated', annotations: { content_length: 5, buffered_length: 3 } } });
    const missing = await readSignedBody(testRequest({ method: 'POST', headers: { 'Content-Length': '5' }, body: '' }), false);
    expect(missing).toEqual({ refusal: { status: 400, reason: 'body_missing', annotations: { content_length: 5, buffered_length: 0 } } });
  });
});
