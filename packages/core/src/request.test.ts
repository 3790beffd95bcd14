import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, ProxyError } from './errors.js';
import { HeaderList } from './headers.js';
import { BudgetLease, BytePool, bufferBudgetExhausted, connectionBudgetExceeded } from './body-budget.js';
import { createMessageBody, createProxyRequest, requestHeadBytes, requestUrl } from './request.js';

function body(headers: Record<string, string>, chunks: (string | Buffer)[] | null, limit = 0) {
  const list = HeaderList.from(headers);
  const stream = chunks === null ? null : Readable.from(chunks.map((c) => Buffer.from(c)));
  return { headers: list, body: createMessageBody({ headers: list, stream, limit, limitName: 'proxy.max_request_body_bytes' }) };
}

async function rejection(promise: Promise<unknown>): Promise<ProxyError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ProxyError);
    return err as ProxyError;
  }
  throw new Error('expected a rejection');
}

describe('MessageBody budgets and growth', () => {
  it('counts every buffered chunk against its budget and fails the read with the budget error when it is spent', async () => {
    const pool = new BytePool(8, bufferBudgetExhausted);
    const lease = new BudgetLease([pool]);
    const list = HeaderList.from({ 'transfer-encoding': 'chunked' });
    const b = createMessageBody({ headers: list, stream: Readable.from([Buffer.from('12345'), Buffer.from('67890')]), limit: 0, limitName: 'x', budget: lease });
    const err = await rejection(b.read());
    expect(err.status).toBe(503);
    expect(err.reason).toBe('body_buffer_budget_exhausted');
    expect(b.readError).toBe(err);
    expect(pool.used).toBe(5);
    lease.releaseAll();
    expect(pool.used).toBe(0);
  });

  it('takes a reservation from every pool of a lease or from none', () => {
    const connection = new BytePool(100, connectionBudgetExceeded);
    const process = new BytePool(10, bufferBudgetExhausted);
    const lease = new BudgetLease([connection, process]);
    expect(lease.reserve(8)).toBeUndefined();
    expect(lease.reserve(8)?.reason).toBe('body_buffer_budget_exhausted');
    expect([connection.used, process.used, lease.held]).toEqual([8, 8, 8]);
    expect(new BudgetLease([new BytePool(4, connectionBudgetExceeded), process]).reserve(5)?.status).toBe(413);
    expect(process.used).toBe(8);
    lease.releaseAll();
    lease.releaseAll();
    expect([connection.used, process.used]).toEqual([0, 0]);
  });

  it('treats a capacity of 0 as no limit', () => {
    const pool = new BytePool(0, bufferBudgetExhausted);
    expect(pool.reserve(1e12)).toBeUndefined();
  });

  it('refuses a replacement body over the limit with 413 and keeps the old body', async () => {
    const { body: b, headers } = body({ 'content-length': '3' }, ['abc'], 10);
    await b.read();
    expect(b.limit).toBe(10);
    let err: unknown;
    try {
      b.replace('x'.repeat(11));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).status).toBe(413);
    expect(b.bytes?.toString()).toBe('abc');
    expect(headers.get('content-length')).toBe('3');
    b.replace('x'.repeat(10));
    expect(headers.get('content-length')).toBe('10');
  });

  it('measures the forwarded head: request line and header lines', () => {
    const headers = HeaderList.from({ 'x-a': 'bc' });
    expect(requestHeadBytes({ method: 'GET', path: '/p', query: 'q=1', headers })).toBe(3 + 2 + 3 + 12 + 3 + 2 + 4);
  });
});

