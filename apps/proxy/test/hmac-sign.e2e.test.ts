/**
 * `hmac_sign` end to end: the reference's example configs, each run by the built binary in
 * front of an upstream that recomputes the signature with Node's crypto from the raw request
 * it received (as the real API would) and answers 200 only when it matches. Also: a body over
 * `max_request_body_bytes` (413, never forwarded), chunked bodies (400 unless allowed), config
 * errors reported by `proxy validate` with file, line and field, and a search of every byte
 * the proxy and the CLI wrote for every secret and every signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, requireCommand, startDnsServer, type DnsTestServer, type TestPki } from '@proxy/test-kit';
import { startHmacUpstream, type HmacUpstream, type ReceivedRequest, type SignatureCheck } from './support/hmac-upstream.js';
import { curl, runCli, startProxyProcess, type CommandResult, type ProxyProcess } from './support/proxy-process.js';

/** Key material as text, so a leak of the decoded key is as searchable as one of its encoding. */
const KEY_TEXT = {
  intro: 'intro-signing-key-material-0001',
  ex1: 'example-one-signing-key-material-02',
  falconx: 'falconx-signing-key-material-0003',
  partner: 'partner-signing-key-material-0004',
};
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const hex = (text: string): string => Buffer.from(text).toString('hex');

/** The environment of each proxy: what the example's `credentials` read. */
const ENV = {
  intro: { API_SECRET: b64(KEY_TEXT.intro), PARTNER_CLIENT_ID: 'partner-client-id-7e5d3c1b', PARTNER_SECRET: hex(KEY_TEXT.partner) },
  ex1: { API_KEY: 'ex1-access-key-5c7e9a1b', API_SECRET: b64(KEY_TEXT.ex1), API_PASSPHRASE: 'ex1-passphrase-8d2f4b6a' },
  ex2: { API_KEY: 'ex2-access-key-3a9c1e7f', API_SECRET: 'ex2-raw-signing-secret-6b0d2f8a' },
  falconx: { FALCONX_API_KEY: 'fx-api-key-2b4d6f8a0c', FALCONX_SECRET: b64(KEY_TEXT.falconx), FALCONX_PASSPHRASE: 'fx-passphrase-9e7c5a3b' },
};

// The reference's example configs, as written there. The HTTP examples and the partner scheme
// (not from the reference: the knobs the examples leave out) share the first proxy.
const EXAMPLES = {
  intro: `  - name: hmac_sign
    config:
      timestamp:
        format: unix_seconds
      signature:
        algorithm: sha256
        key_encoding: base64
        output_encoding: base64
        message: "{{.Timestamp}}{{.Method}}{{.PathWithQuery}}{{.Body}}"
      credentials:
        secret: {type: env, var: API_SECRET}
      headers:
        - {name: "X-Signature", value: "{{.Signature}}"}
        - {name: "X-Timestamp", value: "{{.Timestamp}}"}
      rules:
        - host: "api.example.com"
`,
  ex1: `  - name: hmac_sign
    config:
      timestamp:
        format: unix_seconds
      signature:
        algorithm: sha256
        key_encoding: base64
        output_encoding: base64
        message: "{{.Timestamp}}{{.Method}}{{.PathWithQuery}}{{.Body}}"
      credentials:
        key: {type: env, var: API_KEY}
        secret: {type: env, var: API_SECRET}
        passphrase: {type: env, var: API_PASSPHRASE}
      headers:
        - {name: "X-ACCESS-KEY", value: "{{.Credentials.key}}"}
        - {name: "X-ACCESS-SIGN", value: "{{.Signature}}"}
        - {name: "X-ACCESS-TIMESTAMP", value: "{{.Timestamp}}"}
        - {name: "X-ACCESS-PASSPHRASE", value: "{{.Credentials.passphrase}}"}
      rules:
        - host: "api.example.com"
`,
  ex2: `  - name: hmac_sign
    config:
      timestamp:
        format: unix_seconds
      signature:
        algorithm: sha256
        key_encoding: raw
        output_encoding: hex
        message: "{{.Timestamp}}{{.Method}}{{.Path}}{{.Credentials.key}}{{.Body}}"
      credentials:
        key: {type: env, var: API_KEY}
        secret: {type: env, var: API_SECRET}
      headers:
        - {name: "X-Access-Key", value: "{{.Credentials.key}}"}
        - {name: "X-Signature", value: "{{.Signature}}"}
        - {name: "X-Timestamp", value: "{{.Timestamp}}"}
      rules:
        - host: "api.example.com"
`,
  falconx: `  - name: hmac_sign
    config:
      timestamp:
        format: unix_seconds
      signature:
        algorithm: sha256
        key_encoding: base64
        output_encoding: base64
        message: "{{.Timestamp}}{{.Method}}{{.PathWithQuery}}{{.Body}}"
      credentials:
        key: {type: env, var: FALCONX_API_KEY}
        secret: {type: env, var: FALCONX_SECRET}
        passphrase: {type: env, var: FALCONX_PASSPHRASE}
      headers:
        - {name: "FX-ACCESS-KEY", value: "{{.Credentials.key}}"}
        - {name: "FX-ACCESS-SIGN", value: "{{.Signature}}"}
        - {name: "FX-ACCESS-TIMESTAMP", value: "{{.Timestamp}}"}
        - {name: "FX-ACCESS-PASSPHRASE", value: "{{.Credentials.passphrase}}"}
      rules:
        - host: "api.falconx.io"
`,
};

