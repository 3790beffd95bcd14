import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { startDnsServer, startEchoServer, type DnsTestServer, type EchoServer } from '@proxy/test-kit';
import { curl, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';

// Ports in rules, through the real proxy: the allowlist lets an entry that names no port reach
// ports 80 and 443 only (443 for TLS only), a port an entry names, and nothing else, on the
// forward listener and when a CONNECT tunnel opens. A secret scoped to `host:443` never leaves
// in cleartext. The workload is the attacker: it picks the port and the scheme.

const REAL_TOKEN = 'real-token-ports-51c7d0';
const PLACEHOLDER = 'proxy-tok-ports';

/** Plain-HTTP echo servers on ports 80 and 443 of one loopback address, when they can be bound. */
interface WellKnownPorts {
  readonly address: string;
  readonly http: EchoServer | undefined;
  /** Cleartext HTTP on port 443: what a workload reaches with `http://host:443/`. */
  readonly cleartext443: EchoServer | undefined;
  /** Why ports 80 and 443 could not be bound (the cases that need them skip), or undefined. */
  readonly unavailable: string | undefined;
}

/** Binds plain echo servers on `127.0.0.X:80` and `:443` (another X when taken); falls back to none without privilege. */
async function startWellKnownPorts(): Promise<WellKnownPorts> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const address = `127.0.0.${2 + Math.floor(Math.random() * 253)}`;
    let http: EchoServer | undefined;
    try {
      http = await startEchoServer({ host: address, port: 80 });
      const cleartext443 = await startEchoServer({ host: address, port: 443 });
      return { address, http, cleartext443, unavailable: undefined };
    } catch (error) {
      await http?.close();
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES') return { address: '127.0.0.1', http: undefined, cleartext443: undefined, unavailable: `cannot bind ports 80 and 443 (${code}): run as root` };
      if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL') throw error;
    }
  }
  throw new Error('no loopback address with ports 80 and 443 free');
}

let echo: EchoServer;
let other: EchoServer;
let wellKnown: WellKnownPorts;
let dns: DnsTestServer;
let proxy: ProxyProcess;
let proxyUrl: string;
let tunnelUrl: string;

beforeAll(async () => {
  echo = await startEchoServer({ host: '127.0.0.1' });
  other = await startEchoServer({ host: '127.0.0.1' });
  wellKnown = await startWellKnownPorts();
  const local = { A: ['127.0.0.1'] };
  const privileged = { A: [wellKnown.address] };
  dns = await startDnsServer({
    records: { 'api.example.test': privileged, 'anyport.example.test': privileged, 'named.example.test': local, 'ranged.example.test': local },
  });
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
      domains: ["api.example.test", "named.example.test:${echo.port}", "anyport.example.test:*"]
      rules:
        - host: "ranged.example.test"
          ports: ["${Math.min(echo.port, other.port)}-${Math.max(echo.port, other.port)}"]
          methods: ["GET"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: REAL_TOKEN }
          replace:
            proxy_value: "${PLACEHOLDER}"
            match_headers: ["Authorization"]
          rules:
            - host: "anyport.example.test:443"
            - host: "named.example.test"
              ports: [${echo.port}]
`,
    { env: { REAL_TOKEN } },
  );
  proxyUrl = `http://127.0.0.1:${proxy.port('http')}`;
  tunnelUrl = `http://127.0.0.1:${proxy.port('tunnel')}`;
});

afterAll(async () => {
  await proxy?.stop();
  await echo?.close();
  await other?.close();
  await wellKnown?.http?.close();
  await wellKnown?.cleartext443?.close();
  await dns?.close();
});

/** Skips a case that needs the upstreams on ports 80 and 443. */
function needWellKnownPorts(ctx: TestContext): void {
  if (wellKnown.unavailable !== undefined) ctx.skip(wellKnown.unavailable);
}

