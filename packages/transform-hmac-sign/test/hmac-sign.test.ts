import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProxyRequest, createTransformEnv, HeaderList, type Logger } from '@proxy/core';
import { runTransform, validateTransformConfig, type TestRequestInit } from '@proxy/core/testing';
import { hmacSignTransform, type HmacSignConfig } from '../src/index.js';

// 2024-05-01T12:34:56.789Z: every timestamp below is derived from this fixed clock.
const NOW = Date.UTC(2024, 4, 1, 12, 34, 56, 789);
const clock = { now: () => NOW };

const SECRET_RAW = 'raw-hmac-secret-9f8e7d6c';
const SECRET_BYTES = Buffer.from('0011223344556677889900aabbccddeeff102030405060708090a0b0c0d0e0f0', 'hex');
const ENV = {
  API_SECRET_RAW: SECRET_RAW,
  API_SECRET_B64: SECRET_BYTES.toString('base64'),
  API_SECRET_HEX: SECRET_BYTES.toString('hex'),
  API_KEY: 'ak-live-1234567890abcdef',
  API_PASSPHRASE: 'passphrase-4d3c2b1a',
};

/** The docs' first worked example, with the key source and the signature knobs as parameters. */
function config(overrides: Record<string, unknown> = {}, signature: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    timestamp: { format: 'unix_seconds' },
    signature: {
      algorithm: 'sha256',
      key_encoding: 'base64',
      output_encoding: 'base64',
      message: '{{.Timestamp}}{{.Method}}{{.PathWithQuery}}{{.Body}}',
      ...signature,
    },
    credentials: {
      key: { type: 'env', var: 'API_KEY' },
      secret: { type: 'env', var: 'API_SECRET_B64' },
      passphrase: { type: 'env', var: 'API_PASSPHRASE' },
    },
    headers: [
      { name: 'X-ACCESS-KEY', value: '{{.Credentials.key}}' },
      { name: 'X-ACCESS-SIGN', value: '{{.Signature}}' },
      { name: 'X-ACCESS-TIMESTAMP', value: '{{.Timestamp}}' },
      { name: 'X-ACCESS-PASSPHRASE', value: '{{.Credentials.passphrase}}' },
    ],
    rules: [{ host: 'api.example.com' }],
    ...overrides,
  };
}

const POST: TestRequestInit = {
  method: 'POST',
  host: 'api.example.com',
  path: '/v1/orders',
  query: 'limit=5&side=buy',
  headers: { 'Content-Type': 'application/json' },
  body: '{"size":"1.5","price":"100"}',
};

/** Node's HMAC of `message`, computed here independently of the transform's code. */
function expectedSignature(algorithm: string, key: Buffer | string, message: Buffer | string, output: 'base64' | 'hex'): string {
  return createHmac(algorithm, key).update(message).digest(output);
}

function run(cfg: Record<string, unknown>, request: TestRequestInit = POST, env: Record<string, string> = ENV) {
  return runTransform(hmacSignTransform, cfg, request, { env, transformEnv: { clock } });
}

/** Asserts that no secret value of `env` appears in the audit record, the logs or the decision. */
function expectNoSecrets(result: Awaited<ReturnType<typeof run>>, env: Record<string, string> = ENV): void {
  const written = JSON.stringify([result.audit, result.logs, result.decision]);
  for (const [name, value] of Object.entries(env)) expect(written.includes(value), `${name} leaked`).toBe(false);
}