const PARTNER = `  - name: hmac_sign
    config:
      timestamp: { format: rfc3339 }
      signature:
        algorithm: sha512
        key_encoding: hex
        output_encoding: hex
        message: "{{.Method}}\\n{{.Host}}\\n{{.Path}}\\n{{.Query}}\\n{{.Timestamp}}\\n{{.Body}}"
      credentials:
        secret: { type: env, var: PARTNER_SECRET }
        client_id: { type: env, var: PARTNER_CLIENT_ID }
      headers:
        - { name: "authorization", value: "HMAC-SHA512 Credential={{ .Credentials.client_id }}, Signature={{ .Signature }}" }
        - { name: "x-partner-date", value: "{{ .Timestamp }}" }
      allow_chunked_body: true
      rules:
        - host: "api.partner.test"
`;

/** Max body the first proxy buffers: the 413 case sends more. */
const MAX_BODY = 4096;

const hmac = (algorithm: string, key: Buffer | string, message: Buffer, output: 'base64' | 'hex'): string =>
  createHmac(algorithm, key).update(message).digest(output);
const same = (a: string, b: string): boolean => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
const concat = (text: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(text, 'utf8'), body]);

/** A timestamp within five minutes of now, as an API would demand. */
function fresh(ms: number): boolean {
  return Number.isFinite(ms) && Math.abs(ms - Date.now()) < 300_000;
}

/** Headers a check needs, by exact name: a miss (or another casing) fails the check. */
function need(r: ReceivedRequest, ...names: string[]): string[] | string {
  const values = names.map((n) => r.header(n));
  const missing = names.filter((_, i) => values[i] === undefined);
  return missing.length > 0 ? `missing header(s), exact casing: ${missing.join(', ')}` : (values as string[]);
}

/**
 * `timestamp + method + path?query + body`, HMAC-SHA256, base64 key and signature (the page
 * example, worked example 1, FalconX); `fixed` lists headers that must carry a known value.
 */
function tsMethodPathBody(names: { timestamp: string; signature: string }, keyBase64: string, fixed: Record<string, string> = {}): SignatureCheck {
  return (r) => {
    const got = need(r, names.timestamp, names.signature, ...Object.keys(fixed));
    if (typeof got === 'string') return got;
    const [ts = '', sig = '', ...rest] = got;
    if (!/^\d+$/.test(ts) || !fresh(Number(ts) * 1000)) return `stale or malformed timestamp ${ts}`;
    const wrong = Object.keys(fixed).find((name, i) => rest[i] !== fixed[name]);
    if (wrong !== undefined) return `wrong ${wrong}`;
    return same(sig, hmac('sha256', Buffer.from(keyBase64, 'base64'), concat(`${ts}${r.method}${r.url}`, r.body), 'base64')) ? undefined : 'bad signature';
  };
}

