import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestPki, startEchoServer, startFakeSts, type EchoServer, type FakeSts } from '@proxy/test-kit';
import { readGatedSse } from './support/gated-sse.js';
import {
  awsJwtBinPath,
  curl,
  runAwsJwtBin,
  runCli,
  startAwsJwtProcess,
  startProxyProcess,
  type ProxyProcess,
} from './support/proxy-process.js';

const AUDIENCE = 'https://example.test';

let sts: FakeSts;
let echo: EchoServer;
let upstream: VerifyingUpstream;
let awsEnv: Record<string, string>;
const running: ProxyProcess[] = [];

/** A third-party API stand-in: answers 200 with the verified claims, or 401 with why verification failed. */
interface VerifyingUpstream {
  readonly port: number;
  /** Requests received so far. */
  readonly hits: () => number;
  close(): Promise<void>;
}

async function startVerifyingUpstream(): Promise<VerifyingUpstream> {
  const jwks = createLocalJWKSet(sts.jwks);
  let hits = 0;
  const server: Server = createHttpServer((req, res) => {
    hits++;
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const answer = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (token === undefined) return answer(401, { error: 'no bearer' });
    jwtVerify(token, jwks, { issuer: sts.issuer, audience: AUDIENCE, requiredClaims: ['exp'] }).then(
      ({ payload }) => answer(200, { claims: payload, path: req.url }),
      (err: unknown) => answer(401, { error: (err as Error).message }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    hits: () => hits,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port on 127.0.0.1 with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The flags every test proxy gets: ephemeral loopback ports for the listener and the metrics. */
// Per-request records are written at debug only, as aws-outbound-jwt-proxy writes them.
const LOCAL = ['--listen-addr=127.0.0.1:0', '--metrics-listen-addr=127.0.0.1:0', '--log-level=debug'];

async function startCompat(flags: readonly string[], env: Record<string, string> = {}): Promise<ProxyProcess> {
  const proxy = await startAwsJwtProcess(flags, { env: { ...awsEnv, ...env } });
  running.push(proxy);
  return proxy;
}

/** GETs `path` on the proxy's reverse listener: status and body. */
async function get(proxy: ProxyProcess, path: string, headers: readonly string[] = []): Promise<{ status: number; body: string }> {
  const result = await curl(['-w', '\n%{http_code}', ...headers.flatMap((h) => ['-H', h]), `http://127.0.0.1:${proxy.port('reverse')}${path}`]);
  const at = result.stdout.lastIndexOf('\n');
  return { status: Number(result.stdout.slice(at + 1)), body: result.stdout.slice(0, at) };
}

async function scrape(proxy: ProxyProcess): Promise<string[]> {
  return (await curl([`http://127.0.0.1:${proxy.port('metrics')}/metrics`])).stdout.split('\n');
}

/** Checks a 200 from the verifying upstream: the token's signature, issuer, audience and expiry held. */
function expectVerified(response: { status: number; body: string }, path: string): void {
  expect(response.status, response.body).toBe(200);
  const { claims, path: seen } = JSON.parse(response.body) as { claims: JWTPayload; path: string };
  expect(seen).toBe(path);
  expect(claims.iss).toBe(sts.issuer);
  expect(claims.aud === AUDIENCE || (Array.isArray(claims.aud) && claims.aud.includes(AUDIENCE))).toBe(true);
  expect(claims.exp! * 1000).toBeGreaterThan(Date.now());
}

beforeAll(async () => {
  sts = await startFakeSts();
  echo = await startEchoServer();
  upstream = await startVerifyingUpstream();
  awsEnv = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIAFAKEE2E',
    AWS_SECRET_ACCESS_KEY: 'fake-secret-key-e2e',
    AWS_ENDPOINT_URL_STS: sts.url,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
});

afterEach(async () => {
  sts.failWith(undefined);
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

afterAll(async () => {
  await upstream?.close();
  await echo?.close();
  await sts?.close();
});

describe('aws-outbound-jwt-proxy command line: a verified token reaches the upstream', () => {
  it('from flags', async () => {
    const proxy = await startCompat([`--upstream-host=127.0.0.1:${upstream.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, ...LOCAL]);
    expectVerified(await get(proxy, '/v1/items?x=1'), '/v1/items?x=1');
    expect(sts.calls.at(-1)).toMatchObject({ audience: [AUDIENCE], signingAlgorithm: 'RS256', durationSeconds: 3600, accessKeyId: 'AKIAFAKEE2E' });
  });

  it('over HTTPS on the listener with --tls-cert and --tls-key', async () => {
    const pki = await createTestPki({ names: ['127.0.0.1'] });
    try {
      const proxy = await startCompat([
        `--upstream-host=127.0.0.1:${upstream.port}`,
        '--upstream-scheme=http',
        `--token-audience=${AUDIENCE}`,
        `--tls-cert=${pki.certFile}`,
        `--tls-key=${pki.keyFile}`,
        ...LOCAL,
      ]);
      const result = await curl(['--cacert', pki.caFile, '-w', '\n%{http_code}', `https://127.0.0.1:${proxy.port('reverse')}/tls`]);
      const at = result.stdout.lastIndexOf('\n');
      expectVerified({ status: Number(result.stdout.slice(at + 1)), body: result.stdout.slice(0, at) }, '/tls');
      // Plain HTTP is not served on a TLS listener.
      expect((await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${proxy.port('reverse')}/plain`])).stdout).not.toBe('200');
    } finally {
      await pki.remove();
    }
  });

  it('from environment variables only', async () => {
    const proxy = await startCompat([], {
      UPSTREAM_HOST: `127.0.0.1:${upstream.port}`,
      UPSTREAM_SCHEME: 'http',
      TOKEN_AUDIENCE: AUDIENCE,
      TOKEN_DURATION: '15m',
      LISTEN_ADDR: '127.0.0.1:0',
      METRICS_LISTEN_ADDR: '127.0.0.1:0',
    });
    expectVerified(await get(proxy, '/from-env'), '/from-env');
    expect(sts.calls.at(-1)).toMatchObject({ audience: [AUDIENCE], durationSeconds: 900 });
  });

  it('from the equivalent YAML (--print-config) run by proxy --config', async () => {
    const flags = [`--upstream-host=127.0.0.1:${upstream.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, ...LOCAL];
    const printed = await runAwsJwtBin(['--print-config', ...flags], awsEnv);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toContain('  - name: aws_jwt\n');
    const viaSubcommand = await runCli(['aws-jwt', '--print-config', ...flags], awsEnv);
    expect(viaSubcommand.stdout).toBe(printed.stdout);

    const proxy = await startProxyProcess(printed.stdout, { env: awsEnv });
    running.push(proxy);
    expectVerified(await get(proxy, '/from-yaml'), '/from-yaml');
    // The sidecar config opens the reverse listener and metrics only: no forward proxy.
    expect(proxy.lines().filter((l) => l.msg === 'listening').map((l) => l.listener)).toEqual(['reverse', 'metrics']);
  });

  it('runs the same way as "proxy aws-jwt"', async () => {
    const child = spawn(process.execPath, [awsJwtBinPath.replace(/aws-outbound-jwt-proxy\.js$/, 'cli.js'), 'aws-jwt', '--version']);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(out).toMatch(/^proxy aws-jwt \d+\.\d+\.\d+/);
  });
});

describe('aws-outbound-jwt-proxy command line: failures', () => {
  it('STS AccessDenied: 502 "token unavailable", upstream not contacted, counted by error class', async () => {
    const proxy = await startCompat([`--upstream-host=127.0.0.1:${upstream.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, ...LOCAL]);
    sts.failWith('AccessDenied');
    const before = upstream.hits();
    const response = await get(proxy, '/denied');
    expect(response).toEqual({ status: 502, body: 'token unavailable' });
    expect(upstream.hits()).toBe(before);
    const audit = await proxy.waitForAudit((r) => r.path === '/denied');
    expect(audit).toMatchObject({ status_code: 502, rejected_by: 'aws_jwt', reason: 'token_unavailable' });
    expect(audit.request_transforms).toEqual([expect.objectContaining({ annotations: expect.objectContaining({ error_class: 'AccessDenied' }) })]);
    const lines = await scrape(proxy);
    expect(lines.some((l) => /^token_fetch_count_total\{[^}]*result="error"[^}]*\} [1-9]/.test(l) && l.includes('error_class="AccessDenied"'))).toBe(true);
  });

  it('an upstream slower than --upstream-timeout: 504, counted as error_type="timeout"', async () => {
    const proxy = await startCompat([`--upstream-host=127.0.0.1:${echo.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, '--upstream-timeout=200ms', ...LOCAL]);
    expect((await get(proxy, '/delay/1500')).status).toBe(504);
    await proxy.waitForAudit((r) => r.path === '/delay/1500');
    const lines = await scrape(proxy);
    expect(lines.some((l) => /^http_client_request_duration_seconds_count\{[^}]*error_type="timeout"[^}]*\} 1$/.test(l))).toBe(true);
  });

  it('a closed upstream port: 502, counted as error_type="connection_refused"', async () => {
    const port = await closedPort();
    const proxy = await startCompat([`--upstream-host=127.0.0.1:${port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, ...LOCAL]);
    expect((await get(proxy, '/refused')).status).toBe(502);
    await proxy.waitForAudit((r) => r.path === '/refused');
    const lines = await scrape(proxy);
    expect(lines.some((l) => /^http_client_request_duration_seconds_count\{[^}]*error_type="connection_refused"[^}]*\} 1$/.test(l))).toBe(true);
  });

  it('a usage error exits 2 with the flag named on stderr, before listening', async () => {
    const result = await runAwsJwtBin(['--token-duration=10m', '--token-refresh-skew=10m'], awsEnv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--token-refresh-skew');
    expect(result.stdout).toBe('');
    const fromEnv = await runAwsJwtBin([], { ...awsEnv, UPSTREAM_HOST: 'https://api.example.com' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('--upstream-host');
  });
});

describe('aws-outbound-jwt-proxy command line: --log-format text', () => {
  it('writes human-readable lines with the complete audit record', async () => {
    const child = spawn(
      process.execPath,
      [awsJwtBinPath, `--upstream-host=127.0.0.1:${upstream.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, '--log-format=text', ...LOCAL],
      { env: { PATH: process.env.PATH ?? '', ...awsEnv } },
    );
    let out = '';
    const waitFor = (pattern: RegExp): Promise<RegExpExecArray> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(out);
          if (m !== null) {
            child.stdout.off('data', check);
            resolve(m);
          }
        };
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          check();
        });
        child.once('close', () => reject(new Error(`exited before ${pattern}:\n${out}`)));
        check();
      });
    try {
      const port = Number((await waitFor(/^time=\S+ level=INFO msg=listening listener=reverse address=127\.0\.0\.1:(\d+)/m))[1]);
      const result = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/text-log`]);
      expect(result.stdout).toBe('200');
      const [line] = await waitFor(/^time=\S+ level=DEBUG msg=request .*path=\/text-log.*$/m);
      expect(line).toContain('action=allow');
      expect(line).toContain('status_code=200');
      expect(line).toContain('mode=reverse');
      expect(line).toContain('"token_result":"ok"');
      expect(line).not.toMatch(/ey[A-Za-z0-9_-]{20,}\./);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('close', resolve));
    }
  });
});

describe('aws-outbound-jwt-proxy command line: header mode', () => {
  it('X-Upstream-Host selects the upstream and is stripped; a missing header is a 400 naming it', async () => {
    const proxy = await startCompat(['--upstream-scheme=http', ...LOCAL]);
    const ok = await get(proxy, '/by-header', [`X-Upstream-Host: 127.0.0.1:${echo.port}`, 'Authorization: Bearer workload-supplied']);
    expect(ok.status, ok.body).toBe(200);
    const echoed = JSON.parse(ok.body) as { path: string; headers: Record<string, string> };
    expect(echoed.path).toBe('/by-header');
    expect(echoed.headers['x-upstream-host']).toBeUndefined();
    expect(echoed.headers.authorization).toMatch(/^Bearer ey/);
    // Dynamic audience: derived from the header's host.
    expect(sts.calls.at(-1)?.audience).toEqual(['http://127.0.0.1']);

    const missing = await get(proxy, '/no-header');
    expect(missing.status).toBe(400);
    expect(missing.body).toContain('X-Upstream-Host');
  });

  it('refuses a header naming a cloud credential endpoint (403), while loopback stays reachable', async () => {
    const proxy = await startCompat(['--upstream-scheme=http', ...LOCAL]);
    const endpoints = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '100.100.100.200', '[fd00:ec2::23]', '[fe80::1]', '[64:ff9b::a9fe:aa02]'];
    for (const [i, endpoint] of endpoints.entries()) {
      const refused = await get(proxy, `/credentials-${i}`, [`X-Upstream-Host: ${endpoint}`]);
      expect(refused.status, endpoint).toBe(403);
      const audit = await proxy.waitForAudit((r) => r.path === `/credentials-${i}`);
      expect(audit, endpoint).toMatchObject({ rejected_by: 'upstream_guard', reason: 'upstream_denied' });
    }
    expect((await get(proxy, '/loopback', [`X-Upstream-Host: 127.0.0.1:${echo.port}`])).status).toBe(200);
  });
});

describe('aws-outbound-jwt-proxy command line: streaming', () => {
  it('delivers a chunked response chunk by chunk and upgrades a WebSocket', async () => {
    const proxy = await startCompat([`--upstream-host=127.0.0.1:${echo.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, ...LOCAL]);
    const port = proxy.port('reverse');
    const sse = await readGatedSse({ port, path: '/sse?events=3&gate=1', echoPort: echo.port, events: 3 });
    expect(sse.contentType).toContain('text/event-stream');
    expect(sse.events).toEqual(['data: 0', 'data: 1', 'data: 2']);

    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hello through the sidecar'));
      ws.once('message', (data) => resolve(String(data)));
      ws.once('error', reject);
    });
    ws.close();
    expect(reply).toBe('hello through the sidecar');
  });
});
