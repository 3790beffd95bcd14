/**
 * Upstream proxy chaining on the built binary: requests go through a real squid (when
 * installed, with its default rules: CONNECT only to port 443, so plain HTTP must be sent in
 * absolute-form) and a SOCKS5 server (simple-socks, in-process); `no_proxy` hosts go direct;
 * denied destinations stay denied without reaching the proxy. Both upstream proxies resolve
 * `*.chain.test` themselves (squid from its `hosts_file`), which the test's DNS server also
 * answers for the proxy's own deny-list check.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createSocksServer } from 'simple-socks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

const SQUID = spawnSync('sh', ['-c', 'command -v squid || ls /usr/sbin/squid'], { encoding: 'utf8' }).stdout.trim().split('\n')[0] ?? '';

let echo: EchoServer;
let dns: DnsTestServer;
beforeAll(async () => {
  echo = await startEchoServer();
  dns = await startDnsServer({
    records: {
      'echo.chain.test': { A: ['127.0.0.1'] },
      'direct.chain.test': { A: ['127.0.0.1'] },
      'imds.chain.test': { A: ['169.254.169.254'] },
    },
  });
});
afterAll(async () => {
  await echo.close();
  await dns.close();
});

/** A config with a deny list and an allowlist, chaining through `proxyUrl` when given (else the environment sets the proxy). */
function config(proxyUrl: string | undefined): string {
  return `proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: ["169.254.0.0/16"]
${proxyUrl === undefined ? '' : `  upstream_proxy:\n    http_proxy: "${proxyUrl}"\n    no_proxy: "direct.chain.test"\n`}dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
transforms:
  - name: allowlist
    config:
      domains: ["echo.chain.test:${echo.port}", "direct.chain.test:${echo.port}", "imds.chain.test:${echo.port}", "169.254.169.254:${echo.port}"]
`;
}

async function status(proxy: ProxyProcess, url: string): Promise<string> {
  return (await curl(['-x', `http://127.0.0.1:${proxy.port('http')}`, '-o', '/dev/null', '-w', '%{http_code}', url])).stdout;
}

/** The shared checks: proxied, direct by no_proxy, refused by the allowlist and by the deny list (never reaching the upstream proxy). */
async function checkChaining(proxy: ProxyProcess, seen?: () => string): Promise<void> {
  expect(await status(proxy, `http://echo.chain.test:${echo.port}/chained`)).toBe('200');
  expect(echo.requests.some((r) => r.path === '/chained')).toBe(true);
  if (seen !== undefined) expect(seen()).toContain(`echo.chain.test:${echo.port}`);

  expect(await status(proxy, `http://direct.chain.test:${echo.port}/direct`)).toBe('200');
  expect(await status(proxy, `http://not-allowed.chain.test:${echo.port}/nope`)).toBe('403');
  expect(await status(proxy, `http://imds.chain.test:${echo.port}/imds`)).toBe('403');
  expect(await status(proxy, `http://169.254.169.254:${echo.port}/literal`)).toBe('403');
  await proxy.waitForAudit((a) => a.path === '/literal' && a.reason === 'upstream_denied');
  if (seen !== undefined) for (const name of ['direct.chain.test', 'not-allowed', 'imds.chain.test', '169.254.169.254']) expect(seen()).not.toContain(name);
}

describe('through a SOCKS5 proxy (socks5h, with credentials)', () => {
  const destinations: string[] = [];
  let socks: Server;
  let socksPort: number;
  beforeAll(async () => {
    socks = createSocksServer({
      authenticate: (user, pass, _socket, done) => (user === 'agent' && pass === 'socks-pass-71c2' ? done() : done(new Error('bad credentials'))),
      connectionFilter: (destination, _origin, done) => {
        destinations.push(`${destination.address}:${destination.port}`);
        done();
      },
      connectionOptions: (destination, _origin, defaults, done) => done(null, { ...defaults, host: destination.address.endsWith('.chain.test') ? '127.0.0.1' : destination.address }),
    });
    await new Promise<void>((resolve) => socks.listen(0, '127.0.0.1', resolve));
    socksPort = (socks.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => socks.close(() => resolve())));

  it('proxies, keeps no_proxy direct, keeps denied destinations denied, and never logs the proxy password', async () => {
    const proxy = await startProxyProcess(config(`socks5h://agent:socks-pass-71c2@127.0.0.1:${socksPort}`));
    try {
      await checkChaining(proxy, () => destinations.join('\n'));
      expect(proxy.stdout() + proxy.stderr()).not.toContain('socks-pass-71c2');
    } finally {
      await proxy.stop();
    }
  });
});

describe.skipIf(SQUID === '')('through squid (default access rules: CONNECT only to 443), set by HTTP_PROXY', () => {
  let dir: string;
  let squid: ChildProcess;
  let squidPort: number;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'proxy-squid-'));
    // Squid started as root drops to its own user: it must be able to write here.
    await chmod(dir, 0o777);
    squidPort = await freePort();
    await writeFile(join(dir, 'hosts'), '127.0.0.1 echo.chain.test direct.chain.test\n');
    await writeFile(
      join(dir, 'squid.conf'),
      [
        `http_port 127.0.0.1:${squidPort}`,
        `pid_filename ${dir}/squid.pid`,
        `cache_log ${dir}/cache.log`,
        `access_log stdio:${dir}/access.log`,
        `hosts_file ${dir}/hosts`,
        `coredump_dir ${dir}`,
        'visible_hostname squid-test',
        'cache deny all',
        'cache_mem 8 MB',
        'shutdown_lifetime 0 seconds',
        // Squid's default access rules: CONNECT only to 443, plain HTTP to the usual ports, from localhost.
        'acl SSL_ports port 443',
        'acl Safe_ports port 80 443 1025-65535',
        'acl CONNECT method CONNECT',
        'http_access deny !Safe_ports',
        'http_access deny CONNECT !SSL_ports',
        'http_access allow localhost',
        'http_access deny all',
        '',
      ].join('\n'),
    );
    squid = spawn(SQUID, ['-N', '-f', join(dir, 'squid.conf')], { stdio: 'ignore' });
    await waitForPort(squidPort, 20_000);
  }, 30_000);
  afterAll(async () => {
    squid?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('proxies, keeps no_proxy direct and keeps denied destinations denied', async () => {
    const proxy = await startProxyProcess(config(undefined), { env: { HTTP_PROXY: `http://127.0.0.1:${squidPort}`, NO_PROXY: 'direct.chain.test' } });
    try {
      // Squid writes its access log line when the request completes: read it after the requests.
      const log = async (): Promise<string> => readFile(join(dir, 'access.log'), 'utf8').catch(() => '');
      await checkChaining(proxy);
      let lastLog = '';
      const deadline = Date.now() + 10_000;
      while (!lastLog.includes(`echo.chain.test:${echo.port}`) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        lastLog = await log();
      }
      // Plain HTTP goes to squid in absolute-form (squid refuses CONNECT to a port other than 443).
      expect(lastLog).toMatch(new RegExp(`GET http://echo\\.chain\\.test:${echo.port}/chained `));
      expect(lastLog).not.toContain('CONNECT');
      for (const name of ['direct.chain.test', 'not-allowed', 'imds.chain.test', '169.254.169.254']) expect(lastLog).not.toContain(name);
    } finally {
      await proxy.stop();
    }
  });
});

if (SQUID === '') console.warn('upstream-proxy.e2e: squid is not installed; the squid test is skipped (apt-get install squid to run it)');

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`squid did not listen on ${port} within ${timeoutMs} ms`);
}
