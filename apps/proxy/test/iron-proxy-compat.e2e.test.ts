import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand, queryDns, startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

// iron-proxy's quickstart config (its docker-compose example), as an iron-proxy user has it.
// Only what a test on loopback needs is changed, each marked "test:": listen addresses, the CA
// location, an upstream resolver that points httpbin.org and example.com at the local echo
// upstream, a deny list that lets the proxy dial loopback, and the allowlist's iron-proxy port
// behaviour (any port) for the echo upstream's ephemeral port.
const quickstart = (resolver: string, certDir: string): string => `
# Built-in DNS server. Returns proxy_ip for all lookups.
dns:
  listen: "127.0.0.1:0"               # test: was ":53"
  proxy_ip: "172.20.0.2"
  upstream_resolver: "${resolver}"   # test: resolve upstream names locally

proxy:
  http_listen: "127.0.0.1:0"          # test: was ":80"
  https_listen: "127.0.0.1:0"         # test: was ":443"
  upstream_deny_cidrs: []             # test: the echo upstream is on loopback

tls:
  ca_cert: "${certDir}/ca.crt"        # test: was /certs, where the compose file's entrypoint writes a CA
  ca_key: "${certDir}/ca.key"

transforms:
  - name: allowlist
    config:
      domains:
        - "httpbin.org"
      default_ports: ["*"]            # test: the echo upstream is on an ephemeral port, not 80/443

  - name: secrets
    config:
      secrets:
        - source:
            type: env
            var: OPENAI_API_KEY
          replace:
            proxy_value: "proxy-openai-abc123"
            match_headers: ["Authorization"]
            match_body: false
          rules:
            - host: "httpbin.org"
        - source:
            type: env
            var: INTERNAL_TOKEN
          replace:
            proxy_value: "proxy-internal-tok"
            match_headers: []
            match_body: false
          rules:
            - host: "httpbin.org"

log:
  level: "info"
`;

const env = { OPENAI_API_KEY: 'sk-real-openai-key-test', INTERNAL_TOKEN: 'real-internal-secret-test' };

let echo: EchoServer;
let dns: DnsTestServer;
let proxy: ProxyProcess;
let via: string[];
let certDir: string;

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  dns = await startDnsServer({ records: { 'httpbin.org': { A: ['127.0.0.1'] }, 'example.com': { A: ['127.0.0.1'] } } });
  certDir = await mkdtemp(join(tmpdir(), 'proxy-compat-ca-'));
  const generated = await runCli(['ca', 'generate', '--out', certDir]);
  expect(generated.code).toBe(0);
  proxy = await startProxyProcess(quickstart(dns.resolver, certDir), { env });
  via = ['-x', `http://127.0.0.1:${proxy.port('http')}`];
});

afterAll(async () => {
  await proxy?.stop();
  await echo?.close();
  await dns?.close();
  await rm(certDir, { recursive: true, force: true });
});

const headersOf = (body: string): Record<string, string> => (JSON.parse(body) as { headers: Record<string, string> }).headers;