describe('hmac_sign signs the request', () => {
  it('sets every header of the first worked example, casing as written, and annotates them', async () => {
    const result = await run(config());
    expect(result.decision.action).toBe('continue');
    const message = `1714566896POST/v1/orders?limit=5&side=buy${POST.body as string}`;
    const raw = result.request.headers.toRaw();
    const sent = Object.fromEntries(Array.from({ length: raw.length / 2 }, (_, i) => [raw[2 * i]!, raw[2 * i + 1]!]));
    expect(sent).toMatchObject({
      'X-ACCESS-KEY': ENV.API_KEY,
      'X-ACCESS-SIGN': expectedSignature('sha256', SECRET_BYTES, message, 'base64'),
      'X-ACCESS-TIMESTAMP': '1714566896',
      'X-ACCESS-PASSPHRASE': ENV.API_PASSPHRASE,
    });
    expect(result.audit.request_transforms[0]?.annotations).toEqual({
      injected: ['header:X-ACCESS-KEY', 'header:X-ACCESS-SIGN', 'header:X-ACCESS-TIMESTAMP', 'header:X-ACCESS-PASSPHRASE'],
    });
    expect(result.forwardedBody.toString()).toBe(POST.body);
    expectNoSecrets(result);
  });

  it('signs the second worked example: credential in the prehash, raw key, hex output, path without query', async () => {
    const cfg = config(
      {
        credentials: { key: { type: 'env', var: 'API_KEY' }, secret: { type: 'env', var: 'API_SECRET_RAW' } },
        headers: [
          { name: 'X-Access-Key', value: '{{.Credentials.key}}' },
          { name: 'X-Signature', value: '{{.Signature}}' },
          { name: 'X-Timestamp', value: '{{.Timestamp}}' },
        ],
      },
      { key_encoding: 'raw', output_encoding: 'hex', message: '{{.Timestamp}}{{.Method}}{{.Path}}{{.Credentials.key}}{{.Body}}' },
    );
    const result = await run(cfg);
    const message = `1714566896POST/v1/orders${ENV.API_KEY}${POST.body as string}`;
    expect(result.request.headers.get('X-Signature')).toBe(expectedSignature('sha256', SECRET_RAW, message, 'hex'));
    expect(result.request.headers.get('X-Access-Key')).toBe(ENV.API_KEY);
  });

  const formats = [
    ['unix_seconds', '1714566896'],
    ['unix_millis', '1714566896789'],
    ['unix_nanos', '1714566896789000000'],
    ['rfc3339', '2024-05-01T12:34:56Z'],
  ] as const;
  it.each(formats)('writes timestamp format %s as %s, in the message and the header', async (format, expected) => {
    const result = await run(config({ timestamp: { format } }, { message: '{{.Timestamp}}|{{.Host}}' }));
    expect(result.request.headers.get('X-ACCESS-TIMESTAMP')).toBe(expected);
    expect(result.request.headers.get('X-ACCESS-SIGN')).toBe(expectedSignature('sha256', SECRET_BYTES, `${expected}|api.example.com`, 'base64'));
  });

  const keys = [
    ['raw', 'API_SECRET_RAW', Buffer.from(SECRET_RAW)],
    ['base64', 'API_SECRET_B64', SECRET_BYTES],
    ['hex', 'API_SECRET_HEX', SECRET_BYTES],
  ] as const;
  const combinations = (['sha256', 'sha512', 'sha1'] as const).flatMap((algorithm) =>
    keys.flatMap(([encoding, variable, key]) => (['base64', 'hex'] as const).map((output) => [algorithm, encoding, output, variable, key] as const)),
  );
  it.each(combinations)('algorithm %s, key %s, output %s matches Node crypto', async (algorithm, encoding, output, variable, key) => {
    const cfg = config(
      { credentials: { secret: { type: 'env', var: variable } }, headers: [{ name: 'X-Sig', value: '{{ .Signature }}' }] },
      { algorithm, key_encoding: encoding, output_encoding: output },
    );
    const result = await run(cfg);
    const message = `1714566896POST/v1/orders?limit=5&side=buy${POST.body as string}`;
    expect(result.request.headers.get('X-Sig')).toBe(expectedSignature(algorithm, key, message, output));
  });

  it('offers every request field to the message template', async () => {
    const message = '{{.Method}}\n{{.Path}}\n{{.PathWithQuery}}\n{{.Query}}\n{{.Host}}\n{{.Body}}';
    const result = await run(config({}, { message, key_encoding: 'hex' }), { ...POST, port: 8443, scheme: 'https', path: '/a%2Fb/c' }, { ...ENV, API_SECRET_B64: ENV.API_SECRET_HEX });
    const expected = `POST\n/a%2Fb/c\n/a%2Fb/c?limit=5&side=buy\nlimit=5&side=buy\napi.example.com\n${POST.body as string}`;
    expect(result.request.headers.get('X-ACCESS-SIGN')).toBe(expectedSignature('sha256', SECRET_BYTES, expected, 'base64'));
  });

  it('signs a request without query or body: PathWithQuery is the path, Body is empty', async () => {
    const result = await run(config({}, { message: '{{.Method}}{{.PathWithQuery}}[{{.Query}}][{{.Body}}]' }), { method: 'GET', host: 'api.example.com', path: '/v1/time' });
    expect(result.request.headers.get('X-ACCESS-SIGN')).toBe(expectedSignature('sha256', SECRET_BYTES, 'GET/v1/time[][]', 'base64'));
  });

  it('signs a body that is not UTF-8 byte for byte', async () => {
    const body = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41]);
    const result = await run(config({}, { message: '{{.Timestamp}}{{.Body}}' }), { ...POST, body });
    expect(result.request.headers.get('X-ACCESS-SIGN')).toBe(expectedSignature('sha256', SECRET_BYTES, Buffer.concat([Buffer.from('1714566896'), body]), 'base64'));
    expect(result.forwardedBody).toEqual(body);
  });

  it('replaces a header the client sent, whatever its casing, and sends the configured casing', async () => {
    const result = await run(config(), { ...POST, headers: { 'x-access-sign': 'forged', 'X-Access-Key': 'client-key' } });
    expect(result.request.headers.getAll('x-access-sign')).toHaveLength(1);
    expect(result.request.headers.getAll('x-access-key')).toEqual([ENV.API_KEY]);
    const names = result.request.headers.toRaw().filter((_, i) => i % 2 === 0);
    expect(names).toEqual(expect.arrayContaining(['X-ACCESS-KEY', 'X-ACCESS-SIGN']));
    expect(names).not.toContain('x-access-sign');
  });

  it('sends the key itself only when a header asks for .Credentials.secret', async () => {
    const result = await run(config({ headers: [{ name: 'X-Secret', value: 'k={{ .Credentials.secret }}' }] }));
    expect(result.request.headers.get('X-Secret')).toBe(`k=${ENV.API_SECRET_B64}`);
  });
});

