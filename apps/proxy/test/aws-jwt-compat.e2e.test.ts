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

  it('STS answering without Expiration: 502 "token unavailable", counted as an error, nothing cached', async () => {
    const proxy = await startCompat([`--upstream-host=127.0.0.1:${upstream.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, ...LOCAL]);
    sts.failWith('no-expiration');
    const before = upstream.hits();
    const calls = sts.calls.length;
    expect(await get(proxy, '/no-expiration-1')).toEqual({ status: 502, body: 'token unavailable' });
    // Nothing was cached: the next request asks STS again and is refused again.
    expect(await get(proxy, '/no-expiration-2')).toEqual({ status: 502, body: 'token unavailable' });
    expect(sts.calls.length - calls).toBe(2);
    expect(upstream.hits()).toBe(before);
    const audit = await proxy.waitForAudit((r) => r.path === '/no-expiration-2');
    expect(audit).toMatchObject({ status_code: 502, rejected_by: 'aws_jwt', reason: 'token_unavailable' });
    const lines = await scrape(proxy);
    expect(lines.some((l) => /^token_fetch_count_total\{[^}]*result="error"[^}]*\} 2$/.test(l) && l.includes('error_class="invalid_response"'))).toBe(true);
    expect(lines.some((l) => /^token_fetch_count_total\{[^}]*result="ok"/.test(l))).toBe(false);
    expect(lines.filter((l) => l.startsWith('token_cached_audiences'))).toEqual([expect.stringMatching(/^token_cached_audiences(\{[^}]*\})? 0$/)]);

    sts.failWith(undefined);
    expectVerified(await get(proxy, '/expiration-back'), '/expiration-back');
  });
});

describe('aws-outbound-jwt-proxy command line: usage errors and subcommands', () => {
  it.each([
    ['an unknown flag', ['--upstream-port=80'], {}, 'unknown flag "--upstream-port"'],
    ['a bad flag value', ['--token-duration=10m', '--token-refresh-skew=10m'], {}, '--token-refresh-skew'],
    ['a bad value from the environment', [], { UPSTREAM_HOST: 'https://api.example.com' }, '--upstream-host'],
    ['a flag without its value', ['--upstream-host'], {}, '--upstream-host: needs a value'],
    ['a positional argument', ['api.example.com'], {}, 'unexpected argument "api.example.com"'],
    ['TOKEN_AUDIENCE set but empty', [], { TOKEN_AUDIENCE: '' }, 'TOKEN_AUDIENCE is set but empty'],
    ['an audience with whitespace after the comma', [], { TOKEN_AUDIENCE: 'https://a.test, https://b.test' }, 'audience " https://b.test" in TOKEN_AUDIENCE='],
    ['an audience flag with an inner space', ['--token-audience=https://a .test'], {}, '--token-audience: audience "https://a .test" contains whitespace'],
    ['an extra argument to version', ['version', 'now'], {}, 'version: takes no arguments'],
  ])('%s: exit 1, the problem on stderr, nothing on stdout, nothing served', async (_what, argv, env, message) => {
    // Ephemeral ports, should a case not fail as it must.
    const result = await runAwsJwtBin(argv, { ...awsEnv, LISTEN_ADDR: '127.0.0.1:0', METRICS_LISTEN_ADDR: '127.0.0.1:0', ...env });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/^aws-outbound-jwt-proxy: /);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Run "aws-outbound-jwt-proxy --help" for the flags.');
    expect(result.stdout).toBe('');
  });

  it('"proxy aws-jwt" keeps the proxy command\'s exit code 2 for the same usage error', async () => {
    const result = await runCli(['aws-jwt', '--upstream-port=80'], awsEnv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('proxy aws-jwt: unknown flag "--upstream-port"');
  });

  it('"version" and "help" subcommands exit 0, like --version and --help', async () => {
    const version = await runAwsJwtBin(['version'], awsEnv);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^aws-outbound-jwt-proxy \d+\.\d+\.\d+\S*\n$/);
    expect((await runAwsJwtBin(['--version'], awsEnv)).stdout).toBe(version.stdout);

    const help = await runAwsJwtBin(['help'], awsEnv);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: aws-outbound-jwt-proxy \[flags\]\n/);
    expect(help.stdout).toContain('--token-audience');
    expect(help.stdout).toContain('aws-outbound-jwt-proxy version');
    expect((await runAwsJwtBin(['--help'], awsEnv)).stdout).toBe(help.stdout);
    expect(help.stderr).toBe('');
  });
});

describe('aws-outbound-jwt-proxy command line: shutdown', () => {
  it('a second SIGTERM during the drain does not cut it short: the in-flight request completes, exit 0', async () => {
    const proxy = await startCompat([`--upstream-host=127.0.0.1:${echo.port}`, '--upstream-scheme=http', `--token-audience=${AUDIENCE}`, ...LOCAL]);
    const inFlight = get(proxy, '/delay/2000');
    const deadline = Date.now() + 5000;
    while (!echo.requests.some((r) => r.path === '/delay/2000') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(echo.requests.some((r) => r.path === '/delay/2000')).toBe(true);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proxy.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    proxy.child.kill('SIGTERM');
    await proxy.waitForLine((l) => l.msg === 'shutting down: no new connections, finishing in-flight requests');
    proxy.child.kill('SIGTERM');
    await proxy.waitForLine((l) => l.msg?.startsWith('already shutting down') === true && l.signal === 'SIGTERM');
    proxy.child.kill('SIGINT');
    await proxy.waitForLine((l) => l.msg?.startsWith('already shutting down') === true && l.signal === 'SIGINT');
    const done = await inFlight;
    expect(done.status).toBe(200);
    expect(JSON.parse(done.body)).toMatchObject({ path: '/delay/2000' });
    expect(await exited).toEqual({ code: 0, signal: null });
    await proxy.stop();
    expect(proxy.lines().filter((l) => l.msg?.startsWith('already shutting down') === true).map((l) => l.signal)).toEqual(['SIGTERM', 'SIGINT']);
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
