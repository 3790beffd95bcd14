import { describe, expect, it } from 'vitest';
import { createTransformEnv, envSource, type SecretSourceDefinition } from '@proxy/core';
import { recordingLogger, runTransform, testRequest, validateTransformConfig, type TestRequestInit } from '@proxy/core/testing';
import secrets, { secretsTransform } from '../src/index.js';

const REAL = {
  API_TOKEN: 'real-api-token-4f1d',
  GH_TOKEN: 'ghp-real-9a8b7c',
  ODD_TOKEN: 'real+value/with=specials&more',
};
const env = { ...REAL };
const source = (name: keyof typeof REAL | 'LONG') => ({ type: 'env', var: name });

/** Runs the transform with the test environment. */
const run = (config: unknown, request?: TestRequestInit) => runTransform(secrets, config, request, { env });

/** The secrets transform's annotations in the audit record. */
const annotationsOf = (result: Awaited<ReturnType<typeof run>>) => result.audit.request_transforms[0]?.annotations;

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

describe('secrets: definition', () => {
  it('exports the definition as default and by name', () => {
    expect(secrets).toBe(secretsTransform);
    expect(secrets.name).toBe('secrets');
  });
});

describe('secrets: replace', () => {
  const replaceIn = (replace: Record<string, unknown>, rules: unknown[] = []) => ({
    secrets: [{ source: source('API_TOKEN'), replace: { proxy_value: 'proxy-tok-1', ...replace }, rules }],
  });

  it('swaps the placeholder in a listed header and annotates where', async () => {
    const result = await run(replaceIn({ match_headers: ['Authorization'] }), { headers: { Authorization: 'Bearer proxy-tok-1' } });
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.get('authorization')).toBe(`Bearer ${REAL.API_TOKEN}`);
    expect(annotationsOf(result)).toEqual({ swapped: [{ secret: 'API_TOKEN', locations: ['header:Authorization'] }] });
  });

  it('sends a swapped header with the casing written in match_headers', async () => {
    const result = await run(replaceIn({ match_headers: ['X-Api-Key'] }), { headers: [['x-api-key', 'proxy-tok-1']] });
    expect([...result.request.headers].find(([name]) => name.toLowerCase() === 'x-api-key')).toEqual(['X-Api-Key', REAL.API_TOKEN]);
  });

  it('scans only the listed headers (literal and regex)', async () => {
    const result = await run(replaceIn({ match_headers: ['x-api-key', '/^X-.*-Token$/'] }), {
      headers: { 'X-Api-Key': 'proxy-tok-1', 'x-internal-token': 'proxy-tok-1', 'X-Other': 'proxy-tok-1' },
    });
    expect(result.request.headers.get('x-api-key')).toBe(REAL.API_TOKEN);
    expect(result.request.headers.get('x-internal-token')).toBe(REAL.API_TOKEN);
    expect(result.request.headers.get('x-other')).toBe('proxy-tok-1');
    expect(annotationsOf(result)).toEqual({
      swapped: [{ secret: 'API_TOKEN', locations: ['header:X-Api-Key', 'header:X-Internal-Token'] }],
    });
  });

  it('scans every header when match_headers is empty', async () => {
    const result = await run(replaceIn({ match_headers: [] }), { headers: { 'X-Anything': 'a proxy-tok-1 b', Cookie: 't=proxy-tok-1' } });
    expect(result.request.headers.get('x-anything')).toBe(`a ${REAL.API_TOKEN} b`);
    expect(result.request.headers.get('cookie')).toBe(`t=${REAL.API_TOKEN}`);
  });

  it('swaps inside Basic credentials and re-encodes them', async () => {
    const result = await run(replaceIn({}), { headers: { Authorization: `Basic ${b64('user:proxy-tok-1')}` } });
    expect(result.request.headers.get('authorization')).toBe(`Basic ${b64(`user:${REAL.API_TOKEN}`)}`);
    expect(annotationsOf(result)).toEqual({ swapped: [{ secret: 'API_TOKEN', locations: ['header:Authorization'] }] });
  });

  it('leaves Basic credentials without the placeholder alone', async () => {
    const original = `Basic ${b64('user:password')}`;
    const result = await run(replaceIn({}), { headers: { Authorization: original } });
    expect(result.request.headers.get('authorization')).toBe(original);
    expect(annotationsOf(result)).toBeUndefined();
  });

  it('swaps in the query only with match_query', async () => {
    const off = await run(replaceIn({}), { query: 'key=proxy-tok-1&q=x' });
    expect(off.request.query).toBe('key=proxy-tok-1&q=x');
    const on = await run(replaceIn({ match_query: true }), { query: 'key=proxy-tok-1&q=x' });
    expect(on.request.query).toBe(`key=${REAL.API_TOKEN}&q=x`);
    expect(annotationsOf(on)).toEqual({ swapped: [{ secret: 'API_TOKEN', locations: ['query'] }] });
  });

  it('finds a URL-encoded placeholder in the query and inserts the value encoded', async () => {
    const config = { secrets: [{ source: source('ODD_TOKEN'), replace: { proxy_value: 'proxy tok/1', match_query: true } }] };
    const result = await run(config, { query: 'a=1&key=proxy%20tok%2F1' });
    expect(result.request.query).toBe(`a=1&key=${encodeURIComponent(REAL.ODD_TOKEN)}`);
    expect(new URLSearchParams(result.request.query).get('key')).toBe(REAL.ODD_TOKEN);
  });

  it('swaps in the path only with match_path, keeping the value inside its segment', async () => {
    const off = await run(replaceIn({}), { path: '/botproxy-tok-1/sendMessage' });
    expect(off.request.path).toBe('/botproxy-tok-1/sendMessage');
    const on = await run(replaceIn({ match_path: true }), { path: '/botproxy-tok-1/sendMessage' });
    expect(on.request.path).toBe(`/bot${REAL.API_TOKEN}/sendMessage`);
    expect(annotationsOf(on)).toEqual({ swapped: [{ secret: 'API_TOKEN', locations: ['path'] }] });
    const odd = { secrets: [{ source: source('ODD_TOKEN'), replace: { proxy_value: 'proxy-odd', match_path: true } }] };
    const encoded = await run(odd, { path: '/botproxy-odd/send' });
    expect(encoded.request.path).toBe('/botreal+value%2Fwith=specials&more/send');
    expect(decodeURIComponent(encoded.request.path.split('/')[1]!)).toBe(`bot${REAL.ODD_TOKEN}`);
  });

  it('swaps in the body with match_body, fixing Content-Length', async () => {
    const body = '{"token":"proxy-tok-1","again":"proxy-tok-1"}';
    const expected = `{"token":"${REAL.API_TOKEN}","again":"${REAL.API_TOKEN}"}`;
    const off = await run(replaceIn({}), { method: 'POST', body });
    expect(off.forwardedBody.toString()).toBe(body);
    const on = await run(replaceIn({ match_body: true }), { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    expect(on.forwardedBody.toString()).toBe(expected);
    expect(on.request.headers.get('content-length')).toBe(String(Buffer.byteLength(expected)));
    expect(annotationsOf(on)).toEqual({ swapped: [{ secret: 'API_TOKEN', locations: ['body'] }] });
  });

  it('refuses a body it cannot scan (over the proxy body limit) with 413 instead of forwarding it unscanned', async () => {
    const result = await run(replaceIn({ match_body: true }), { method: 'POST', body: 'proxy-tok-1'.repeat(10), maxBodyBytes: 16 });
    expect(result.decision).toMatchObject({ action: 'reject', status: 413, reason: 'body_too_large' });
    expect(result.audit.rejected_by).toBe('secrets');
  });

  it('refuses (413) a body whose swapped-in secret would grow it past the body limit, before building it', async () => {
    // 4-byte placeholder, long secret: a small body would become many times larger.
    const config = { secrets: [{ source: source('LONG'), replace: { proxy_value: 'PH01', match_body: true }, rules: [] }] };
    const body = 'PH01'.repeat(1024);
    const result = await runTransform(secrets, config, { method: 'POST', body, maxBodyBytes: 64 * 1024 }, { env: { LONG: 'S'.repeat(4096) } });
    expect(result.decision).toMatchObject({ action: 'reject', status: 413, reason: 'body_too_large' });
    expect(result.audit.rejected_by).toBe('secrets');
    // Within the limit it still works.
    const small = await runTransform(secrets, config, { method: 'POST', body: 'PH01 PH01', maxBodyBytes: 64 * 1024 }, { env: { LONG: 'S'.repeat(4096) } });
    expect(small.forwardedBody.length).toBe(2 * 4096 + 1);
  });

  it('refuses (413) headers, query or path that the secret would grow past the head limit', async () => {
    const env2 = { LONG: 'S'.repeat(4096) };
    const config = (replace: Record<string, unknown>) => ({ secrets: [{ source: source('LONG'), replace: { proxy_value: 'PH01', ...replace }, rules: [] }] });
    const many = 'PH01,'.repeat(400);
    const inHeader = await runTransform(secrets, config({}), { headers: { 'X-Many': many }, maxHeadBytes: 65_536 }, { env: env2 });
    expect(inHeader.decision).toMatchObject({ action: 'reject', status: 413, reason: 'header_too_large' });
    const inBasic = await runTransform(secrets, config({}), { headers: { Authorization: `Basic ${b64(`u:${many}`)}` }, maxHeadBytes: 65_536 }, { env: env2 });
    expect(inBasic.decision).toMatchObject({ action: 'reject', status: 413, reason: 'header_too_large' });
    const inQuery = await runTransform(secrets, config({ match_query: true }), { query: `a=${many}`, maxHeadBytes: 65_536 }, { env: env2 });
    expect(inQuery.decision).toMatchObject({ action: 'reject', status: 413, reason: 'header_too_large' });
    const inPath = await runTransform(secrets, config({ match_path: true }), { path: `/${many}`, maxHeadBytes: 65_536 }, { env: env2 });
    expect(inPath.decision).toMatchObject({ action: 'reject', status: 413, reason: 'header_too_large' });
    // A few occurrences fit.
    const fits = await runTransform(secrets, config({}), { headers: { 'X-Few': 'PH01 PH01' }, maxHeadBytes: 65_536 }, { env: env2 });
    expect(fits.decision.action).toBe('continue');
    expect(fits.request.headers.get('x-few')).toBe(`${env2.LONG} ${env2.LONG}`);
  });

  it('reports every location it swapped in', async () => {
    const config = replaceIn({ match_headers: [], match_query: true, match_path: true, match_body: true });
    const result = await run(config, {
      method: 'POST',
      path: '/v1/proxy-tok-1',
      query: 't=proxy-tok-1',
      headers: { Authorization: 'Bearer proxy-tok-1' },
      body: 'proxy-tok-1',
    });
    expect(annotationsOf(result)).toEqual({
      swapped: [{ secret: 'API_TOKEN', locations: ['header:Authorization', 'query', 'path', 'body'] }],
    });
  });

  describe('require', () => {
    const strict = replaceIn({ match_headers: ['X-Required'], require: true }, [{ host: 'api.example.com', paths: ['/strict/*'] }]);

    it('refuses a request in scope without the placeholder (403 proxy_token_missing)', async () => {
      const result = await run(strict, { host: 'api.example.com', path: '/strict/a', headers: { 'X-Required': 'something-else' } });
      expect(result.decision).toMatchObject({ action: 'reject', status: 403, reason: 'proxy_token_missing' });
      expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'secrets', reason: 'proxy_token_missing' });
      expect(annotationsOf(result)).toMatchObject({ missing_proxy_token: 'API_TOKEN' });
    });

    it('does not count the placeholder in a location it does not scan', async () => {
      const result = await run(strict, { host: 'api.example.com', path: '/strict/a', headers: { Authorization: 'proxy-tok-1' } });
      expect(result.decision).toMatchObject({ action: 'reject', status: 403 });
    });

    it('swaps when the placeholder is present', async () => {
      const result = await run(strict, { host: 'api.example.com', path: '/strict/b', headers: { 'X-Required': 'proxy-tok-1' } });
      expect(result.decision.action).toBe('continue');
      expect(result.request.headers.get('x-required')).toBe(REAL.API_TOKEN);
    });

    it('counts a placeholder found only in the body, and refuses a body without one', async () => {
      const inBody = replaceIn({ match_headers: ['X-Required'], match_body: true, require: true });
      const found = await run(inBody, { method: 'POST', body: '{"key":"proxy-tok-1"}' });
      expect(found.decision.action).toBe('continue');
      expect(annotationsOf(found)).toEqual({ swapped: [{ secret: 'API_TOKEN', locations: ['body'] }] });
      const missing = await run(inBody, { method: 'POST', body: '{"key":"other"}' });
      expect(missing.decision).toMatchObject({ action: 'reject', status: 403, reason: 'proxy_token_missing' });
      expect(annotationsOf(missing)).toEqual({ missing_proxy_token: 'API_TOKEN', rejected: 'proxy_token_missing' });
    });

    it('refuses a host-only (sni-only) request to a host it requires a placeholder for', async () => {
      const hostOnly = replaceIn({ require: true }, [{ host: 'api.example.com' }]);
      const result = await run(hostOnly, { host: 'api.example.com', mode: 'sni-only', method: '', path: '' });
      expect(result.decision).toMatchObject({ action: 'reject', status: 403, reason: 'proxy_token_missing' });
    });

    it('leaves the opening of a tunnel to its host alone: the requests inside are checked', async () => {
      const hostOnly = replaceIn({ require: true }, [{ host: 'api.example.com' }]);
      const opening = await run(hostOnly, { host: 'api.example.com', mode: 'tunnel', method: '', path: '' });
      expect(opening.decision.action).toBe('continue');
      expect(annotationsOf(opening)).toBeUndefined();
      const inside = await run(hostOnly, { host: 'api.example.com', mode: 'mitm', path: '/v1/x' });
      expect(inside.decision).toMatchObject({ action: 'reject', status: 403, reason: 'proxy_token_missing' });
    });

    it('ignores requests outside the rules', async () => {
      const result = await run(strict, { host: 'api.example.com', path: '/open' });
      expect(result.decision.action).toBe('continue');
    });
  });

  it('skips entries whose rules do not match', async () => {
    const config = replaceIn({}, [{ host: 'api.example.com', methods: ['POST'] }]);
    const other = await run(config, { host: 'other.example.com', method: 'POST', headers: { Authorization: 'proxy-tok-1' } });
    expect(other.request.headers.get('authorization')).toBe('proxy-tok-1');
    expect(annotationsOf(other)).toBeUndefined();
    const get = await run(config, { host: 'api.example.com', method: 'GET', headers: { Authorization: 'proxy-tok-1' } });
    expect(get.request.headers.get('authorization')).toBe('proxy-tok-1');
    const post = await run(config, { host: 'api.example.com', method: 'POST', headers: { Authorization: 'proxy-tok-1' } });
    expect(post.request.headers.get('authorization')).toBe(REAL.API_TOKEN);
  });

  it('accepts the legacy form with the replace fields at the top level', async () => {
    const legacy = {
      secrets: [{ source: source('API_TOKEN'), proxy_value: 'proxy-tok-1', match_headers: ['X-Key'], match_query: true, require: true }],
    };
    const swapped = await run(legacy, { headers: { 'x-key': 'proxy-tok-1' }, query: 'k=proxy-tok-1' });
    expect([...swapped.request.headers].find(([name]) => name.toLowerCase() === 'x-key')).toEqual(['X-Key', REAL.API_TOKEN]);
    expect(swapped.request.query).toBe(`k=${REAL.API_TOKEN}`);
    const missing = await run(legacy, {});
    expect(missing.decision).toMatchObject({ action: 'reject', status: 403, reason: 'proxy_token_missing' });
  });
});