const CHECKS: Record<string, SignatureCheck> = {
  intro: tsMethodPathBody({ timestamp: 'X-Timestamp', signature: 'X-Signature' }, ENV.intro.API_SECRET),
  ex1: tsMethodPathBody({ timestamp: 'X-ACCESS-TIMESTAMP', signature: 'X-ACCESS-SIGN' }, ENV.ex1.API_SECRET, {
    'X-ACCESS-KEY': ENV.ex1.API_KEY,
    'X-ACCESS-PASSPHRASE': ENV.ex1.API_PASSPHRASE,
  }),
  falconx: tsMethodPathBody({ timestamp: 'FX-ACCESS-TIMESTAMP', signature: 'FX-ACCESS-SIGN' }, ENV.falconx.FALCONX_SECRET, {
    'FX-ACCESS-KEY': ENV.falconx.FALCONX_API_KEY,
    'FX-ACCESS-PASSPHRASE': ENV.falconx.FALCONX_PASSPHRASE,
  }),
  // Example 2: `timestamp + method + path + access key + body`, raw key, hex signature.
  ex2: (r) => {
    const got = need(r, 'X-Timestamp', 'X-Signature', 'X-Access-Key');
    if (typeof got === 'string') return got;
    const [ts = '', sig = '', key = ''] = got;
    if (!/^\d+$/.test(ts) || !fresh(Number(ts) * 1000)) return `stale or malformed timestamp ${ts}`;
    if (key !== ENV.ex2.API_KEY) return 'wrong access key';
    const path = r.url.split('?')[0] ?? '';
    return same(sig, hmac('sha256', ENV.ex2.API_SECRET, concat(`${ts}${r.method}${path}${key}`, r.body), 'hex')) ? undefined : 'bad signature';
  },
  // The partner scheme: newline-joined method, host, path, query, RFC 3339 date and body; SHA-512, hex key and signature.
  partner: (r) => {
    const got = need(r, 'authorization', 'x-partner-date');
    if (typeof got === 'string') return got;
    const [auth = '', date = ''] = got;
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(date) || !fresh(Date.parse(date))) return `stale or malformed date ${date}`;
    const m = /^HMAC-SHA512 Credential=([^,]+), Signature=([0-9a-f]{128})$/.exec(auth);
    if (m === null || m[1] !== ENV.intro.PARTNER_CLIENT_ID) return 'malformed authorization';
    const [path = '', query = ''] = r.url.split('?');
    const message = concat(`${r.method}\n${r.hostname}\n${path}\n${query}\n${date}\n`, r.body);
    return same(m[2]!, hmac('sha512', Buffer.from(ENV.intro.PARTNER_SECRET, 'hex'), message, 'hex')) ? undefined : 'bad signature';
  },
};

let dns: DnsTestServer;
let upstream: HmacUpstream;
let tlsUpstream: HmacUpstream;
let upstreamPki: TestPki;
let dir: string;
const proxies: Record<keyof typeof EXAMPLES, ProxyProcess> = {} as Record<keyof typeof EXAMPLES, ProxyProcess>;
/** Every `proxy` CLI run of this suite besides the proxies themselves (all of their output is searched for secrets). */
const cliRuns: CommandResult[] = [];
/** Every curl run through a proxy (the error bodies the proxy answered are searched for secrets). */
const curlRuns: CommandResult[] = [];

const httpProxyConfig = (transforms: string, extra = ''): string => `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"   # test: the API names resolve to the local upstream
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []                # test: the upstream is on loopback
${extra}log:
  level: debug
transforms:
${transforms}`;

beforeAll(async () => {
  upstreamPki = await createTestPki({ names: ['api.falconx.io'], caName: 'hmac upstream CA' });
  [upstream, tlsUpstream] = await Promise.all([startHmacUpstream(CHECKS), startHmacUpstream(CHECKS, { cert: upstreamPki.cert, key: upstreamPki.key })]);
  const local = { A: ['127.0.0.1'] };
  dns = await startDnsServer({ records: { 'api.example.com': local, 'api.partner.test': local, 'api.falconx.io': local } });
  dir = await mkdtemp(join(tmpdir(), 'proxy-hmac-e2e-'));
  const ca = await runCli(['ca', 'generate', '--out', dir]);
  expect(ca.code).toBe(0);
  cliRuns.push(ca);
  const falconx = `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"   # test: api.falconx.io resolves to the local upstream
proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []                # test: the upstream is on loopback
tls:
  mode: mitm
  ca_cert: "ca.crt"
  ca_key: "ca.key"
  upstream_ca_bundle: "${upstreamPki.caFile}"   # test: the upstream's own test CA
log:
  level: debug
transforms:
${EXAMPLES.falconx}`;
  [proxies.intro, proxies.ex1, proxies.ex2, proxies.falconx] = await Promise.all([
    startProxyProcess(httpProxyConfig(EXAMPLES.intro + PARTNER, `  max_request_body_bytes: ${MAX_BODY}\n`), { env: ENV.intro }),
    startProxyProcess(httpProxyConfig(EXAMPLES.ex1), { env: ENV.ex1 }),
    startProxyProcess(httpProxyConfig(EXAMPLES.ex2), { env: ENV.ex2 }),
    startProxyProcess(falconx, { env: ENV.falconx, dir }),
  ]);
});

