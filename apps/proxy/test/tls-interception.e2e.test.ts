import { createRequire } from 'node:module';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { requireCommand, startDnsServer, type DnsTestServer } from '@proxy/test-kit';
import { curl, runCli, runCommand, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';
import { httpConnect, runWithInput, socks5Connect, startHttpsUpstream, tlsHandshake, type HttpsUpstream } from './support/tls-clients.js';

// TLS interception end to end (issue 3): one proxy in mitm mode with https_listen and
// tunnel_listen, its CA made by `proxy ca generate`, in front of an HTTPS echo upstream that
// has its own test CA (trusted by the proxy through tls.upstream_ca_bundle, by no client).
// Every client trusts only the proxy's CA, so a 200 proves the proxy terminated TLS.

/** The real values only the proxy knows; clients send placeholders. */
const REAL = {
  REAL_TOKEN: 'real-token-4f2a91',
  REQUIRED_TOKEN: 'required-real-0d7c3e',
  STRICT_TOKEN: 'strict-real-b85e11',
};
const PROXY_CA_NAME = 'proxy e2e CA';
const UPSTREAM_CA_NAME = 'upstream e2e CA';

let upstream: HttpsUpstream;
let dns: DnsTestServer;
let dir: string;
let proxy: ProxyProcess;
let proxyCa: string;
let proxyCaPem: string;
let tunnelPort: number;
let httpsPort: number;

beforeAll(async () => {
  upstream = await startHttpsUpstream(['api.example.test', 'other.example.test', 'strict.example.test'], UPSTREAM_CA_NAME);
  const a = { A: [upstream.address] };
  dns = await startDnsServer({ records: { 'api.example.test': a, 'other.example.test': a, 'strict.example.test': a } });
  dir = await mkdtemp(join(tmpdir(), 'proxy-tls-e2e-'));
  const generated = await runCli(['ca', 'generate', '--out', dir, '--name', PROXY_CA_NAME]);
  if (generated.code !== 0) throw new Error(`proxy ca generate failed:\n${generated.stderr}`);
  proxyCa = join(dir, 'ca.crt');
  proxyCaPem = await readFile(proxyCa, 'utf8');
  proxy = await startProxyProcess(
    `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
tls:
  mode: mitm
  ca_cert: "ca.crt"
  ca_key: "ca.key"
  upstream_ca_bundle: "${upstream.pki.caFile}"
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test:${upstream.port}", "strict.example.test:${upstream.port}"]
      rules:
        - { cidr: "${upstream.address}/32", ports: [${upstream.port}] }
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: REAL_TOKEN }
          replace:
            proxy_value: "proxy-tok-123"
            match_headers: []
          rules:
            - host: "api.example.test"
        - source: { type: env, var: REQUIRED_TOKEN }
          replace:
            proxy_value: "proxy-required"
            match_headers: ["X-Required"]
            require: true
          rules:
            - host: "api.example.test"
              paths: ["/strict/*"]
        # Host-wide: every request to strict.example.test must carry the placeholder, and a
        # CONNECT (which has no headers to scan) must still open.
        - source: { type: env, var: STRICT_TOKEN }
          replace:
            proxy_value: "proxy-strict"
            match_headers: ["X-Strict"]
            require: true
          rules:
            - host: "strict.example.test"
`,
    { dir, env: REAL },
  );
  tunnelPort = proxy.port('tunnel');
  httpsPort = proxy.port('https');
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
  await dns?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** The echo upstream's view of the request the proxy sent. */
interface Echoed {
  path: string;
  headers: Record<string, string>;
}

/** A curl run that reports the status, the CONNECT status and the body separately. */
async function curlStatus(args: readonly string[]): Promise<{ exit: number; status: string; connect: string; body: string }> {
  const r = await curl(['-w', '\n%{http_code} %{http_connect}', ...args]);
  const cut = r.stdout.lastIndexOf('\n');
  const [status = '', connect = ''] = r.stdout.slice(cut + 1).split(' ');
  return { exit: r.code, status, connect, body: r.stdout.slice(0, Math.max(cut, 0)) };
}

/** The URL of the upstream through a tunnel (CONNECT/SOCKS5 name the upstream's real port). */
const api = (host: string, path: string): string => `https://${host}:${upstream.port}${path}`;

/** curl straight at https_listen, as a client whose DNS points `host` at the proxy. */
const viaHttpsListen = (host: string): string[] => ['--connect-to', `${host}:443:127.0.0.1:${httpsPort}`];

const audit = (path: string): Promise<LogLine> => proxy.waitForLine((l) => l.msg === 'request' && l.path === path);

/** Skips a case that needs the upstream on port 443 when it could not be bound. */
function needPort443(ctx: TestContext): void {
  if (upstream.port443Unavailable !== undefined) ctx.skip(`https_listen dials port 443: ${upstream.port443Unavailable}`);
}

describe('HTTP CONNECT (curl -x)', () => {
  it('reaches an allowlisted host through the proxy CA and swaps the secret upstream', async () => {
    const r = await curlStatus(['--cacert', proxyCa, '-x', `http://127.0.0.1:${tunnelPort}`, '-H', 'Authorization: Bearer proxy-tok-123', api('api.example.test', '/connect/swap')]);
    expect(r).toMatchObject({ exit: 0, status: '200', connect: '200' });
    const seen = JSON.parse(r.body) as Echoed;
    expect(seen.path).toBe('/connect/swap');
    expect(seen.headers.authorization).toBe(`Bearer ${REAL.REAL_TOKEN}`);
    expect(await audit('/connect/swap')).toMatchObject({
      host: 'api.example.test',
      mode: 'mitm',
      action: 'allow',
      status_code: 200,
      sni: 'api.example.test',
      tunnel: { target: `api.example.test:${upstream.port}`, protocol: 'connect', decision: 'allow' },
    });
  });

  it('refuses a host that is not allowlisted with CONNECT 403, before any upstream connection', async () => {
    const connections = upstream.echo.connections;
    const after = proxy.audits().length;
    const r = await curlStatus(['--cacert', proxyCa, '-x', `http://127.0.0.1:${tunnelPort}`, api('other.example.test', '/connect/denied')]);
    expect(r.connect).toBe('403');
    expect(r.exit).toBe(56); // CURLE_RECV_ERROR: "Received HTTP code 403 from proxy after CONNECT"
    expect(upstream.echo.connections).toBe(connections);
    // The record of the tunnel's host-only decision.
    expect(await proxy.waitForAudit((l) => l.host === 'other.example.test', after)).toMatchObject({
      mode: 'tunnel',
      method: '',
      path: '',
      action: 'reject',
      status_code: 403,
      rejected_by: 'allowlist',
      tunnel: { target: `other.example.test:${upstream.port}`, protocol: 'connect' },
    });
  });

  it('mints a leaf with an IP SAN for an IP-literal target (no SNI sent)', async () => {
    const r = await curlStatus(['--cacert', proxyCa, '-x', `http://127.0.0.1:${tunnelPort}`, api(upstream.address, '/connect/ip')]);
    expect(r).toMatchObject({ exit: 0, status: '200', connect: '200' });
    expect((JSON.parse(r.body) as Echoed).path).toBe('/connect/ip');
    expect(await audit('/connect/ip')).toMatchObject({ host: upstream.address, mode: 'mitm', tunnel: { target: `${upstream.address}:${upstream.port}` } });

    const { status, socket } = await httpConnect(tunnelPort, `${upstream.address}:${upstream.port}`);
    expect(status).toBe(200);
    const handshake = await tlsHandshake(socket, { ca: proxyCaPem, identity: upstream.address });
    // The TLS socket goes first: destroying the socket under a live TLS socket can crash Node.
    if (handshake.ok) handshake.socket.destroy();
    socket.destroy();
    expect(handshake.ok && handshake.peer.subjectAltName).toBe(`IP Address:${upstream.address}`);
  });
});

describe('SOCKS5 (curl --socks5-hostname)', () => {
  const socks = (): string[] => ['--cacert', proxyCa, '--socks5-hostname', `127.0.0.1:${tunnelPort}`];

  it('reaches an allowlisted host and swaps the secret upstream', async () => {
    const r = await curlStatus([...socks(), '-H', 'Authorization: Bearer proxy-tok-123', api('api.example.test', '/socks/swap')]);
    expect(r).toMatchObject({ exit: 0, status: '200' });
    expect((JSON.parse(r.body) as Echoed).headers.authorization).toBe(`Bearer ${REAL.REAL_TOKEN}`);
    expect(await audit('/socks/swap')).toMatchObject({
      host: 'api.example.test',
      mode: 'mitm',
      status_code: 200,
      tunnel: { target: `api.example.test:${upstream.port}`, protocol: 'socks5', decision: 'allow' },
    });
  });

  it('refuses a host that is not allowlisted with reply 0x02, before any upstream connection', async () => {
    const connections = upstream.echo.connections;
    const after = proxy.audits().length;
    const r = await curlStatus([...socks(), api('other.example.test', '/socks/denied')]);
    expect(r.exit).toBe(97); // CURLE_PROXY: the SOCKS5 server refused the connection
    expect(r.status).toBe('000');
    const { reply, socket } = await socks5Connect(tunnelPort, 'other.example.test', upstream.port);
    socket.destroy();
    expect(reply).toBe(0x02); // connection not allowed by ruleset
    expect(upstream.echo.connections).toBe(connections);
    expect(await proxy.waitForAudit((l) => l.host === 'other.example.test', after)).toMatchObject({
      mode: 'tunnel',
      action: 'reject',
      rejected_by: 'allowlist',
      tunnel: { target: `other.example.test:${upstream.port}`, protocol: 'socks5' },
    });
  });
});

describe('https_listen (clients sent to the proxy by DNS)', () => {
  it('terminates TLS for the SNI, forwards to port 443 and swaps the secret', async (ctx) => {
    needPort443(ctx);
    const r = await curlStatus(['--cacert', proxyCa, ...viaHttpsListen('api.example.test'), '-H', 'Authorization: Bearer proxy-tok-123', 'https://api.example.test/listen/swap']);
    expect(r).toMatchObject({ exit: 0, status: '200' });
    expect((JSON.parse(r.body) as Echoed).headers.authorization).toBe(`Bearer ${REAL.REAL_TOKEN}`);
    const record = await audit('/listen/swap');
    expect(record).toMatchObject({ host: 'api.example.test', mode: 'mitm', sni: 'api.example.test', status_code: 200 });
    expect(record.tunnel).toBeUndefined();
  });

  it('answers 403 for a host that is not allowlisted', async () => {
    const before = upstream.echo.requests.length;
    const r = await curlStatus(['--cacert', proxyCa, ...viaHttpsListen('other.example.test'), 'https://other.example.test/listen/denied']);
    expect(r).toMatchObject({ exit: 0, status: '403' });
    expect(upstream.echo.requests.length).toBe(before);
    expect(await audit('/listen/denied')).toMatchObject({ host: 'other.example.test', rejected_by: 'allowlist', status_code: 403 });
  });

  it('serves openssl s_client a chain that verifies against the proxy CA, and answers a typed request', async (ctx) => {
    needPort443(ctx);
    requireCommand('openssl');
    const request = 'GET /sclient HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer proxy-tok-123\r\nConnection: close\r\n\r\n';
    const r = await runWithInput(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'api.example.test', '-verify_hostname', 'api.example.test', '-CAfile', proxyCa, '-alpn', 'http/1.1', '-ign_eof'],
      request,
      { PATH: process.env.PATH ?? '' },
    );
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(r.stdout).toMatch(/0 s:\s*CN\s*=\s*api\.example\.test/);
    expect(r.stdout).toMatch(new RegExp(`i:\\s*CN\\s*=\\s*${PROXY_CA_NAME}`));
    expect(r.stdout).toContain('ALPN protocol: http/1.1');
    expect(r.stdout).toMatch(/HTTP\/1\.1 200 OK/);
    expect(r.stdout).toContain(`"authorization":"Bearer ${REAL.REAL_TOKEN}"`);
  });

  it('fails the handshake of a client that sends no SNI', async () => {
    const r = await tlsHandshake(httpsPort, {});
    if (r.ok) r.socket.destroy();
    expect(r.ok).toBe(false);
    const control = await tlsHandshake(httpsPort, { servername: 'api.example.test' });
    expect(control.ok).toBe(true);
    if (control.ok) control.socket.destroy();
  });
});

describe('real clients through the tunnel listener', () => {
  it('Node fetch with undici ProxyAgent and NODE_EXTRA_CA_CERTS', async () => {
    const script = `
const { ProxyAgent, fetch } = require(process.env.UNDICI_PATH);
(async () => {
  const dispatcher = new ProxyAgent(process.env.PROXY_URL);
  const out = {};
  const ok = await fetch(process.env.ALLOWED_URL, { dispatcher, headers: { authorization: 'Bearer proxy-tok-123' } });
  out.allowed = { status: ok.status, body: await ok.text() };
  try {
    const denied = await fetch(process.env.DENIED_URL, { dispatcher });
    out.denied = { status: denied.status };
  } catch (error) {
    const messages = [];
    for (let e = error; e; e = e.cause) messages.push(e.message);
    out.denied = { error: messages.join(' <- ') };
  }
  await dispatcher.close();
  process.stdout.write(JSON.stringify(out));
})().catch((error) => { console.error(error); process.exit(1); });
`;
    const r = await runCommand(process.execPath, ['-e', script], {
      PATH: process.env.PATH ?? '',
      NODE_EXTRA_CA_CERTS: proxyCa,
      UNDICI_PATH: createRequire(import.meta.url).resolve('undici'),
      PROXY_URL: `http://127.0.0.1:${tunnelPort}`,
      ALLOWED_URL: api('api.example.test', '/undici/swap'),
      DENIED_URL: api('other.example.test', '/undici/denied'),
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { allowed: { status: number; body: string }; denied: { error?: string } };
    expect(out.allowed.status).toBe(200);
    expect((JSON.parse(out.allowed.body) as Echoed).headers.authorization).toBe(`Bearer ${REAL.REAL_TOKEN}`);
    expect(out.denied.error).toMatch(/403/);
  });

  it('python3 urllib with HTTPS_PROXY and SSL_CERT_FILE', async (ctx) => {
    if ((await runCommand('python3', ['--version'])).code !== 0) {
      return ctx.skip('python3 is not installed (curl, Node undici and openssl above drive the same tunnel)');
    }
    const script = `
import json, os, urllib.request
out = {}
req = urllib.request.Request(os.environ["ALLOWED_URL"], headers={"Authorization": "Bearer proxy-tok-123"})
with urllib.request.urlopen(req, timeout=10) as r:
    out["allowed"] = {"status": r.status, "body": r.read().decode()}
try:
    urllib.request.urlopen(os.environ["DENIED_URL"], timeout=10)
    out["denied"] = {"error": None}
except Exception as error:
    out["denied"] = {"error": str(error)}
print(json.dumps(out))
`;
    const r = await runCommand('python3', ['-c', script], {
      PATH: process.env.PATH ?? '',
      HTTPS_PROXY: `http://127.0.0.1:${tunnelPort}`,
      SSL_CERT_FILE: proxyCa,
      ALLOWED_URL: api('api.example.test', '/python/swap'),
      DENIED_URL: api('other.example.test', '/python/denied'),
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { allowed: { status: number; body: string }; denied: { error: string | null } };
    expect(out.allowed.status).toBe(200);
    expect((JSON.parse(out.allowed.body) as Echoed).headers.authorization).toBe(`Bearer ${REAL.REAL_TOKEN}`);
    expect(out.denied.error).toMatch(/403/);
  });
});

describe('secrets with require: true inside tunnels', () => {
  const tunnel = (): string[] => ['--cacert', proxyCa, '-x', `http://127.0.0.1:${tunnelPort}`];

  it('opens a tunnel to a host whose every request needs a placeholder, then enforces it per request', async () => {
    const withToken = await curlStatus([...tunnel(), '-H', 'X-Strict: proxy-strict', api('strict.example.test', '/with')]);
    expect(withToken).toMatchObject({ exit: 0, status: '200', connect: '200' });
    expect((JSON.parse(withToken.body) as Echoed).headers['x-strict']).toBe(REAL.STRICT_TOKEN);

    const without = await curlStatus([...tunnel(), api('strict.example.test', '/without')]);
    expect(without).toMatchObject({ exit: 0, status: '403', connect: '200' });
    expect(await audit('/without')).toMatchObject({
      host: 'strict.example.test',
      mode: 'mitm',
      rejected_by: 'secrets',
      reason: 'proxy_token_missing',
      status_code: 403,
      tunnel: { target: `strict.example.test:${upstream.port}`, decision: 'allow' },
    });
  });

  it('swaps a path-scoped required placeholder and refuses the request without it', async () => {
    const withToken = await curlStatus([...tunnel(), '-H', 'X-Required: proxy-required', api('api.example.test', '/strict/x')]);
    expect(withToken).toMatchObject({ exit: 0, status: '200', connect: '200' });
    expect((JSON.parse(withToken.body) as Echoed).headers['x-required']).toBe(REAL.REQUIRED_TOKEN);

    const before = upstream.echo.requests.length;
    const without = await curlStatus([...tunnel(), api('api.example.test', '/strict/y')]);
    expect(without).toMatchObject({ exit: 0, status: '403', connect: '200' });
    expect(upstream.echo.requests.length).toBe(before);
    expect(await audit('/strict/y')).toMatchObject({ rejected_by: 'secrets', reason: 'proxy_token_missing' });
  });
});

describe('destination mismatches', () => {
  it('answers 421 when the Host differs from the SNI on https_listen', async () => {
    const before = upstream.echo.requests.length;
    const r = await curlStatus(['--cacert', proxyCa, ...viaHttpsListen('api.example.test'), '-H', 'Host: strict.example.test', 'https://api.example.test/mismatch/sni-host']);
    expect(r).toMatchObject({ exit: 0, status: '421' });
    expect(upstream.echo.requests.length).toBe(before);
    expect(await audit('/mismatch/sni-host')).toMatchObject({
      sni: 'api.example.test',
      action: 'reject',
      status_code: 421,
      rejected_by: 'engine',
      reason: 'host_mismatch',
    });
  });

  it('accepts a Host that differs from the SNI only in case and port', async (ctx) => {
    needPort443(ctx);
    const r = await curlStatus(['--cacert', proxyCa, ...viaHttpsListen('api.example.test'), '-H', 'Host: API.Example.Test:443', 'https://api.example.test/mismatch/case']);
    expect(r).toMatchObject({ exit: 0, status: '200' });
  });

  it('answers 421 when an inner Host differs from the CONNECT target', async () => {
    const before = upstream.echo.requests.length;
    const r = await curlStatus(['--cacert', proxyCa, '-x', `http://127.0.0.1:${tunnelPort}`, '-H', 'Host: strict.example.test', api('api.example.test', '/mismatch/connect-host')]);
    expect(r).toMatchObject({ exit: 0, status: '421', connect: '200' });
    expect(upstream.echo.requests.length).toBe(before);
    expect(await audit('/mismatch/connect-host')).toMatchObject({
      action: 'reject',
      status_code: 421,
      reason: 'host_mismatch',
      tunnel: { target: `api.example.test:${upstream.port}`, protocol: 'connect' },
    });
  });

  // The SNI names an allowlisted host, so only the mismatch can be the reason for the refusal.
  // The tunnel dials its target when it opens; nothing may reach the upstream through it.
  it.each([
    ['SOCKS5', 'socks5'],
    ['CONNECT', 'connect'],
  ] as const)('refuses a TLS handshake whose SNI differs from the %s target, with an audit record', async (_label, protocol) => {
    const requests = upstream.echo.requests.length;
    const after = proxy.audits().length;
    const target = `api.example.test:${upstream.port}`;
    let socket: Socket;
    if (protocol === 'socks5') {
      const opened = await socks5Connect(tunnelPort, 'api.example.test', upstream.port);
      expect(opened.reply).toBe(0x00);
      socket = opened.socket;
    } else {
      const opened = await httpConnect(tunnelPort, target);
      expect(opened.status).toBe(200);
      socket = opened.socket;
    }
    // Not verifying: the proxy must refuse the handshake itself, whatever certificate it has.
    const handshake = await tlsHandshake(socket, { servername: 'strict.example.test' });
    if (handshake.ok) handshake.socket.destroy();
    socket.destroy();
    expect(handshake.ok).toBe(false);
    expect(upstream.echo.requests.length).toBe(requests);
    expect(await proxy.waitForAudit((l) => l.sni === 'strict.example.test', after)).toMatchObject({
      host: 'api.example.test',
      action: 'reject',
      status_code: 421,
      reason: 'sni_mismatch',
      tunnel: { target, protocol },
    });
  });

  it('serves the tunnel when the SNI matches the target (the control for the two cases above)', async () => {
    const { reply, socket } = await socks5Connect(tunnelPort, 'api.example.test', upstream.port);
    expect(reply).toBe(0x00);
    const handshake = await tlsHandshake(socket, { servername: 'api.example.test', ca: proxyCaPem });
    if (handshake.ok) handshake.socket.destroy();
    socket.destroy();
    expect(handshake.ok && handshake.peer.subjectAltName).toBe('DNS:api.example.test');
    expect(handshake.ok && handshake.peer.issuer).toBe(`CN=${PROXY_CA_NAME}`);
  });
});

describe('secret hygiene', () => {
  it('never writes a real secret value to stdout or stderr', () => {
    // What it greps was made by the curl requests above, skipped where curl is missing.
    requireCommand('curl');
    // The swaps above put every value on the wire to the upstream; none may reach the logs.
    expect(upstream.echo.requests.some((r) => JSON.stringify(r.headers).includes(REAL.REAL_TOKEN))).toBe(true);
    const output = proxy.stdout() + proxy.stderr();
    expect(proxy.audits().length).toBeGreaterThan(10);
    for (const value of Object.values(REAL)) expect(output).not.toContain(value);
  });
});