describe('secrets: inject', () => {
  it('sets a header through a Bearer formatter, with the configured casing, over the client value', async () => {
    const config = { secrets: [{ source: source('API_TOKEN'), inject: { header: 'Authorization', formatter: 'Bearer {{ .Value }}' } }] };
    const result = await run(config, { headers: [['authorization', 'Bearer client-supplied']] });
    expect([...result.request.headers].filter(([name]) => name.toLowerCase() === 'authorization')).toEqual([
      ['Authorization', `Bearer ${REAL.API_TOKEN}`],
    ]);
    expect(annotationsOf(result)).toEqual({ injected: [{ secret: 'API_TOKEN', locations: ['header:Authorization'] }] });
  });

  it('builds Basic credentials with base64', async () => {
    const config = {
      secrets: [{ source: source('GH_TOKEN'), inject: { header: 'Authorization', formatter: 'Basic {{ base64 "x-access-token:" .Value }}' } }],
    };
    const result = await run(config, {});
    expect(result.request.headers.get('authorization')).toBe(`Basic ${b64(`x-access-token:${REAL.GH_TOKEN}`)}`);
  });

  it('uses the bare value without a formatter', async () => {
    const config = { secrets: [{ source: source('API_TOKEN'), inject: { header: 'x-api-key' } }] };
    const result = await run(config, {});
    expect([...result.request.headers].find(([name]) => name === 'x-api-key')).toEqual(['x-api-key', REAL.API_TOKEN]);
    expect(annotationsOf(result)).toEqual({ injected: [{ secret: 'API_TOKEN', locations: ['header:X-Api-Key'] }] });
  });

  it('sets a query parameter, URL-encoded, replacing one the client sent', async () => {
    const config = { secrets: [{ source: source('ODD_TOKEN'), inject: { query_param: 'api_key' } }] };
    const result = await run(config, { query: 'q=1&api_key=client&z=2' });
    expect(result.request.query).toBe(`q=1&z=2&api_key=${encodeURIComponent(REAL.ODD_TOKEN)}`);
    expect(new URLSearchParams(result.request.query).getAll('api_key')).toEqual([REAL.ODD_TOKEN]);
    expect(annotationsOf(result)).toEqual({ injected: [{ secret: 'ODD_TOKEN', locations: ['query:api_key'] }] });
  });

  it('injects only on requests matching its rules', async () => {
    const config = {
      secrets: [{ source: source('API_TOKEN'), inject: { header: 'X-Api-Key' }, rules: [{ host: 'api.example.com', paths: ['/inject/*'] }] }],
    };
    const outside = await run(config, { host: 'api.example.com', path: '/other' });
    expect(outside.request.headers.has('x-api-key')).toBe(false);
    const inside = await run(config, { host: 'api.example.com', path: '/inject/x' });
    expect(inside.request.headers.get('x-api-key')).toBe(REAL.API_TOKEN);
  });
});

