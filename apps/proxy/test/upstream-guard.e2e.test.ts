import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type ListenerKind, type ProxyProcess } from './support/proxy-process.js';

// The default upstream_deny_cidrs refuse loopback: an allowlisted name that resolves there (or
// an IPv4-mapped IPv6 spelling of it) must be refused before any connection is made.
let echo: EchoServer;
let dns: DnsTestServer;
let proxy: ProxyProcess;

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  dns = await startDnsServer({
    records: {
      'loopback.example.test': { A: ['127.0.0.1'] },
      'mapped.example.test': { AAAA: ['::ffff:127.0.0.1'] },
    },
  });
  proxy = await startProxyProcess(`
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["*"]
      cidrs: ["0.0.0.0/0", "::/0"]
      default_ports: ["*"]
`);
});

afterAll(async () => {
  await proxy?.stop();
  await echo?.close();
  await dns?.close();
});

describe('upstream guard with the default deny list', () => {
  const targets = () => [
    ['a name resolving to 127.0.0.1', `http://loopback.example.test:${echo.port}/a`],
    ['a name resolving to ::ffff:127.0.0.1', `http://mapped.example.test:${echo.port}/b`],
    ['the IP literal [::ffff:127.0.0.1]', `http://[::ffff:127.0.0.1]:${echo.port}/c`],
    ['the IP literal 127.0.0.1', `http://127.0.0.1:${echo.port}/d`],
  ];

  it('refuses every loopback spelling with 403 and never connects', async () => {
    for (const [label, url] of targets()) {
      const r = await curl(['-g', '-x', `http://127.0.0.1:${proxy.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}', url!]);
      expect(r.stdout, label).toBe('403');
    }
    expect(echo.connections).toBe(0);
    expect(echo.requests.length).toBe(0);
    // The audit line of the last request may land just after curl has its answer.
    await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/d');
    const audits = proxy.audits().filter((a) => a.rejected_by === 'upstream_guard');
    expect(audits.length).toBe(4);
    expect(audits.every((a) => a.action === 'reject' && a.status_code === 403)).toBe(true);
  });
});

describe('upstream guard with the default deny list: IPv6 spellings of denied IPv4 addresses', () => {
  it.each([
    ['NAT64', '[64:ff9b::a9fe:a9fe]'],
    ['6to4', '[2002:a9fe:a9fe::1]'],
    ['IPv4-compatible', '[::169.254.169.254]'],
    ['IPv4-compatible loopback', '[::7f00:1]'],
    ['Teredo', '[2001:0:4136:e378:8000:63bf:5601:5601]'],
  ])('refuses %s (%s) with 403, answered by the guard', async (label, host) => {
    const path = `/embedded-${label.replace(/\W/g, '-')}`;
    const before = proxy.audits().length;
    const r = await curl(['-g', '-x', `http://127.0.0.1:${proxy.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}', `http://${host}${path}`]);
    expect(r.stdout).toBe('403');
    const audit = await proxy.waitForAudit((a) => a.path === path, before);
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'upstream_denied', status_code: 403 });
  });
});

describe("the proxy's metrics and DNS listeners are no upstream", () => {
  let own: ProxyProcess;
  beforeAll(async () => {
    // No deny list: the loop guard, not 127.0.0.0/8, must answer.
    own = await startProxyProcess(`
dns:
  listen: "127.0.0.1:0"
  proxy_ip: "127.0.0.1"
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      cidrs: ["127.0.0.0/8"]
      default_ports: ["*"]
metrics:
  listen: "127.0.0.1:0"
`);
  });
  afterAll(async () => {
    await own?.stop();
  });

  it.each<[ListenerKind, string]>([
    ['metrics', '/metrics'],
    ['dns', '/dns-over-tcp'],
  ])('a request through the forward proxy to the %s listener gets 508 forwarding_loop', async (kind, path) => {
    const before = own.audits().length;
    const target = `http://127.0.0.1:${own.port(kind)}${path}`;
    const r = await curl(['-x', `http://127.0.0.1:${own.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}', target]);
    expect(r.stdout).toBe('508');
    const audit = await own.waitForAudit((a) => a.path === path, before);
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'forwarding_loop', status_code: 508 });
  });

  it('still serves the metrics endpoint directly', async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${own.port('metrics')}/healthz`]);
    expect(r.stdout).toBe('200');
  });
});