describe('hmac_sign scope', () => {
  it('leaves a request outside its rules untouched, body unread', async () => {
    const result = await run(config(), { ...POST, host: 'other.example.com' });
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.has('X-ACCESS-SIGN')).toBe(false);
    expect(result.request.body.buffered).toBe(false);
  });

  it('honours the ports and paths of its rules', async () => {
    const cfg = config({ rules: [{ host: 'api.example.com', ports: [8443], paths: ['/v1/*'] }] });
    expect((await run(cfg, { ...POST, port: 8443 })).request.headers.has('X-ACCESS-SIGN')).toBe(true);
    expect((await run(cfg, { ...POST, port: 8080 })).request.headers.has('X-ACCESS-SIGN')).toBe(false);
    expect((await run(cfg, { ...POST, port: 8443, path: '/v2/orders' })).request.headers.has('X-ACCESS-SIGN')).toBe(false);
  });

  it('lets a TLS passthrough go: it has no method, path or body to sign', async () => {
    const result = await run(config(), { host: 'api.example.com', scheme: 'https', mode: 'sni-only', method: '', path: '' });
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.has('X-ACCESS-SIGN')).toBe(false);
  });
});

describe('hmac_sign body integrity', () => {
  it('refuses a body over proxy.max_request_body_bytes with 413 body_truncated', async () => {
    const result = await run(config(), { ...POST, body: 'x'.repeat(100), maxBodyBytes: 64 });
    expect(result.decision).toMatchObject({ action: 'reject', status: 413, reason: 'body_truncated', contentType: 'application/json; charset=utf-8' });
    expect(JSON.parse((result.decision as { message: string }).message)).toEqual({ error: 'hmac_sign', reason: 'body_truncated' });
    expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'hmac_sign', reason: 'body_truncated' });
    expect(result.audit.request_transforms[0]?.annotations).toEqual({ rejected: 'body_truncated', content_length: 100, max_request_body_bytes: 64 });
    expect(result.request.headers.has('X-ACCESS-SIGN')).toBe(false);
  });

  it('refuses a chunked body over the limit with 413 even when chunked bodies are allowed', async () => {
    const result = await run(config({ allow_chunked_body: true }), { ...POST, headers: { 'Transfer-Encoding': 'chunked' }, body: 'y'.repeat(100), maxBodyBytes: 64 });
    expect(result.decision).toMatchObject({ status: 413, reason: 'body_truncated' });
    expect(result.audit.request_transforms[0]?.annotations).toEqual({ rejected: 'body_truncated', max_request_body_bytes: 64 });
  });

  it('refuses a body shorter than its Content-Length with 413, and an absent one with 400 body_missing', async () => {
    const short = await run(config(), { ...POST, headers: { 'Content-Length': '10' }, body: 'abc' });
    expect(short.decision).toMatchObject({ status: 413, reason: 'body_truncated' });
    expect(short.audit.request_transforms[0]?.annotations).toMatchObject({ content_length: 10, buffered_length: 3 });
    const missing = await run(config(), { method: 'POST', host: 'api.example.com', headers: { 'Content-Length': '5' } });
    expect(missing.decision).toMatchObject({ status: 400, reason: 'body_missing', message: '{"error":"hmac_sign","reason":"body_missing"}' });
  });

  it('refuses a chunked body with 400 chunked_body_not_allowed, without reading it', async () => {
    const result = await run(config(), { ...POST, headers: { 'Transfer-Encoding': 'chunked' } });
    expect(result.decision).toMatchObject({ status: 400, reason: 'chunked_body_not_allowed', message: '{"error":"hmac_sign","reason":"chunked_body_not_allowed"}' });
    expect(result.request.body.buffered).toBe(false);
  });

  it('with allow_chunked_body signs the chunked body, forwards it with a Content-Length, and warns', async () => {
    const result = await run(config({ allow_chunked_body: true }, { message: '{{.Body}}' }), { ...POST, headers: { 'Transfer-Encoding': 'chunked' } });
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.get('X-ACCESS-SIGN')).toBe(expectedSignature('sha256', SECRET_BYTES, POST.body as string, 'base64'));
    expect(result.request.headers.has('transfer-encoding')).toBe(false);
    expect(result.request.headers.get('content-length')).toBe(String((POST.body as string).length));
    expect(result.forwardedBody.toString()).toBe(POST.body);
    expect(result.logs.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([expect.stringContaining('chunked')]);
    expectNoSecrets(result);
  });

  it('refuses a body the client stopped sending with 400 body_read_failed', async () => {
    const broken = new Readable({
      read() {
        this.destroy(new Error('client went away'));
      },
    });
    const request = createProxyRequest({
      method: 'POST',
      scheme: 'http',
      host: 'api.example.com',
      port: 80,
      path: '/',
      query: '',
      headers: HeaderList.from({ Host: 'api.example.com', 'Content-Length': '20' }),
      clientAddress: '127.0.0.1',
      mode: 'http',
      bodyStream: broken,
      maxBodyBytes: 1024,
    });
    const instance = await hmacSignTransform.create(config({ allow_chunked_body: false }) as unknown as HmacSignConfig, directEnv());
    const annotations: Record<string, unknown> = {};
    const decision = await instance.onRequest!(request, { annotate: (k, v) => (annotations[k] = v), group: () => undefined });
    expect(decision).toMatchObject({ status: 400, reason: 'body_read_failed', message: '{"error":"hmac_sign","reason":"body_read_failed"}' });
    await instance.close?.();
  });
});