describe('secrets: ports in rules', () => {
  const placeholder = { headers: { Authorization: 'Bearer proxy-tok-1' } };
  const scoped = (rules: unknown[], require = false) => ({
    secrets: [{ source: source('API_TOKEN'), replace: { proxy_value: 'proxy-tok-1', match_headers: ['Authorization'], require }, rules }],
  });

  it('never sends a secret scoped to host:443 in cleartext, even to port 443', async () => {
    const config = scoped([{ host: 'api.example.com:443' }]);
    const tls = await run(config, { host: 'api.example.com', scheme: 'https', port: 443, ...placeholder });
    expect(tls.request.headers.get('authorization')).toBe(`Bearer ${REAL.API_TOKEN}`);
    for (const mode of ['http', 'reverse'] as const) {
      const cleartext = await run(config, { host: 'api.example.com', scheme: 'http', port: 443, mode, ...placeholder });
      expect(cleartext.decision.action, mode).toBe('continue');
      expect(cleartext.request.headers.get('authorization'), mode).toBe('Bearer proxy-tok-1');
      expect(cleartext.request.headers.toRaw().join('\n')).not.toContain(REAL.API_TOKEN);
      expect(annotationsOf(cleartext), mode).toBeUndefined();
    }
    const port80 = await run(config, { host: 'api.example.com', scheme: 'http', port: 80, ...placeholder });
    expect(port80.request.headers.get('authorization')).toBe('Bearer proxy-tok-1');
  });

  it('with require, does not demand a placeholder outside the scoped port: the secret is not in play there', async () => {
    const config = scoped([{ host: 'api.example.com:443' }], true);
    const cleartext = await run(config, { host: 'api.example.com', scheme: 'http', port: 443, headers: { Authorization: 'x' } });
    expect(cleartext.decision.action).toBe('continue');
    const tls = await run(config, { host: 'api.example.com', scheme: 'https', port: 443, headers: { Authorization: 'x' } });
    expect(tls.decision).toMatchObject({ action: 'reject', status: 403, reason: 'proxy_token_missing' });
  });

  it('applies only on the ports its rules name', async () => {
    const config = scoped([{ host: 'api.example.com', ports: [8443, '9000-9099'] }]);
    for (const port of [8443, 9000, 9099]) {
      const hit = await run(config, { host: 'api.example.com', scheme: 'https', port, ...placeholder });
      expect(hit.request.headers.get('authorization'), `${port}`).toBe(`Bearer ${REAL.API_TOKEN}`);
    }
    for (const port of [443, 8080, 9100]) {
      const miss = await run(config, { host: 'api.example.com', scheme: 'https', port, ...placeholder });
      expect(miss.request.headers.get('authorization'), `${port}`).toBe('Bearer proxy-tok-1');
    }
  });

  it('matches any port when its rules name none (as iron-proxy does)', async () => {
    const config = scoped([{ host: 'api.example.com' }]);
    for (const [scheme, port] of [['https', 443], ['http', 80], ['http', 8080], ['https', 8443]] as const) {
      const result = await run(config, { host: 'api.example.com', scheme, port, ...placeholder });
      expect(result.request.headers.get('authorization'), `${scheme}:${port}`).toBe(`Bearer ${REAL.API_TOKEN}`);
    }
  });
});