afterAll(async () => {
  await Promise.all(Object.values(proxies).map((p) => p.stop()));
  await upstream?.close();
  await tlsUpstream?.close();
  await dns?.close();
  await upstreamPki?.remove();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

interface UpstreamAnswer {
  ok: boolean;
  why?: string;
  rawHeaders?: string[];
  framing?: { 'content-length': string | null; 'transfer-encoding': string | null };
}

/** curl through `proxy`'s forward listener; returns the status and the upstream's (or the proxy's) answer. */
async function viaProxy(proxy: ProxyProcess, url: string, args: readonly string[] = []): Promise<{ status: number; type: string; body: string }> {
  const r = await curl(['-x', `http://127.0.0.1:${proxy.port('http')}`, '-w', '\n%{http_code} %{content_type}', ...args, url]);
  curlRuns.push(r);
  const cut = r.stdout.lastIndexOf('\n');
  const [status = '', ...type] = r.stdout.slice(cut + 1).split(' ');
  return { status: Number(status), type: type.join(' '), body: r.stdout.slice(0, Math.max(cut, 0)) };
}

/** The proxy's JSON refusal of a request. */
const refusal = (status: number, reason: string) => ({ status, type: 'application/json; charset=utf-8', body: `{"error":"hmac_sign","reason":"${reason}"}` });

const BODY = '{"product_id":"BTC-USD","side":"buy","size":"0.01"}';
const post = ['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', BODY];

describe('the reference examples, verified by an upstream that recomputes the signature', () => {
  const httpExamples: [name: 'intro' | 'ex1' | 'ex2', what: string][] = [
    ['intro', 'the page example (X-Signature, X-Timestamp)'],
    ['ex1', 'worked example 1 (timestamp + method + path + body, four headers)'],
    ['ex2', 'worked example 2 (access key mixed into the prehash, raw key, hex)'],
  ];
  it.each(httpExamples)('%s: %s', async (name) => {
    const proxy = proxies[name];
    const base = `http://api.example.com:${upstream.port}/${name}`;
    const signed = await viaProxy(proxy, `${base}/v1/orders?limit=5&side=buy`, post);
    expect(signed.status, signed.body).toBe(200);
    const get = await viaProxy(proxy, `${base}/v1/time`);
    expect(get.status, get.body).toBe(200);
    // The upstream accepts only what was signed: a tampered request (here: unsigned) is refused.
    const direct = await curl(['-w', '\n%{http_code}', `http://127.0.0.1:${upstream.port}/${name}/v1/time`]);
    expect(direct.stdout.endsWith('\n401')).toBe(true);
    const audit = await proxy.waitForAudit((a) => a.path === `/${name}/v1/orders`);
    const entry = (audit.request_transforms as { name: string; annotations?: Record<string, unknown> }[])[0];
    expect(entry?.name).toBe('hmac_sign');
    // Every configured header, as written, in order.
    expect(entry?.annotations?.injected).toEqual([...EXAMPLES[name].matchAll(/name: "([^"]+)"/g)].map((m) => `header:${m[1]}`));
  });

  it('falconx: the configuration-table example, over HTTPS through a CONNECT tunnel (MITM)', async () => {
    const r = await curl([
      '--cacert', join(dir, 'ca.crt'),
      '-x', `http://127.0.0.1:${proxies.falconx.port('tunnel')}`,
      '-w', '\n%{http_code}',
      ...post,
      `https://api.falconx.io:${tlsUpstream.port}/falconx/v1/quotes?venue=all`,
    ]);
    curlRuns.push(r);
    expect(r.stdout.endsWith('\n200'), r.stdout).toBe(true);
    const audit = await proxies.falconx.waitForAudit((a) => a.path === '/falconx/v1/quotes');
    expect(audit).toMatchObject({ mode: 'mitm', host: 'api.falconx.io', action: 'allow', status_code: 200 });
  });

  it('sends every header with the casing written in the config', async () => {
    const r = await viaProxy(proxies.intro, `http://api.partner.test:${upstream.port}/partner/v2/items?page=2`, post);
    expect(r.status, r.body).toBe(200);
    const names = ((JSON.parse(r.body) as UpstreamAnswer).rawHeaders ?? []).filter((_, i) => i % 2 === 0);
    expect(names).toEqual(expect.arrayContaining(['authorization', 'x-partner-date']));
    const ex1 = await viaProxy(proxies.ex1, `http://api.example.com:${upstream.port}/ex1/casing`, ['-H', 'x-access-sign: forged-by-client']);
    const ex1Names = ((JSON.parse(ex1.body) as UpstreamAnswer).rawHeaders ?? []).filter((_, i) => i % 2 === 0);
    expect(ex1Names).toEqual(expect.arrayContaining(['X-ACCESS-KEY', 'X-ACCESS-SIGN', 'X-ACCESS-TIMESTAMP', 'X-ACCESS-PASSPHRASE']));
    expect(ex1Names.filter((n) => n.toLowerCase() === 'x-access-sign')).toEqual(['X-ACCESS-SIGN']);
  });

  it('leaves requests outside its rules unsigned', async () => {
    const before = upstream.requests.length;
    const r = await viaProxy(proxies.ex1, `http://127.0.0.1:${upstream.port}/ex1/unscoped`);
    expect(r.status).toBe(401);
    expect(upstream.requests.slice(before).map((q) => q.header('X-ACCESS-SIGN'))).toEqual([undefined]);
  });
});

describe('body integrity', () => {
  it('refuses a body over max_request_body_bytes with 413 body_truncated; it never reaches the upstream', async () => {
    const before = upstream.requests.length;
    const r = await viaProxy(proxies.intro, `http://api.example.com:${upstream.port}/intro/big`, ['-X', 'POST', '--data-binary', 'z'.repeat(MAX_BODY + 1)]);
    expect(r).toEqual(refusal(413, 'body_truncated'));
    expect(upstream.requests.length).toBe(before);
    const audit = await proxies.intro.waitForAudit((a) => a.path === '/intro/big');
    expect(audit).toMatchObject({ action: 'reject', status_code: 413, rejected_by: 'hmac_sign', reason: 'body_truncated' });
    const entry = (audit.request_transforms as { annotations?: Record<string, unknown> }[])[0];
    expect(entry?.annotations).toMatchObject({ rejected: 'body_truncated', content_length: MAX_BODY + 1, max_request_body_bytes: MAX_BODY });
  });

  it('refuses a chunked body with 400 chunked_body_not_allowed; it never reaches the upstream', async () => {
    const before = upstream.requests.length;
    const r = await viaProxy(proxies.intro, `http://api.example.com:${upstream.port}/intro/chunked`, [...post, '-H', 'Transfer-Encoding: chunked']);
    expect(r).toEqual(refusal(400, 'chunked_body_not_allowed'));
    expect(upstream.requests.length).toBe(before);
  });

  it('with allow_chunked_body signs a chunked body and forwards it with a Content-Length', async () => {
    const r = await viaProxy(proxies.intro, `http://api.partner.test:${upstream.port}/partner/chunked`, [...post, '-H', 'Transfer-Encoding: chunked']);
    expect(r.status, r.body).toBe(200);
    expect((JSON.parse(r.body) as UpstreamAnswer).framing).toEqual({ 'content-length': String(BODY.length), 'transfer-encoding': null });
    await proxies.intro.waitForLine((l) => l.level === 'warn' && String(l.msg).includes('chunked'));
  });

  it('signs a binary body byte for byte', async () => {
    const file = join(dir, 'binary.bin');
    await writeFile(file, Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0a, 0x41, 0xc3]));
    const r = await viaProxy(proxies.ex2, `http://api.example.com:${upstream.port}/ex2/upload`, ['-X', 'PUT', '--data-binary', `@${file}`]);
    expect(r.status, r.body).toBe(200);
  });
});

describe('proxy validate', () => {
  /** A file holding just the proxy's listener and one example. */
  const exampleFile = async (name: keyof typeof EXAMPLES): Promise<string> => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `proxy:\n  http_listen: "127.0.0.1:0"\ntransforms:\n${EXAMPLES[name]}`);
    return file;
  };

  it('loads every example config of the reference', async () => {
    for (const name of Object.keys(EXAMPLES) as (keyof typeof EXAMPLES)[]) {
      const file = await exampleFile(name);
      const r = await runCli(['validate', '--config', file]);
      cliRuns.push(r);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('valid (1 transform');
    }
  });

  it('reports an unknown template variable and an unknown credential name with file, line and field', async () => {
    const file = join(dir, 'bad-hmac.yaml');
    await writeFile(
      file,
      `proxy:
  http_listen: "127.0.0.1:0"
transforms:
  - name: hmac_sign
    config:
      timestamp: { format: unix_seconds }
      signature:
        algorithm: sha256
        key_encoding: base64
        output_encoding: base64
        message: "{{.Timestamp}}{{.Method}}{{.URL}}{{.Body}}"
      credentials:
        secret: { type: env, var: API_SECRET }
        key: { type: env, var: API_KEY }
      headers:
        - { name: "X-Key", value: "{{ .Credentials.api_key }}" }
        - { name: "X-Sig", value: "{{ .Signature }}" }
      rules:
        - host: "api.example.com"
`,
    );
    const r = await runCli(['validate', '--config', file]);
    cliRuns.push(r);
    expect(r.code).toBe(1);
    const line = (n: number, path: string): string | undefined => r.stderr.split('\n').find((l) => l.includes(`bad-hmac.yaml:${n}:`) && l.includes(path));
    expect(line(11, 'transforms[0].config.signature.message'), r.stderr).toMatch(/unknown field \.URL/);
    expect(line(16, 'transforms[0].config.headers[0].value'), r.stderr).toMatch(/unknown field \.Credentials\.api_key .*\.Credentials\.secret, \.Credentials\.key/);
  });

  it('--check-secrets names each credential by label, never by value', async () => {
    const file = await exampleFile('ex1');
    const r = await runCli(['validate', '--config', file, '--check-secrets'], { PATH: process.env.PATH ?? '', ...ENV.ex1 });
    cliRuns.push(r);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of ['key', 'secret', 'passphrase']) expect(r.stdout).toMatch(new RegExp(`credentials\\.${name}: secret \\w+ \\(env\\): available`));
  });
});