/** A curl run through the proxy: the status, the CONNECT status and the body. */
async function fetchVia(args: readonly string[]): Promise<{ exit: number; status: string; connect: string; body: string }> {
  const r = await curl(['-w', '\n%{http_code} %{http_connect}', ...args]);
  const cut = r.stdout.lastIndexOf('\n');
  const [status = '', connect = ''] = r.stdout.slice(cut + 1).split(' ');
  return { exit: r.code, status, connect, body: r.stdout.slice(0, Math.max(cut, 0)) };
}

/** The allowlist's annotations in an audit record. */
const allowlistAnnotations = (record: LogLine): Record<string, unknown> | undefined =>
  (record.request_transforms as { name: string; annotations?: Record<string, unknown> }[] | undefined)?.find((t) => t.name === 'allowlist')?.annotations;

/** The allowlist's refusal of `host:port` (the port it annotates) in an audit record, after the first `after` records. */
function refusal(host: string, port: number, after: number, mode: string): Promise<LogLine> {
  return proxy.waitForAudit((l) => l.host === host && l.mode === mode && l.rejected_by === 'allowlist' && allowlistAnnotations(l)?.port === port, after);
}

/** Requests each upstream received, to prove nothing reached one. */
const received = (): number[] => [echo, other, wellKnown.http, wellKnown.cleartext443].map((s) => s?.requests.length ?? 0);

describe('forward proxy (curl -x http://host:port/)', () => {
  it('reaches a port an entry names', async () => {
    const r = await fetchVia(['-x', proxyUrl, `http://named.example.test:${echo.port}/named`]);
    expect(r).toMatchObject({ exit: 0, status: '200' });
    expect((JSON.parse(r.body) as { path: string }).path).toBe('/named');
  });

  it('refuses another port of that host with 403 not_allowlisted naming the port, before any connection', async () => {
    const before = received();
    const connections = other.connections;
    const after = proxy.audits().length;
    const r = await fetchVia(['-x', proxyUrl, `http://named.example.test:${other.port}/other-port`]);
    expect(r.status).toBe('403');
    expect(received()).toEqual(before);
    expect(other.connections).toBe(connections);
    const audit = await refusal('named.example.test', other.port, after, 'http');
    expect(audit).toMatchObject({ action: 'reject', status_code: 403, rejected_by: 'allowlist', path: '/other-port' });
    expect(allowlistAnnotations(audit)).toEqual({ host: 'named.example.test', port: other.port, rejected: 'not_allowlisted' });
  });

  it('refuses every port but 80 and 443 of an entry that names none', async () => {
    const before = received();
    for (const port of [echo.port, 22, 25, 8080]) {
      const r = await fetchVia(['-x', proxyUrl, `http://api.example.test:${port}/p${port}`]);
      expect(r.status, `port ${port}`).toBe('403');
    }
    expect(received()).toEqual(before);
  });

  it('reaches port 80 of an entry that names no port', async (ctx) => {
    needWellKnownPorts(ctx);
    const r = await fetchVia(['-x', proxyUrl, 'http://api.example.test/port-80']);
    expect(r).toMatchObject({ exit: 0, status: '200' });
    expect(wellKnown.http?.requests.at(-1)?.path).toBe('/port-80');
  });

  it('refuses cleartext HTTP to port 443: 443 is for TLS', async (ctx) => {
    needWellKnownPorts(ctx);
    const before = wellKnown.cleartext443?.requests.length;
    const after = proxy.audits().length;
    const r = await fetchVia(['-x', proxyUrl, 'http://api.example.test:443/cleartext']);
    expect(r.status).toBe('403');
    expect(wellKnown.cleartext443?.requests.length).toBe(before);
    expect(await refusal('api.example.test', 443, after, 'http')).toMatchObject({ path: '/cleartext', status_code: 403 });
  });

  it('keeps methods on top of a port range', async () => {
    expect((await fetchVia(['-x', proxyUrl, `http://ranged.example.test:${other.port}/ranged`])).status).toBe('200');
    expect((await fetchVia(['-x', proxyUrl, '-X', 'DELETE', `http://ranged.example.test:${other.port}/ranged`])).status).toBe('403');
    const outside = Math.max(echo.port, other.port) + 1;
    expect((await fetchVia(['-x', proxyUrl, `http://ranged.example.test:${outside}/ranged`])).status).toBe('403');
  });
});