describe('secrets: values never reach the audit record', () => {
  it('names secrets by their source label only', async () => {
    const config = {
      secrets: [
        { source: source('API_TOKEN'), replace: { proxy_value: 'proxy-tok-1', match_body: true, match_query: true, match_path: true } },
        { source: source('GH_TOKEN'), inject: { header: 'X-Gh', formatter: 'token {{ .Value }}' } },
        { source: source('ODD_TOKEN'), inject: { query_param: 'k' } },
      ],
    };
    const result = await run(config, {
      method: 'POST',
      path: '/p/proxy-tok-1',
      query: 'a=proxy-tok-1',
      headers: { Authorization: `Basic ${b64('u:proxy-tok-1')}`, 'X-Key': 'proxy-tok-1' },
      body: 'proxy-tok-1',
    });
    expect(annotationsOf(result)).toEqual({
      swapped: [{ secret: 'API_TOKEN', locations: ['header:Authorization', 'header:X-Key', 'query', 'path', 'body'] }],
      injected: [
        { secret: 'GH_TOKEN', locations: ['header:X-Gh'] },
        { secret: 'ODD_TOKEN', locations: ['query:k'] },
      ],
    });
    const audit = JSON.stringify(result.audit);
    for (const value of Object.values(REAL)) {
      expect(audit).not.toContain(value);
      expect(audit).not.toContain(encodeURIComponent(value));
      expect(audit).not.toContain(b64(value));
    }
    expect(audit).not.toContain(b64(`u:${REAL.API_TOKEN}`));
  });
});

