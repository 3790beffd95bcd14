import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

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