const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

/** An environment for calling create() directly, as a program embedding the transform would. */
function directEnv() {
  const offline = () => Promise.reject(new Error('offline'));
  return createTransformEnv({ instanceId: 'hmac_sign#0', logger: silentLogger, http: offline, signal: new AbortController().signal, env: ENV, clock });
}

describe('hmac_sign failures', () => {
  it('fails closed with 502 credential_unavailable naming the credential, never a value', async () => {
    const { API_PASSPHRASE: _unset, ...env } = ENV;
    const result = await run(config(), POST, env);
    expect(result.decision).toMatchObject({ status: 502, reason: 'credential_unavailable', message: '{"error":"hmac_sign","reason":"credential_unavailable"}' });
    const annotations = result.audit.request_transforms[0]?.annotations;
    expect(annotations).toMatchObject({ rejected: 'credential_unavailable', credential: 'passphrase' });
    expect(String(annotations?.error)).toContain('API_PASSPHRASE');
    expect(result.request.headers.has('X-ACCESS-KEY')).toBe(false);
    expectNoSecrets(result, env);
  });

  it.each([
    ['base64', 'not*base64'],
    ['hex', 'xyz'],
  ])('refuses with 500 key_decode_failed when the %s key does not decode', async (encoding, value) => {
    const result = await run(config({}, { key_encoding: encoding }), POST, { ...ENV, API_SECRET_B64: value });
    expect(result.decision).toMatchObject({ status: 500, reason: 'key_decode_failed', message: '{"error":"hmac_sign","reason":"key_decode_failed"}' });
    expect(result.audit.request_transforms[0]?.annotations).toMatchObject({ credential: 'secret' });
    expect(JSON.stringify(result.audit)).not.toContain(value);
  });

  it('refuses with 500 header_template_failed, setting no header, when a value cannot go in a header', async () => {
    const result = await run(config(), POST, { ...ENV, API_PASSPHRASE: 'line-one\r\nX-Injected: evil' });
    expect(result.decision).toMatchObject({ status: 500, reason: 'header_template_failed' });
    expect(result.audit.request_transforms[0]?.annotations).toMatchObject({ header: 'X-ACCESS-PASSPHRASE' });
    expect(result.request.headers.has('X-ACCESS-KEY')).toBe(false);
    expect(result.request.headers.has('X-Injected')).toBe(false);
    expect(JSON.stringify(result.audit)).not.toContain('line-one');
  });
});