describe('secrets: startup', () => {
  it('starts when a source cannot be read, injecting the secrets that can be', async () => {
    const config = {
      secrets: [
        { source: source('API_TOKEN'), inject: { header: 'X-A' } },
        { source: { type: 'env', var: 'NOT_SET_ANYWHERE' }, inject: { header: 'X-B' } },
      ],
    };
    const result = await run(config, {});
    expect(result.request.headers.get('x-a')).toBe(REAL.API_TOKEN);
    expect(result.request.headers.get('x-b')).toBeUndefined();
    expect(annotationsOf(result)).toMatchObject({ secret_unavailable: ['NOT_SET_ANYWHERE'] });
  });
});

describe('secrets: schema', () => {
  const valid = (config: unknown) => validateTransformConfig(secrets, config);

  it.each([
    ['inject with a header', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'Authorization', formatter: 'Bearer {{ .Value }}' } }] }],
    ['inject with a query parameter', { secrets: [{ source: source('API_TOKEN'), inject: { query_param: 'key' } }] }],
    ['replace', { secrets: [{ source: source('API_TOKEN'), replace: { proxy_value: 'p', match_headers: ['a', '/^b$/'], require: true } }] }],
    ['the legacy form', { secrets: [{ source: source('API_TOKEN'), proxy_value: 'p', match_body: true }] }],
    ['no secrets at all', {}],
  ])('accepts %s', (_, config) => {
    expect(valid(config)).toEqual([]);
  });

  it.each([
    ['an unknown top-level key', { secret: [] }],
    ['an unknown entry key', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A' }, extra: true }] }],
    ['an unknown replace key', { secrets: [{ source: source('API_TOKEN'), replace: { proxy_value: 'p', match_cookies: true } }] }],
    ['an unknown inject key', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A', prefix: 'x' } }] }],
    ['both inject and replace', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A' }, replace: { proxy_value: 'p' } }] }],
    ['replace mixed with the legacy fields', { secrets: [{ source: source('API_TOKEN'), replace: { proxy_value: 'p' }, match_body: true }] }],
    ['inject mixed with the legacy fields', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A' }, proxy_value: 'p' }] }],
    ['legacy fields without proxy_value', { secrets: [{ source: source('API_TOKEN'), match_body: true }] }],
    ['neither inject nor replace', { secrets: [{ source: source('API_TOKEN') }] }],
    ['no source', { secrets: [{ inject: { header: 'A' } }] }],
    ['a formatter with an unknown field', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A', formatter: 'Bearer {{ .Secret }}' } }] }],
    ['a formatter with an unknown function', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A', formatter: '{{ env "HOME" }}' } }] }],
    ['inject with header and query_param', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A', query_param: 'k' } }] }],
    ['inject with neither header nor query_param', { secrets: [{ source: source('API_TOKEN'), inject: { formatter: '{{ .Value }}' } }] }],
    ['a formatter on a query parameter', { secrets: [{ source: source('API_TOKEN'), inject: { query_param: 'k', formatter: 'x{{ .Value }}' } }] }],
    ['an invalid header name', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'Bad Header' } }] }],
    ['an empty proxy_value', { secrets: [{ source: source('API_TOKEN'), replace: { proxy_value: '' } }] }],
    ['a match_headers regex that does not compile', { secrets: [{ source: source('API_TOKEN'), replace: { proxy_value: 'p', match_headers: ['/(/'] } }] }],
    ['an unknown source type', { secrets: [{ source: { type: 'vault', path: 'x' }, inject: { header: 'A' } }] }],
    ['a bad rule', { secrets: [{ source: source('API_TOKEN'), inject: { header: 'A' }, rules: [{ host: 'a.com', port: 1 }] }] }],
  ])('rejects %s', (_, config) => {
    expect(valid(config).length).toBeGreaterThan(0);
  });
});

describe('secrets: a secret that cannot be fetched', () => {
  const entry = (extra: Record<string, unknown>) => ({ source: { type: 'env', var: 'UNSET_TOKEN' }, rules: [], ...extra });

  it('does not stop the transform from starting, and leaves requests untouched without require', async () => {
    const result = await run(
      { secrets: [entry({ replace: { proxy_value: 'proxy-tok-1' } }), { source: source('API_TOKEN'), replace: { proxy_value: 'proxy-tok-2' }, rules: [] }] },
      { headers: { 'X-A': 'proxy-tok-1', 'X-B': 'proxy-tok-2' } },
    );
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.get('x-a')).toBe('proxy-tok-1');
    expect(result.request.headers.get('x-b')).toBe(REAL.API_TOKEN);
    expect(annotationsOf(result)).toEqual({
      secret_unavailable: ['UNSET_TOKEN'],
      skipped: [{ secret: 'UNSET_TOKEN', reason: 'secret_unavailable' }],
      swapped: [{ secret: 'API_TOKEN', locations: ['header:X-B'] }],
    });
  });

  it('leaves an inject entry out', async () => {
    const result = await run({ secrets: [entry({ inject: { header: 'Authorization' } })] }, { headers: {} });
    expect(result.decision.action).toBe('continue');
    expect(result.request.headers.get('authorization')).toBeUndefined();
    expect(annotationsOf(result)).toMatchObject({ secret_unavailable: ['UNSET_TOKEN'] });
  });

  it('refuses with 403 secret_unavailable a request in scope of a require entry', async () => {
    const result = await run({ secrets: [entry({ replace: { proxy_value: 'proxy-tok-1', require: true } })] }, { headers: { 'X-A': 'proxy-tok-1' } });
    expect(result.decision).toMatchObject({ action: 'reject', status: 403, reason: 'secret_unavailable' });
    expect(result.audit).toMatchObject({ action: 'reject', rejected_by: 'secrets', reason: 'secret_unavailable' });
    expect(annotationsOf(result)).toMatchObject({ missing_secret: 'UNSET_TOKEN', secret_unavailable: ['UNSET_TOKEN'] });
  });

  it('ignores the unavailable secret for requests out of its scope', async () => {
    const result = await run(
      { secrets: [entry({ replace: { proxy_value: 'proxy-tok-1', require: true }, rules: [{ host: 'api.example.com' }] })] },
      { host: 'other.example.com' },
    );
    expect(result.decision.action).toBe('continue');
    expect(annotationsOf(result)).toBeUndefined();
  });
});