describe('secrets and signatures in what the proxy wrote', () => {
  it('appear nowhere: not in any log line, audit record, error body or CLI output', () => {
    // What it greps was made by the curl requests above, skipped where curl is missing.
    requireCommand('curl');
    const written = [...Object.values(proxies).flatMap((p) => [p.stdout(), p.stderr()]), ...cliRuns.flatMap((r) => [r.stdout, r.stderr])].join('\n');
    // The proxy's error bodies reached curl; the upstream's 200 answers echo the signed headers, as they should.
    const bodies = curlRuns.map((r) => r.stdout).filter((out) => out.includes('"error":"hmac_sign"')).join('\n');
    expect(bodies).toContain('body_truncated');
    expect(written).toContain('"msg":"request"');
    const values = Object.values(ENV).flatMap((env) => Object.values(env));
    const keys = Object.values(KEY_TEXT).flatMap((text) => [text, b64(text), hex(text)]);
    for (const secret of [...values, ...keys]) {
      for (const spelling of [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]) {
        expect(written.includes(spelling), `secret ${secret} in the proxy's output`).toBe(false);
        expect(bodies.includes(spelling), `secret ${secret} in an error body`).toBe(false);
      }
    }
    const signatures = [...upstream.requests, ...tlsUpstream.requests]
      .flatMap((r) => ['X-Signature', 'X-ACCESS-SIGN', 'FX-ACCESS-SIGN', 'authorization'].map((h) => r.header(h)))
      .filter((s): s is string => s !== undefined && s.length > 20 && !s.includes('forged'));
    expect(signatures.length).toBeGreaterThan(5);
    for (const signature of signatures) expect(written.includes(signature.replace(/^.*Signature=/, '')), `signature ${signature} in the proxy's output`).toBe(false);
  });
});