describe("iron-proxy's quickstart config", () => {
  it('loads and runs every listener it configures: HTTP, HTTPS and DNS', () => {
    const notActive = proxy.lines().filter((l) => l.level === 'warn' && typeof l.section === 'string');
    expect(notActive).toEqual([]);
    expect(proxy.lines().filter((l) => l.msg === 'listening').map((l) => l.listener)).toEqual(expect.arrayContaining(['http', 'https', 'dns']));
  });

  it('answers DNS with proxy_ip for every name', async () => {
    const r = await queryDns({ port: proxy.port('dns'), name: 'httpbin.org', type: 'A' });
    expect(r.answers.map((record) => record.data)).toEqual(['172.20.0.2']);
    await proxy.waitForLine((l) => l.msg === 'dns_intercept' && l.name === 'httpbin.org');
  });

  it('1. allows httpbin.org', async () => {
    const r = await curl([...via, '-w', '\n%{http_code}', `http://httpbin.org:${echo.port}/get`]);
    expect(r.stdout.split('\n').pop()).toBe('200');
  });

  it('2. blocks example.com with 403', async () => {
    const r = await curl([...via, '-o', '/dev/null', '-w', '%{http_code}', `http://example.com:${echo.port}/`]);
    expect(r.stdout).toBe('403');
  });

  it('3. swaps the token in the Authorization header, with the audit shape of the reference', async () => {
    const r = await curl([...via, '-H', 'Authorization: Bearer proxy-openai-abc123', `http://httpbin.org:${echo.port}/headers`]);
    expect(headersOf(r.stdout).authorization).toBe(`Bearer ${env.OPENAI_API_KEY}`);
    const audit = await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/headers');
    expect(audit).toMatchObject({ host: 'httpbin.org', method: 'GET', action: 'allow', status_code: 200 });
    const secrets = (audit.request_transforms as { name: string; annotations?: Record<string, unknown> }[]).find((t) => t.name === 'secrets');
    expect(secrets?.annotations?.swapped).toEqual([{ secret: 'OPENAI_API_KEY', locations: ['header:Authorization'] }]);
  });

  it('4. swaps the token in a custom header (match_headers: [] scans all)', async () => {
    const r = await curl([...via, '-H', 'X-Internal: proxy-internal-tok', `http://httpbin.org:${echo.port}/headers`]);
    expect(headersOf(r.stdout)['x-internal']).toBe(env.INTERNAL_TOKEN);
  });

  it('5. leaves the query alone: match_query defaults to false in the canonical schema', async () => {
    const r = await curl([...via, `http://httpbin.org:${echo.port}/get?token=proxy-openai-abc123&q=hello`]);
    expect((JSON.parse(r.stdout) as { query: string }).query).toBe('token=proxy-openai-abc123&q=hello');
  });
});

// Its traffic is sent with curl in the hook: skipped where curl is missing.
describe.skipIf(!hasCommand('curl'))('the quickstart config with log.audit_format: iron-proxy', () => {
  let ironLog: ProxyProcess;
  beforeAll(async () => {
    const config = quickstart(dns.resolver, certDir).replace('  level: "info"', '  level: "info"\n  audit_format: "iron-proxy"');
    ironLog = await startProxyProcess(config, { env });
    const via = ['-x', `http://127.0.0.1:${ironLog.port('http')}`];
    await curl([...via, '-H', 'Authorization: Bearer proxy-openai-abc123', `http://httpbin.org:${echo.port}/headers`]);
    await curl([...via, `http://example.com:${echo.port}/blocked`]);
    await ironLog.waitForAudit((a) => (a.audit as { path?: string } | undefined)?.path === '/blocked');
  });
  afterAll(async () => {
    await ironLog?.stop();
  });

  it('writes every line on stderr with upper-case levels, nothing on stdout', () => {
    expect(ironLog.stdout()).toBe('');
    const lines = ironLog.lines();
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(['DEBUG', 'INFO', 'WARN', 'ERROR']).toContain(line.level);
  });

  it("writes each record as iron-proxy does: an audit group, the host with its port, traces with action allow", () => {
    const [allowed, refused] = ['/headers', '/blocked'].map((path) => ironLog.audits().find((a) => (a.audit as { path: string }).path === path));
    expect(allowed).toMatchObject({
      level: 'INFO',
      msg: 'request',
      audit: { host: `httpbin.org:${echo.port}`, method: 'GET', path: '/headers', mode: 'mitm', action: 'allow', status_code: 200 },
      request_transforms: [{ name: 'allowlist', action: 'allow' }, { name: 'secrets', action: 'allow' }],
    });
    expect(allowed).not.toHaveProperty('host');
    expect(refused).toMatchObject({ level: 'WARN', audit: { host: `example.com:${echo.port}`, action: 'reject', status_code: 403 }, rejected_by: 'allowlist' });
  });

  it('writes no secret value', () => {
    expect(ironLog.stderr()).not.toContain(env.OPENAI_API_KEY);
    expect(ironLog.stderr()).not.toContain(env.INTERNAL_TOKEN);
  });
});