describe('secrets: a secret still on its first fetch', () => {
  /** An `env`-typed backend whose fetches wait for the test, so requests can arrive while it is pending. */
  function gatedEnv(): { definition: SecretSourceDefinition; settle: Map<string, { resolve: (v: string) => void; reject: (e: Error) => void }> } {
    const settle = new Map<string, { resolve: (v: string) => void; reject: (e: Error) => void }>();
    return {
      settle,
      definition: {
        ...envSource,
        create: (config) => ({ fetch: () => new Promise<string>((resolve, reject) => settle.set(String(config.var), { resolve, reject })) }),
      },
    };
  }

  async function create(config: unknown) {
    const gated = gatedEnv();
    const controller = new AbortController();
    const env = createTransformEnv({
      instanceId: 'secrets#0',
      logger: recordingLogger([]),
      http: () => Promise.reject(new Error('offline')),
      signal: controller.signal,
      secretSources: [gated.definition],
    });
    const instance = await secretsTransform.create(config as never, env);
    return { instance, settle: gated.settle, close: () => (instance.close?.(), controller.abort()) };
  }

  const recordingTrace = () => {
    const annotations: Record<string, unknown> = {};
    return { annotations, annotate: (key: string, value: unknown) => void (annotations[key] = value), group: () => undefined };
  };

  const config = {
    secrets: [
      { source: { type: 'env', var: 'SCOPED' }, replace: { proxy_value: 'ph-scoped', require: true }, rules: [{ host: 'api.example.com' }] },
      { source: { type: 'env', var: 'OTHER' }, inject: { header: 'X-Other' }, rules: [{ host: 'other.example.com' }] },
    ],
  };

  it('waits for the fetch of a secret in scope, then swaps the value it got', async () => {
    const { instance, settle, close } = await create(config);
    const request = testRequest({ host: 'api.example.com', headers: { 'X-Key': 'ph-scoped' } });
    const trace = recordingTrace();
    const decision = instance.onRequest!(request, trace);
    expect(decision).toBeInstanceOf(Promise);
    settle.get('SCOPED')!.resolve('scoped-real-value');
    await expect(decision).resolves.toEqual({ action: 'continue' });
    expect(request.headers.get('x-key')).toBe('scoped-real-value');
    close();
  });

  it('applies the unavailable rules when the fetch it waited for fails (require: 403)', async () => {
    const { instance, settle, close } = await create(config);
    const trace = recordingTrace();
    const decision = instance.onRequest!(testRequest({ host: 'api.example.com', headers: { 'X-Key': 'ph-scoped' } }), trace);
    settle.get('SCOPED')!.reject(new Error('backend down'));
    await expect(decision).resolves.toMatchObject({ action: 'reject', status: 403, reason: 'secret_unavailable' });
    expect(trace.annotations).toMatchObject({ missing_secret: 'SCOPED' });
    close();
  });

  it('does not wait for a pending secret out of scope, and answers synchronously once all have settled', async () => {
    const { instance, settle, close } = await create(config);
    const elsewhere = instance.onRequest!(testRequest({ host: 'unrelated.example.com' }), recordingTrace());
    expect(elsewhere).not.toBeInstanceOf(Promise);
    settle.get('SCOPED')!.resolve('scoped-real-value');
    settle.get('OTHER')!.resolve('other-real-value');
    const waited = instance.onRequest!(testRequest({ host: 'other.example.com' }), recordingTrace());
    await waited;
    const request = testRequest({ host: 'other.example.com' });
    const later = instance.onRequest!(request, recordingTrace());
    expect(later).not.toBeInstanceOf(Promise);
    expect(request.headers.get('x-other')).toBe('other-real-value');
    close();
  });
});
