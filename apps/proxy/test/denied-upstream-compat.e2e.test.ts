import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

// A name resolving into the default upstream_deny_cidrs (127.0.0.0/8): we answer 403, a
// refusal by the upstream guard; `compat.denied_upstream: 502` answers as iron-proxy does, 502
// with audit action `error`. Neither connects to the address.
let echo: EchoServer;
let dns: DnsTestServer;

const config = (compat: string): string => `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["loopback.example.test"]
      default_ports: ["*"]
${compat}`;

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  dns = await startDnsServer({ records: { 'loopback.example.test': { A: ['127.0.0.1'] } } });
});

afterAll(async () => {
  await echo?.close();
  await dns?.close();
});

/** Sends GET `path` to the denied name through `proxy`; returns the status and the audit record. */
async function deniedRequest(proxy: ProxyProcess, path: string): Promise<{ status: string; body: string; audit: Record<string, unknown> }> {
  const before = proxy.audits().length;
  const r = await curl(['-s', '-x', `http://127.0.0.1:${proxy.port('http')}`, '-w', '\n%{http_code}', `http://loopback.example.test:${echo.port}${path}`]);
  const lines = r.stdout.split('\n');
  const audit = await proxy.waitForAudit((a) => a.path === path, before);
  return { status: lines.at(-1)!, body: lines.slice(0, -1).join('\n'), audit };
}

describe('a denied upstream address, by default', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    proxy = await startProxyProcess(config(''));
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('is refused with 403, audit action reject by upstream_guard', async () => {
    const { status, audit } = await deniedRequest(proxy, '/default');
    expect(status).toBe('403');
    expect(audit).toMatchObject({ action: 'reject', rejected_by: 'upstream_guard', reason: 'upstream_denied', status_code: 403 });
    expect(echo.connections).toBe(0);
  });
});

describe('a denied upstream address with compat.denied_upstream: 502', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    proxy = await startProxyProcess(config('compat:\n  denied_upstream: 502\n'));
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it("is answered as iron-proxy does: 502, audit action error, no rejected_by, and no connection", async () => {
    const { status, body, audit } = await deniedRequest(proxy, '/iron-proxy');
    expect(status).toBe('502');
    expect(body).toContain('upstream address denied');
    expect(audit).toMatchObject({ action: 'error', reason: 'upstream_denied', status_code: 502 });
    expect(audit.rejected_by).toBeUndefined();
    expect(echo.connections).toBe(0);
    expect(echo.requests.length).toBe(0);
  });

  it('answers a CONNECT to the denied address 502 as well, its audit record action error', async () => {
    const tunnel = await startProxyProcess(
      config('compat:\n  denied_upstream: 502\n').replace('http_listen: "127.0.0.1:0"', 'http_listen: "127.0.0.1:0"\n  tunnel_listen: "127.0.0.1:0"') + 'tls:\n  mode: sni-only\n',
    );
    try {
      const before = tunnel.audits().length;
      const target = `loopback.example.test:${echo.port}`;
      const r = await curl(['-s', '-p', '-x', `http://127.0.0.1:${tunnel.port('tunnel')}`, '-o', '/dev/null', '-w', '%{http_connect}', `http://${target}/in-tunnel`]);
      // The tunnel dials its target when it opens, so the CONNECT itself gets the answer.
      expect(r.stdout).toBe('502');
      const audit = await tunnel.waitForAudit((a) => a.mode === 'tunnel' && (a.tunnel as { target?: string } | undefined)?.target === target, before);
      expect(audit).toMatchObject({ action: 'error', reason: 'upstream_denied', status_code: 502 });
      expect(audit.rejected_by).toBeUndefined();
      expect(echo.connections).toBe(0);
    } finally {
      await tunnel.stop();
    }
  });

  it('still lets an allowed, reachable upstream through', async () => {
    // 127.0.0.1 is denied by default; the section changes only how a denial is answered.
    const open = await startProxyProcess(`${config('compat:\n  denied_upstream: 502\n')}
`.replace('http_listen: "127.0.0.1:0"', 'http_listen: "127.0.0.1:0"\n  upstream_deny_cidrs: []'));
    try {
      const r = await curl(['-s', '-x', `http://127.0.0.1:${open.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}', `http://loopback.example.test:${echo.port}/ok`]);
      expect(r.stdout).toBe('200');
    } finally {
      await open.stop();
    }
  });
});

describe('compat.denied_upstream in the config', () => {
  it('takes only 403 or 502, reported at its line', async () => {
    await expect(startProxyProcess(config('compat:\n  denied_upstream: 500\n'))).rejects.toThrow(/proxy\.yaml:\d+:\d+: compat\.denied_upstream: must be one of: 403, 502/);
  });
});
