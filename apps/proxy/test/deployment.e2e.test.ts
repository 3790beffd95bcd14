/**
 * iron-proxy's deployment habits, on the built binary: the `IRON_*` environment overrides
 * (over a file, and with no config file at all), `-config s3://bucket/key` against a fake S3
 * reached by the real AWS SDK, the version flags and `generate-ca` with iron-proxy's flags.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDns, startEchoServer, startFakeS3, type EchoServer, type FakeS3 } from '@proxy/test-kit';
import { version } from '../src/version.js';
import { curl, runCli, startProxyCommand, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

let echo: EchoServer;
let echoPort: number;
beforeAll(async () => {
  echo = await startEchoServer();
  echoPort = Number(new URL(echo.url).port);
});
afterAll(() => echo.close());

/** A config reaching the loopback echo server through an allowlist. */
const allowEcho = (): string => `proxy:
  http_listen: "127.0.0.1:1"
  upstream_deny_cidrs: []
transforms:
  - name: allowlist
    config:
      domains: ["127.0.0.1:${echoPort}"]
`;

/** Every byte the process wrote, for leak checks. */
const output = (proxy: ProxyProcess): string => proxy.stdout() + proxy.stderr();

describe('IRON_* environment overrides', () => {
  it('override the file: the listener and log level come from the environment, the rest from the file', async () => {
    const proxy = await startProxyProcess(allowEcho(), { env: { IRON_PROXY_HTTP_LISTEN: '127.0.0.1:0', IRON_LOG_LEVEL: 'debug' } });
    try {
      const r = await curl(['-x', `http://127.0.0.1:${proxy.port('http')}`, `${echo.url}/via-env`, '-o', '/dev/null', '-w', '%{http_code}']);
      expect(r.stdout).toBe('200');
      await proxy.waitForAudit((a) => a.path === '/via-env' && a.action === 'allow');
      // Debug lines only appear at IRON_LOG_LEVEL=debug (the file says nothing about log).
      expect(proxy.lines().some((l) => l.level === 'debug')).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('run the proxy with no config file at all: listeners, DNS and defaults from the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-env-only-'));
    try {
      // A CA made by the iron-proxy spelling of the command, named by paths relative to the working directory.
      expect((await runCli(['generate-ca', '-outdir', join(dir, 'certs'), '-alg', 'ed25519'])).code).toBe(0);
      const proxy = await startProxyCommand([], {
        dir,
        env: {
          IRON_PROXY_HTTP_LISTEN: '127.0.0.1:0',
          IRON_PROXY_HTTPS_LISTEN: '127.0.0.1:0',
          IRON_PROXY_TUNNEL_LISTEN: '127.0.0.1:0',
          IRON_TLS_CA_CERT: 'certs/ca.crt',
          IRON_TLS_CA_KEY: 'certs/ca.key',
          IRON_DNS_LISTEN: '127.0.0.1:0',
          IRON_DNS_PROXY_IP: '10.9.8.7',
          IRON_METRICS_LISTEN: '127.0.0.1:0',
        },
      });
      try {
        expect(proxy.lines().filter((l) => l.msg === 'listening').map((l) => l.listener).sort()).toEqual(['dns', 'http', 'https', 'metrics', 'tunnel']);
        const dns = await queryDns({ port: proxy.port('dns'), name: 'api.example.com', type: 'A' });
        expect(dns.answers.map((a) => a.data)).toEqual(['10.9.8.7']);
        const metrics = await fetch(`http://127.0.0.1:${proxy.port('metrics')}/metrics`);
        expect(metrics.status).toBe(200);
        // No transforms: everything is allowed, but the default upstream deny list still refuses loopback.
        const r = await curl(['-x', `http://127.0.0.1:${proxy.port('http')}`, `${echo.url}/env-only`, '-o', '/dev/null', '-w', '%{http_code}']);
        expect(r.stdout).toBe('403');
        await proxy.waitForAudit((a) => a.path === '/env-only' && a.reason === 'upstream_denied');
        expect(echo.requests.some((q) => q.path === '/env-only')).toBe(false);
      } finally {
        await proxy.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuse a bad value naming the variable, not a line', async () => {
    const r = await runCli([], { PATH: process.env.PATH ?? '', IRON_PROXY_MAX_REQUEST_BODY_BYTES: '1MB', IRON_LOG_LEVEL: 'loud' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid configuration (2 problems)');
    expect(r.stderr).toContain('environment variable IRON_PROXY_MAX_REQUEST_BODY_BYTES: proxy.max_request_body_bytes: must be an integer (got "1MB")');
    expect(r.stderr).toContain('environment variable IRON_LOG_LEVEL: log.level: must be one of: debug, info, warn, error');
  });

  it('refuse a management listener without a config file, as iron-proxy does', async () => {
    const r = await runCli(['validate'], { PATH: process.env.PATH ?? '', IRON_MANAGEMENT_LISTEN: '127.0.0.1:9092' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('environment variable IRON_MANAGEMENT_LISTEN: management.listen: the management API needs a config file (-config) to reload');
  });
});

describe("iron-proxy's managed mode", () => {
  it('is refused by name, from -token or IRON_PROXY_TOKEN, rather than run on another policy', async () => {
    const flag = await runCli(['-token', 'iprx_test'], { PATH: process.env.PATH ?? '' });
    expect(flag.code).not.toBe(0);
    expect(flag.stderr).toContain('flag "-token": iron-proxy\'s managed mode (configuration synced from a control plane with a proxy token) is not available in this version');
    const env = await runCli(['validate'], { PATH: process.env.PATH ?? '', IRON_PROXY_TOKEN: 'iprx_test', IRON_PROXY_HTTP_LISTEN: '127.0.0.1:0' });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain("environment variable IRON_PROXY_TOKEN: iron-proxy's managed mode");
    expect(env.stderr).toContain('is not available in this version; run with -config FILE; unset it');
  });
});

describe('-config s3://bucket/key', () => {
  const credentials = { accessKeyId: 'AKIDS3CONFIGTEST', secretAccessKey: 's3-config-secret-4b7e9c1d' };
  let s3: FakeS3;
  beforeAll(async () => {
    s3 = await startFakeS3({ credentials });
  });
  afterAll(() => s3.close());

  const awsEnv = (): Record<string, string> => ({
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_REGION: 'eu-central-1',
    AWS_ENDPOINT_URL_S3: s3.url,
  });

  it('fetches the config with the SDK default chain (env credentials) and serves it, env overrides applied', async () => {
    s3.putObject('proxy-configs', 'prod/proxy.yaml', allowEcho());
    const proxy = await startProxyCommand(['-config', 's3://proxy-configs/prod/proxy.yaml'], { env: { ...awsEnv(), IRON_PROXY_HTTP_LISTEN: '127.0.0.1:0' } });
    try {
      const r = await curl(['-x', `http://127.0.0.1:${proxy.port('http')}`, `${echo.url}/from-s3`, '-o', '/dev/null', '-w', '%{http_code}']);
      expect(r.stdout).toBe('200');
      const refused = await curl(['-x', `http://127.0.0.1:${proxy.port('http')}`, 'http://not-allowed.example/', '-o', '/dev/null', '-w', '%{http_code}']);
      expect(refused.stdout).toBe('403');
      expect(s3.calls.at(-1)).toEqual({ bucket: 'proxy-configs', key: 'prod/proxy.yaml', accessKeyId: credentials.accessKeyId, region: 'eu-central-1' });
      expect(output(proxy)).not.toContain(credentials.secretAccessKey);
    } finally {
      await proxy.stop();
    }
  });

  it('validates an S3 config and names the URL in its problems', async () => {
    s3.putObject('proxy-configs', 'bad.yaml', 'log:\n  level: loud\n');
    const r = await runCli(['validate', '-config', 's3://proxy-configs/bad.yaml'], { PATH: process.env.PATH ?? '', ...awsEnv() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('s3://proxy-configs/bad.yaml:2:10: log.level: must be one of');
  });

  it.each([
    ['a missing key', 's3://proxy-configs/nope.yaml', {}, /s3:\/\/proxy-configs\/nope\.yaml: cannot read the config from S3: NoSuchKey \(HTTP 404\)/],
    ['a missing bucket', 's3://no-bucket/proxy.yaml', {}, /s3:\/\/no-bucket\/proxy\.yaml: cannot read the config from S3: NoSuchBucket \(HTTP 404\)/],
    ['wrong credentials', 's3://proxy-configs/prod/proxy.yaml', { AWS_SECRET_ACCESS_KEY: 'wrong-secret' }, /SignatureDoesNotMatch \(HTTP 403\).*check the credentials/],
    ['an unreachable endpoint', 's3://proxy-configs/prod/proxy.yaml', { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' }, /s3:\/\/proxy-configs\/prod\/proxy\.yaml: cannot read the config from S3: .*ECONNREFUSED/],
    ['a URL without a key', 's3://proxy-configs', {}, /s3:\/\/proxy-configs: cannot read the config from S3: expected the form s3:\/\/bucket\/key/],
  ])('fails to start on %s with a clear error naming the URL', async (_what, url, env, message) => {
    s3.putObject('proxy-configs', 'prod/proxy.yaml', allowEcho());
    const r = await runCli(['-config', url], { PATH: process.env.PATH ?? '', ...awsEnv(), ...env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain(credentials.secretAccessKey);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });

  it('refuses a denied bucket with AccessDenied', async () => {
    s3.putObject('locked-configs', 'proxy.yaml', allowEcho());
    s3.denyBucket('locked-configs');
    const r = await runCli(['-config', 's3://locked-configs/proxy.yaml'], { PATH: process.env.PATH ?? '', ...awsEnv() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/s3:\/\/locked-configs\/proxy\.yaml: cannot read the config from S3: AccessDenied \(HTTP 403\): Access Denied/);
  });
});

describe('version and generate-ca', () => {
  it.each([['version'], ['--version'], ['-version'], ['-v']])('%s prints the version from package.json', async (flag) => {
    const r = await runCli([flag]);
    expect(r).toMatchObject({ code: 0, stdout: `proxy ${version}\n` });
  });

  it('generate-ca writes ca.crt (0644) and ca.key (0600) as "ca generate" does, with iron-proxy flags, and never overwrites', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-generate-ca-'));
    try {
      const r = await runCli(['generate-ca', '-outdir', dir, '-name', 'Team CA', '-expiry-hours', '48', '-alg', 'ed25519']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(join(dir, 'ca.crt'));
      const cert = new X509Certificate(await readFile(join(dir, 'ca.crt')));
      expect(cert.ca).toBe(true);
      expect(cert.subject).toBe('CN=Team CA');
      const lifetimeHours = (cert.validToDate.getTime() - Date.now()) / 3_600_000;
      expect(lifetimeHours).toBeGreaterThan(47);
      expect(lifetimeHours).toBeLessThanOrEqual(48);
      expect(createPrivateKey(await readFile(join(dir, 'ca.key'))).asymmetricKeyType).toBe('ed25519');
      expect((await stat(join(dir, 'ca.crt'))).mode & 0o777).toBe(0o644);
      expect((await stat(join(dir, 'ca.key'))).mode & 0o777).toBe(0o600);
      const again = await runCli(['generate-ca', '-outdir', dir]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('ca.crt');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('generate-ca defaults to an RSA 4096 key, one year', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'proxy-generate-ca-'));
    try {
      expect((await runCli(['generate-ca', `--outdir=${dir}`])).code).toBe(0);
      const key = createPrivateKey(await readFile(join(dir, 'ca.key')));
      expect(key.asymmetricKeyType).toBe('rsa');
      expect(key.asymmetricKeyDetails?.modulusLength).toBe(4096);
      const days = (new X509Certificate(await readFile(join(dir, 'ca.crt'))).validToDate.getTime() - Date.now()) / 86_400_000;
      expect(Math.round(days)).toBe(365);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('generate-ca refuses flags iron-proxy does not have', async () => {
    const r = await runCli(['generate-ca', '-days', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('generate-ca: unknown flag "-days"');
  });
});
