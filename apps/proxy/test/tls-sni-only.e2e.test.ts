import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { requireCommand, startDnsServer, type DnsTestServer } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';
import { runWithInput, socks5Connect, startHttpsUpstream, type HttpsUpstream } from './support/tls-clients.js';

// tls.mode: sni-only: the proxy reads the SNI, runs the pipeline on a host-only request and
// splices the TCP stream to the upstream without terminating TLS. It has no CA: the client
// must see the upstream's own certificate.

const UPSTREAM_CA_NAME = 'upstream sni CA';

let upstream: HttpsUpstream;
let dns: DnsTestServer;
let dir: string;
let proxy: ProxyProcess;
/** A CA made by `proxy ca generate` that the proxy does not use: a client trusting only it must fail. */
let unusedProxyCa: string;
let tunnelPort: number;
let httpsPort: number;

beforeAll(async () => {
  upstream = await startHttpsUpstream(['api.example.test', 'other.example.test', 'paths.example.test'], UPSTREAM_CA_NAME);
  const a = { A: [upstream.address] };
  dns = await startDnsServer({ records: { 'api.example.test': a, 'other.example.test': a, 'paths.example.test': a } });
  dir = await mkdtemp(join(tmpdir(), 'proxy-sni-e2e-'));
  const generated = await runCli(['ca', 'generate', '--out', join(dir, 'unused-ca')]);
  if (generated.code !== 0) throw new Error(`proxy ca generate failed:\n${generated.stderr}`);
  unusedProxyCa = join(dir, 'unused-ca', 'ca.crt');
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
  mode: sni-only
transforms:
  - name: allowlist
    config:
      domains: ["api.example.test:${upstream.port}"]
      rules:
        - host: "paths.example.test"
          ports: [${upstream.port}]
          methods: ["GET"]
          paths: ["/*"]
`,
    { dir },
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

/** curl straight at https_listen, as a client whose DNS points `host` at the proxy. */
const viaHttpsListen = (host: string): string[] => ['--connect-to', `${host}:443:127.0.0.1:${httpsPort}`];

const hostRecord = (host: string, after: number): Promise<LogLine> => proxy.waitForAudit((l) => l.host === host, after);

function needPort443(ctx: TestContext): void {
  if (upstream.port443Unavailable !== undefined) ctx.skip(`https_listen dials port 443: ${upstream.port443Unavailable}`);
}

describe('sni-only on https_listen', () => {
  it('passes an allowed host through: the client verifies the upstream certificate, not one of ours', async (ctx) => {
    needPort443(ctx);
    const after = proxy.audits().length;
    const ok = await curl(['--cacert', upstream.pki.caFile, ...viaHttpsListen('api.example.test'), 'https://api.example.test/passthrough?q=1']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ path: '/passthrough', query: 'q=1' });
    expect(upstream.echo.requests.at(-1)?.path).toBe('/passthrough');

    const withProxyCa = await curl(['--cacert', unusedProxyCa, ...viaHttpsListen('api.example.test'), 'https://api.example.test/passthrough']);
    expect(withProxyCa.code).toBe(60); // CURLE_PEER_FAILED_VERIFICATION

    const record = await hostRecord('api.example.test', after);
    expect(record).toMatchObject({ mode: 'sni-only', sni: 'api.example.test', action: 'allow', method: '', path: '' });
  });

  it('shows openssl s_client the upstream certificate, issued by the upstream CA', async (ctx) => {
    needPort443(ctx);
    requireCommand('openssl');
    const r = await runWithInput(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', 'api.example.test', '-verify_hostname', 'api.example.test', '-CAfile', upstream.pki.caFile],
      '',
      { PATH: process.env.PATH ?? '' },
    );
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(r.stdout).toMatch(new RegExp(`i:\\s*CN\\s*=\\s*${UPSTREAM_CA_NAME}`));
    // Byte for byte the upstream's certificate.
    const served = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
    expect(served?.replace(/\s/g, '')).toBe(upstream.pki.cert.replace(/\s/g, ''));
  });

  it('closes the connection of a denied host without reaching the upstream, with an audit record', async () => {
    const connections = upstream.echo.connections;
    const after = proxy.audits().length;
    const r = await curl(['--cacert', upstream.pki.caFile, ...viaHttpsListen('other.example.test'), 'https://other.example.test/']);
    expect(r.code).toBe(35); // CURLE_SSL_CONNECT_ERROR: closed during the handshake
    expect(upstream.echo.connections).toBe(connections);
    expect(await hostRecord('other.example.test', after)).toMatchObject({
      mode: 'sni-only',
      sni: 'other.example.test',
      action: 'reject',
      rejected_by: 'allowlist',
      reason: 'not_allowlisted',
    });
  });

  it('does not match an allowlist rule with methods and paths (the request is host-only)', async () => {
    const connections = upstream.echo.connections;
    const after = proxy.audits().length;
    const r = await curl(['--cacert', upstream.pki.caFile, ...viaHttpsListen('paths.example.test'), 'https://paths.example.test/']);
    expect(r.code).toBe(35);
    expect(upstream.echo.connections).toBe(connections);
    expect(await hostRecord('paths.example.test', after)).toMatchObject({ mode: 'sni-only', action: 'reject', rejected_by: 'allowlist' });
  });

  it('closes a malformed ClientHello and keeps serving', async (ctx) => {
    needPort443(ctx);
    const after = proxy.audits().length;
    // A complete TLS handshake record whose ClientHello body is garbage: the proxy must close it.
    await new Promise<void>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port: httpsPort }, () => {
        socket.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20, 0x01, 0x00, 0x00, 0x1c]), Buffer.alloc(28, 0xff)]));
      });
      socket.on('data', () => undefined);
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
    });
    const ok = await curl(['--cacert', upstream.pki.caFile, ...viaHttpsListen('api.example.test'), 'https://api.example.test/after-garbage']);
    expect(ok.code).toBe(0);
    expect(proxy.child.exitCode).toBeNull();
    expect(await proxy.waitForAudit((l) => l.reason === 'bad_client_hello', after)).toMatchObject({ mode: 'sni-only', action: 'reject', rejected_by: 'engine' });
  });
});

describe('sni-only inside tunnels', () => {
  it('passes a CONNECT tunnel through to the CONNECT port with the upstream certificate', async () => {
    const after = proxy.audits().length;
    const url = `https://api.example.test:${upstream.port}/tunnel-passthrough`;
    const r = await curl(['--cacert', upstream.pki.caFile, '-x', `http://127.0.0.1:${tunnelPort}`, url]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ path: '/tunnel-passthrough' });
    const withProxyCa = await curl(['--cacert', unusedProxyCa, '-x', `http://127.0.0.1:${tunnelPort}`, url]);
    expect(withProxyCa.code).toBe(60);
    const record = await hostRecord('api.example.test', after);
    expect(record).toMatchObject({ mode: 'sni-only', sni: 'api.example.test', tunnel: { target: `api.example.test:${upstream.port}`, protocol: 'connect', decision: 'allow' } });
  });

  it('passes a SOCKS5 tunnel through', async () => {
    const r = await curl(['--cacert', upstream.pki.caFile, '--socks5-hostname', `127.0.0.1:${tunnelPort}`, `https://api.example.test:${upstream.port}/socks-passthrough`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ path: '/socks-passthrough' });
  });

  it('refuses a denied host when the tunnel opens', async () => {
    const connections = upstream.echo.connections;
    const r = await curl(['-o', '/dev/null', '-w', '%{http_connect}', '--cacert', upstream.pki.caFile, '-x', `http://127.0.0.1:${tunnelPort}`, `https://other.example.test:${upstream.port}/`]);
    expect(r.stdout).toBe('403');
    const { reply, socket } = await socks5Connect(tunnelPort, 'other.example.test', upstream.port);
    socket.destroy();
    expect(reply).toBe(0x02);
    expect(upstream.echo.connections).toBe(connections);
  });

  // The tunnel opens on the host (a rule naming it may limit only the requests inside), but
  // the TLS passed through is decided host-only, where a method/path rule cannot match.
  it('closes passed-through TLS to a host allowed only by a method/path rule', async () => {
    const requests = upstream.echo.requests.length;
    const after = proxy.audits().length;
    const r = await curl(['-w', '%{http_connect}', '--cacert', upstream.pki.caFile, '-x', `http://127.0.0.1:${tunnelPort}`, `https://paths.example.test:${upstream.port}/`]);
    expect(r.code).toBe(35); // CURLE_SSL_CONNECT_ERROR: closed during the handshake
    expect(upstream.echo.requests.length).toBe(requests);
    expect(await proxy.waitForAudit((l) => l.host === 'paths.example.test' && l.mode === 'sni-only', after)).toMatchObject({
      action: 'reject',
      rejected_by: 'allowlist',
      tunnel: { target: `paths.example.test:${upstream.port}`, protocol: 'connect' },
    });
  });
});
