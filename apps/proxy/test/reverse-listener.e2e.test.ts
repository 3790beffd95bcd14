import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

let echo: EchoServer;
let proxy: ProxyProcess;

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  proxy = await startProxyProcess(`
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
  reverse:
    - listen: "127.0.0.1:0"
      upstream_host: "127.0.0.1:${echo.port}"
      upstream_scheme: http
    - listen: "127.0.0.1:0"
      upstream_scheme: http
    - listen: "127.0.0.1:0"
      upstream_scheme: http
      host_header: Host
transforms:
  - name: allowlist
    config:
      rules:
        - { cidr: "127.0.0.0/8", ports: [${echo.port}] }
`);
});

afterAll(async () => {
  await proxy?.stop();
  await echo?.close();
});

const seen = (body: string): { path: string; headers: Record<string, string> } =>
  JSON.parse(body) as { path: string; headers: Record<string, string> };

describe('reverse listener', () => {
  it('forwards every request to the pinned upstream, whatever the headers say', async () => {
    const r = await curl(['-H', 'X-Upstream-Host: elsewhere.example', `http://127.0.0.1:${proxy.port('reverse', 0)}/pinned?x=1`]);
    const req = seen(r.stdout);
    expect(req.path).toBe('/pinned');
    expect(req.headers.host).toBe(`127.0.0.1:${echo.port}`);
    const audit = await proxy.waitForLine((l) => l.msg === 'request' && l.path === '/pinned');
    expect(audit).toMatchObject({ mode: 'reverse', action: 'allow', status_code: 200, host: '127.0.0.1' });
  });

  it('selects the upstream from X-Upstream-Host and removes the header before forwarding', async () => {
    const r = await curl(['-H', `X-Upstream-Host: 127.0.0.1:${echo.port}`, `http://127.0.0.1:${proxy.port('reverse', 1)}/by-header`]);
    const req = seen(r.stdout);
    expect(req.path).toBe('/by-header');
    expect(req.headers['x-upstream-host']).toBeUndefined();
    expect(req.headers['x-forwarded-for']).toContain('127.0.0.1');
  });

  it('answers 400 naming the header when it is missing or empty', async () => {
    for (const extra of [[], ['-H', 'X-Upstream-Host;']]) {
      const before = echo.requests.length;
      const r = await curl([...extra, '-w', '\n%{http_code}', `http://127.0.0.1:${proxy.port('reverse', 1)}/nothing`]);
      const lines = r.stdout.split('\n');
      expect(lines.pop()).toBe('400');
      expect(lines.join('\n')).toContain('X-Upstream-Host');
      expect(echo.requests.length).toBe(before);
    }
  });

  it('reads the upstream from the Host line when host_header is Host', async () => {
    const r = await curl(['-H', `Host: 127.0.0.1:${echo.port}`, `http://127.0.0.1:${proxy.port('reverse', 2)}/by-host`]);
    expect(seen(r.stdout).path).toBe('/by-host');
  });

  it('applies the transform pipeline to reverse traffic', async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H', 'X-Upstream-Host: localhost.example.invalid', `http://127.0.0.1:${proxy.port('reverse', 1)}/blocked`]);
    expect(r.stdout).toBe('403');
  });
});