describe('MessageBody', () => {
  it('reads a Content-Length body once', async () => {
    const { body: b } = body({ 'content-length': '11' }, ['hello ', 'world']);
    expect(b.present).toBe(true);
    expect(b.declaredLength).toBe(11);
    expect(b.buffered).toBe(false);
    const first = await b.read();
    expect(first.toString()).toBe('hello world');
    expect(await b.read()).toBe(first);
    expect(b.buffered).toBe(true);
    expect(b.bytes).toBe(first);
  });

  it('reads a chunked body', async () => {
    const { body: b } = body({ 'transfer-encoding': 'chunked' }, ['a', 'b']);
    expect(b.chunked).toBe(true);
    expect(b.declaredLength).toBeUndefined();
    expect((await b.read()).toString()).toBe('ab');
  });

  it('has no body without framing or stream', async () => {
    expect(body({}, null).body.present).toBe(false);
    expect(body({ 'content-length': '0' }, []).body.present).toBe(false);
    expect((await body({}, null).body.read()).length).toBe(0);
  });

  it('rejects a declared Content-Length over the limit with 413 before reading', async () => {
    const { body: b } = body({ 'content-length': '100' }, ['x'.repeat(100)], 10);
    const err = await rejection(b.read());
    expect(err.code).toBe(ErrorCodes.BODY_TOO_LARGE);
    expect(err.status).toBe(413);
    expect(err.message).toContain('proxy.max_request_body_bytes');
  });

  it('rejects a streamed body that grows over the limit with 413', async () => {
    const { body: b } = body({ 'transfer-encoding': 'chunked' }, ['12345', '67890', 'x'], 10);
    expect(b.readError).toBeUndefined();
    const err = await rejection(b.read());
    expect(err.code).toBe(ErrorCodes.BODY_TOO_LARGE);
    expect(err.status).toBe(413);
    // The failure stays on the body, so the forwarder refuses the request even when the
    // transform that read it carried on.
    expect(b.readError).toBe(err);
    expect(b.buffered).toBe(false);
    expect((await rejection(b.read())).code).toBe(ErrorCodes.BODY_TOO_LARGE);
  });

  it('accepts a body exactly at the limit', async () => {
    const { body: b } = body({ 'content-length': '10' }, ['1234567890'], 10);
    expect((await b.read()).length).toBe(10);
  });

  it('replace() sets Content-Length and removes Transfer-Encoding', async () => {
    const { headers, body: b } = body({ 'Transfer-Encoding': 'chunked' }, ['old']);
    b.replace('new body ü');
    expect(headers.has('transfer-encoding')).toBe(false);
    expect(headers.get('content-length')).toBe(String(Buffer.byteLength('new body ü')));
    expect(b.buffered).toBe(true);
    expect((await b.read()).toString()).toBe('new body ü');
  });

  it('replace() with an empty body leaves no body present', () => {
    const { headers, body: b } = body({ 'content-length': '3' }, ['abc']);
    b.replace(Buffer.alloc(0));
    expect(b.present).toBe(false);
    expect(headers.get('content-length')).toBe('0');
  });
});

describe('createProxyRequest', () => {
  const base = {
    method: 'GET',
    scheme: 'https' as const,
    port: 443,
    path: '/p',
    query: 'a=1',
    headers: new HeaderList(),
    clientAddress: '10.0.0.2',
    mode: 'mitm' as const,
    bodyStream: null,
    maxBodyBytes: 0,
  };

  it.each([
    ['API.Example.com.', 'api.example.com'],
    ['[::1]', '::1'],
  ])('normalizes host %s', (host, expected) => {
    expect(createProxyRequest({ ...base, host }).host).toBe(expected);
  });

  it('gives every request a distinct id', () => {
    expect(createProxyRequest({ ...base, host: 'a' }).id).not.toBe(createProxyRequest({ ...base, host: 'a' }).id);
  });

  it('requestUrl omits the default port and brackets IPv6', () => {
    expect(requestUrl({ scheme: 'https', host: 'a.com', port: 443, path: '/x', query: 'q=1' })).toBe('https://a.com/x?q=1');
    expect(requestUrl({ scheme: 'http', host: '::1', port: 8080, path: '/', query: '' })).toBe('http://[::1]:8080/');
  });
});