describe('CONNECT tunnels (curl -p -x)', () => {
  it('opens a tunnel to a port an entry names, and forwards the request inside', async () => {
    const r = await fetchVia(['-p', '-x', tunnelUrl, `http://named.example.test:${echo.port}/tunnel-named`]);
    expect(r).toMatchObject({ exit: 0, status: '200', connect: '200' });
    expect((JSON.parse(r.body) as { path: string }).path).toBe('/tunnel-named');
  });

  it.each([
    ['another port of a host named with a port', 'named.example.test', () => other.port],
    ['a port other than 80 and 443 of an entry that names none', 'api.example.test', () => echo.port],
    ['ssh on port 22', 'api.example.test', () => 22],
    ['a port outside a rule range', 'ranged.example.test', () => Math.max(echo.port, other.port) + 1],
  ])('refuses %s with CONNECT 403, before any upstream connection', async (_, host, portOf) => {
    const port = portOf();
    const connections = [echo.connections, other.connections];
    const after = proxy.audits().length;
    const r = await fetchVia(['-p', '-x', tunnelUrl, `http://${host}:${port}/never`]);
    expect(r.connect).toBe('403');
    expect(r.exit).toBe(56); // CURLE_RECV_ERROR: "Received HTTP code 403 from proxy after CONNECT"
    expect([echo.connections, other.connections]).toEqual(connections);
    const audit = await refusal(host, port, after, 'tunnel');
    expect(audit).toMatchObject({ action: 'reject', status_code: 403, reason: 'not_allowlisted', tunnel: { target: `${host}:${port}`, protocol: 'connect' } });
  });

  it('opens a tunnel to port 443 of an allowed host, then refuses cleartext HTTP sent inside it', async (ctx) => {
    needWellKnownPorts(ctx);
    const before = wellKnown.cleartext443?.requests.length;
    const after = proxy.audits().length;
    const r = await fetchVia(['-p', '-x', tunnelUrl, 'http://api.example.test:443/inside-443']);
    expect(r.connect).toBe('200');
    expect(r.status).toBe('403');
    expect(wellKnown.cleartext443?.requests.length).toBe(before);
    const audit = await refusal('api.example.test', 443, after, 'http');
    expect(audit).toMatchObject({ path: '/inside-443', tunnel: { target: 'api.example.test:443', protocol: 'connect' } });
  });
});

describe('a secret scoped to host:443', () => {
  it('is swapped on the port its rule names (control)', async () => {
    const r = await fetchVia(['-x', proxyUrl, '-H', `Authorization: Bearer ${PLACEHOLDER}`, `http://named.example.test:${echo.port}/swap`]);
    expect(r.status).toBe('200');
    expect((JSON.parse(r.body) as { headers: Record<string, string> }).headers.authorization).toBe(`Bearer ${REAL_TOKEN}`);
  });

  it('is never sent in cleartext: http://host:443/ reaches the upstream with the placeholder', async (ctx) => {
    needWellKnownPorts(ctx);
    for (const args of [
      ['-x', proxyUrl],
      ['-p', '-x', tunnelUrl],
    ]) {
      const r = await fetchVia([...args, '-H', `Authorization: Bearer ${PLACEHOLDER}`, 'http://anyport.example.test:443/cleartext-secret']);
      expect(r.status, args.join(' ')).toBe('200');
      const seen = wellKnown.cleartext443?.requests.at(-1);
      expect(seen?.path).toBe('/cleartext-secret');
      expect(seen?.headers.authorization).toBe(`Bearer ${PLACEHOLDER}`);
      expect(JSON.stringify(seen)).not.toContain(REAL_TOKEN);
    }
  });
});