describe('hmac_sign config', () => {
  const issues = (cfg: unknown) => validateTransformConfig(hmacSignTransform, cfg);

  it('accepts every worked example of the reference', () => {
    expect(issues(config())).toEqual([]);
  });

  it('reports an unknown template variable or credential name at its field', () => {
    const cfg = config({ headers: [{ name: 'X-Key', value: '{{ .Credentials.api_key }}' }, { name: 'X-Sig', value: '{{ .Method }}' }] }, { message: '{{.Timestamp}}{{.Signature}}{{.Credentials.passphrase}}{{.Credentials.pasphrase}}' });
    expect(issues(cfg)).toEqual([
      { path: 'signature.message', message: 'template references unknown field .Signature at offset 16' },
      { path: 'headers[0].value', message: 'template references unknown field .Credentials.api_key at offset 3' },
      { path: 'headers[1].value', message: 'template references unknown field .Method at offset 3' },
    ]);
    expect(issues(config({}, { message: '{{.Credentials.pasphrase}}' }))).toEqual([
      { path: 'signature.message', message: 'template references unknown field .Credentials.pasphrase at offset 2' },
    ]);
  });

  it('requires the secret credential, the signature enums and at least one header and rule', () => {
    const cfg = config({ credentials: { key: { type: 'env', var: 'API_KEY' } }, headers: [], rules: [] }, { algorithm: 'md5', key_encoding: 'base32', output_encoding: 'raw' });
    expect(issues({ ...cfg, headers: [{ name: 'X-Sig', value: '{{ .Signature }}' }] }).map((i) => i.path).sort()).toEqual([
      'credentials.secret',
      'rules',
      'signature.algorithm',
      'signature.key_encoding',
      'signature.output_encoding',
    ]);
    expect(issues(cfg).map((i) => i.path)).toContain('headers');
    expect(issues({}).map((i) => i.path).sort()).toEqual(['credentials', 'headers', 'rules', 'signature', 'timestamp']);
  });

  it('refuses an unknown timestamp format, a header name that is not a token, and unknown fields', () => {
    const cfg = config({ timestamp: { format: 'iso8601' }, headers: [{ name: 'X Sig', value: '{{.Signature}}' }], extra: true });
    expect(issues(cfg).map((i) => i.path).sort()).toEqual(['extra', 'headers[0].name', 'timestamp.format']);
  });

  it('checks the templates again in create() for direct callers', async () => {
    const bad = config({ allow_chunked_body: false }, { message: '{{ .Credentials.nope }}' }) as unknown as HmacSignConfig;
    await expect(hmacSignTransform.create(bad, directEnv())).rejects.toThrow(/unknown field \.Credentials\.nope/);
    const noKey = config({ allow_chunked_body: false, credentials: { key: { type: 'env', var: 'API_KEY' } } }) as unknown as HmacSignConfig;
    await expect(hmacSignTransform.create(noKey, directEnv())).rejects.toThrow(/credentials\.secret/);
  });
});
