/**
 * `aws_auth` end to end: the real AWS SDK clients (S3 with its presigner, STS, Secrets Manager
 * and SSM as JSON-protocol clients), configured with AWS's placeholder example keys, send through
 * the built binary's CONNECT listener (MITM, the proxy's CA trusted) to an HTTPS upstream that
 * accepts only the real credentials and recomputes every SigV4 signature with the SDK's signer.
 * Covered: header re-signing for three protocols, a presigned GET, an aws-chunked streaming
 * upload under `unsigned_payload`, a chunked upload (400 unless allowed), region and service
 * refusals, a body over the limit, an unsigned request, a credential that cannot be had,
 * workload-identity credentials from the environment and from a credentials file, config errors
 * from `proxy validate`; that the placeholder key never reaches the upstream, that refused
 * requests never do, and that no real credential is in anything the proxy wrote.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetWebIdentityTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsProxyAgent, type HttpsProxyAgentOptions } from 'https-proxy-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestPki,
  startDnsServer,
  startFakeAwsSecrets,
  startFakeSts,
  startSigV4Upstream,
  type DnsTestServer,
  type FakeAwsSecrets,
  type FakeSts,
  type SigV4Upstream,
  type TestPki,
} from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type LogLine, type ProxyProcess } from './support/proxy-process.js';

/** What the workload holds: AWS's documented example pair and a made-up session token. */
const PLACEHOLDER = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', sessionToken: 'placeholder-session-token-e2e' };
/** The credentials only the proxy (and the upstream that checks them) knows. */
const REAL = { accessKeyId: 'AKIAREALE2EACCESSKEY', secretAccessKey: 'real-e2e-secret-access-key-7f3a9c1e5b2d4' };
const HOSTS = { s3: 's3.us-east-1.amazonaws.test', sts: 'sts.us-east-1.amazonaws.test', sm: 'secretsmanager.eu-west-1.amazonaws.test', ssm: 'ssm.us-east-1.amazonaws.test' };

let pki: TestPki;
let dns: DnsTestServer;
let sts: FakeSts;
let secrets: FakeAwsSecrets;
let upstream: SigV4Upstream;
let caDir: string;
let proxyCaPem: string;
const proxies: ProxyProcess[] = [];

/** The proxy's CONNECT listener as the SDK's HTTPS agent, trusting only the proxy's CA for the destination. */
class ProxyAgent extends HttpsProxyAgent<string> {
  constructor(port: number) {
    super(`http://127.0.0.1:${port}`, {} as HttpsProxyAgentOptions<string>);
  }
  override connect(req: ClientRequest, opts: Parameters<HttpsProxyAgent<string>['connect']>[1]): Promise<Socket> {
    // The destination's TLS options are the request's: add the proxy's CA to them.
    return super.connect(req, Object.assign(opts, { ca: proxyCaPem }));
  }
}

function base(transforms: string): string {
  return `
dns:
  enabled: false
  upstream_resolver: "${dns.resolver}"
proxy:
  http_listen: "127.0.0.1:0"
  https_listen: "127.0.0.1:0"
  tunnel_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
  max_request_body_bytes: 4096
tls:
  mode: mitm
  ca_cert: "${join(caDir, 'ca.crt')}"
  ca_key: "${join(caDir, 'ca.key')}"
  upstream_ca_bundle: "${pki.caFile}"
transforms:
  - name: allowlist
    config:
      domains: ["*.amazonaws.test:${upstream.port}"]
${transforms}`;
}

/** An `aws_auth` entry with static credentials from the environment (the secret key from `secretVar`). */
const staticEntry = (settings: string, rule: string, secretVar = 'REAL_AWS_SECRET'): string => `  - name: aws_auth
    config:
      access_key_id: {type: env, var: REAL_AWS_KEY_ID}
      secret_access_key: {type: env, var: ${secretVar}}
${settings}      rules:
        - ${rule}
`;

/** The static-credential proxy: one entry per body policy, told apart by bucket. */
const STATIC = () =>
  base(
    staticEntry('      allowed_regions: ["us-east-1", "eu-west-1"]\n      allowed_services: ["s3", "sts", "secretsmanager"]\n', '{host: "*.amazonaws.test", paths: ["/", "/bucket/*"]}') +
      staticEntry('      unsigned_payload: true\n', `{host: "${HOSTS.s3}", paths: ["/streams/*"]}`) +
      staticEntry('      allow_chunked_body: true\n', `{host: "${HOSTS.s3}", paths: ["/chunked/*"]}`) +
      staticEntry('', `{host: "${HOSTS.s3}", paths: ["/unavailable/*"]}`, 'NOT_SET_ANYWHERE'),
  );

const WORKLOAD_IDENTITY = () =>
  base(`  - name: aws_auth
    config:
      credentials_provider: {type: workload_identity, region: us-east-1}
      rules:
        - {host: "*.amazonaws.test"}
`);

/** No host configuration and no instance metadata for the default chain, except what a test adds. */
const NO_HOST_AWS = { AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent/aws-config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials' };

let staticProxy: ProxyProcess;

beforeAll(async () => {
  pki = await createTestPki({ names: Object.values(HOSTS), caName: 'aws upstream CA' });
  dns = await startDnsServer({ records: Object.fromEntries(Object.values(HOSTS).map((h) => [h, { A: ['127.0.0.1'] }])) });
  sts = await startFakeSts();
  secrets = await startFakeAwsSecrets();
  upstream = await startSigV4Upstream({ credentials: REAL, tls: { cert: pki.cert, key: pki.key }, backends: { sts: sts.url, secretsmanager: secrets.url } });
  caDir = await mkdtemp(join(tmpdir(), 'aws-auth-e2e-ca-'));
  const generated = await runCli(['ca', 'generate', '--out', caDir, '--name', 'aws-auth e2e proxy CA']);
  if (generated.code !== 0) throw new Error(`proxy ca generate failed:\n${generated.stderr}`);
  proxyCaPem = await readFile(join(caDir, 'ca.crt'), 'utf8');
  staticProxy = await startProxyProcess(STATIC(), { env: { REAL_AWS_KEY_ID: REAL.accessKeyId, REAL_AWS_SECRET: REAL.secretAccessKey, ...NO_HOST_AWS } });
  proxies.push(staticProxy);
});

afterAll(async () => {
  for (const proxy of proxies) {
    // Invariant 2: no real credential in anything any proxy wrote.
    const output = proxy.stdout() + proxy.stderr();
    expect(output).not.toContain(REAL.secretAccessKey);
    await proxy.stop();
  }
  // The placeholder never reached the upstream, in any form.
  expect(upstream.accessKeyIds()).not.toContain(PLACEHOLDER.accessKeyId);
  const seen = JSON.stringify(upstream.requests);
  expect(seen).not.toContain(PLACEHOLDER.accessKeyId);
  expect(seen).not.toContain(PLACEHOLDER.sessionToken);
  await upstream?.close();
  await sts?.close();
  await secrets?.close();
  await dns?.close();
  await pki?.remove();
  if (caDir !== undefined) await rm(caDir, { recursive: true, force: true });
});

const handlers: NodeHttpHandler[] = [];
function through(proxy: ProxyProcess): NodeHttpHandler {
  const handler = new NodeHttpHandler({ httpsAgent: new ProxyAgent(proxy.port('tunnel')) });
  handlers.push(handler);
  return handler;
}
afterAll(() => {
  for (const handler of handlers) handler.destroy();
});

const endpoint = (host: string): string => `https://${host}:${upstream.port}`;
const clientConfig = (proxy: ProxyProcess, host: string, region = 'us-east-1') => ({
  region,
  endpoint: endpoint(host),
  credentials: PLACEHOLDER,
  requestHandler: through(proxy),
  maxAttempts: 1,
});
const s3 = (proxy: ProxyProcess, region = 'us-east-1', extra: Record<string, unknown> = {}) =>
  new S3Client({ ...clientConfig(proxy, HOSTS.s3, region), forcePathStyle: true, ...extra });

/** The audit record of the next request matching `path`, after the records counted by `after`. */
const auditOf = (proxy: ProxyProcess, after: number, path: string): Promise<LogLine> => proxy.waitForAudit((r) => r.path === path, after);
const transformAnnotations = (record: LogLine): Record<string, unknown>[] =>
  (record.request_transforms as { annotations?: Record<string, unknown> }[]).map((t) => t.annotations ?? {});

/** The annotations of the transform that refused a request: the last one that ran. */
const rejector = (record: LogLine): Record<string, unknown> | undefined => transformAnnotations(record).at(-1);

/** Runs `send` expecting the proxy to refuse it; returns the audit record and asserts the upstream was not contacted. */
async function expectRefused(proxy: ProxyProcess, path: string, send: () => Promise<unknown>): Promise<{ error: unknown; record: LogLine }> {
  const before = upstream.requests.length;
  const after = proxy.audits().length;
  const error = await send().then(
    () => undefined,
    (e: unknown) => e,
  );
  const record = await auditOf(proxy, after, path);
  expect(upstream.requests.length).toBe(before);
  return { error, record };
}

describe('aws_auth: header signatures re-signed for the real SDK clients', () => {
  it('S3 PutObject and GetObject succeed against an upstream that accepts only the real key', async () => {
    const after = staticProxy.audits().length;
    await s3(staticProxy).send(new PutObjectCommand({ Bucket: 'bucket', Key: 'report.csv', Body: 'a,b\n1,2\n' }));
    const got = await s3(staticProxy).send(new GetObjectCommand({ Bucket: 'bucket', Key: 'report.csv' }));
    expect(await got.Body?.transformToString()).toBe('a,b\n1,2\n');
    expect(upstream.requests.slice(-2)).toEqual([
      expect.objectContaining({ kind: 'header', method: 'PUT', accessKeyId: REAL.accessKeyId, service: 's3', region: 'us-east-1' }),
      expect.objectContaining({ kind: 'header', method: 'GET', accessKeyId: REAL.accessKeyId }),
    ]);
    expect(upstream.requests.at(-1)?.error).toBeUndefined();
    const record = await auditOf(staticProxy, after, '/bucket/report.csv');
    expect(record).toMatchObject({ action: 'allow', mode: 'mitm', status_code: 200 });
    expect(transformAnnotations(record).find((a) => a.injected !== undefined)).toMatchObject({ service: 's3', region: 'us-east-1', injected: ['header:Authorization', 'header:X-Amz-Date', 'header:X-Amz-Content-Sha256'] });
  });

  it('STS (query protocol) and Secrets Manager (JSON protocol) succeed too', async () => {
    const token = await new STSClient(clientConfig(staticProxy, HOSTS.sts)).send(new GetWebIdentityTokenCommand({ Audience: ['https://api.example.test'], SigningAlgorithm: 'RS256' }));
    expect(token.WebIdentityToken).toMatch(/^ey/);
    expect(sts.calls.at(-1)).toMatchObject({ accessKeyId: REAL.accessKeyId });

    secrets.putSecret('app/db', 'db-password-from-the-fake');
    const secret = await new SecretsManagerClient(clientConfig(staticProxy, HOSTS.sm, 'eu-west-1')).send(new GetSecretValueCommand({ SecretId: 'app/db' }));
    expect(secret.SecretString).toBe('db-password-from-the-fake');
    expect(upstream.requests.at(-1)).toMatchObject({ service: 'secretsmanager', region: 'eu-west-1', accessKeyId: REAL.accessKeyId });
    expect(upstream.requests.at(-1)?.error).toBeUndefined();
  });

  it('a presigned GET URL made with the placeholder works through the proxy', async () => {
    const url = await getSignedUrl(s3(staticProxy), new GetObjectCommand({ Bucket: 'bucket', Key: 'report.csv' }), { expiresIn: 300 });
    expect(url).toContain(PLACEHOLDER.accessKeyId);
    const r = await curl(['-sS', '--cacert', join(caDir, 'ca.crt'), '-x', `http://127.0.0.1:${staticProxy.port('tunnel')}`, url]);
    expect(r.stdout).toBe('a,b\n1,2\n');
    expect(upstream.requests.at(-1)).toMatchObject({ kind: 'query', accessKeyId: REAL.accessKeyId, service: 's3' });
    expect(upstream.requests.at(-1)?.error).toBeUndefined();
  });
});

describe('aws_auth: bodies', () => {
  it('an aws-chunked streaming upload (STREAMING-UNSIGNED-PAYLOAD-TRAILER) goes through with unsigned_payload, and is refused without', async () => {
    const body = () => Readable.from([Buffer.from('first chunk, '), Buffer.from('second chunk')]);
    await s3(staticProxy).send(new PutObjectCommand({ Bucket: 'streams', Key: 'log.txt', Body: body(), ContentLength: 25 }));
    expect(upstream.objects.get('streams/log.txt')?.toString()).toBe('first chunk, second chunk');
    expect(upstream.requests.at(-1)).toMatchObject({ payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', accessKeyId: REAL.accessKeyId });

    const { error, record } = await expectRefused(staticProxy, '/bucket/log.txt', () =>
      s3(staticProxy).send(new PutObjectCommand({ Bucket: 'bucket', Key: 'log.txt', Body: body(), ContentLength: 25 })),
    );
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 400 } });
    expect(record).toMatchObject({ status_code: 400, rejected_by: 'aws_auth', reason: 'streaming_payload_not_allowed' });
    expect(rejector(record)).toMatchObject({ service: 's3', payload: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', rejected: 'streaming_payload_not_allowed' });
  });

  it('a chunked upload is refused with 400 unless allow_chunked_body, then signed with its hash', async () => {
    // No checksum trailer and no length: the SDK sends the stream chunked, signed UNSIGNED-PAYLOAD.
    const send = (bucket: string) =>
      s3(staticProxy, 'us-east-1', { requestChecksumCalculation: 'WHEN_REQUIRED' }).send(new PutObjectCommand({ Bucket: bucket, Key: 'c.bin', Body: Readable.from([Buffer.from('chunked '), Buffer.from('body')]) }));
    const { error, record } = await expectRefused(staticProxy, '/bucket/c.bin', () => send('bucket'));
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 400 } });
    expect(record).toMatchObject({ status_code: 400, reason: 'chunked_body_not_allowed' });
    expect(rejector(record)).toMatchObject({ service: 's3', rejected: 'chunked_body_not_allowed' });

    await send('chunked');
    expect(upstream.objects.get('chunked/c.bin')?.toString()).toBe('chunked body');
    expect(upstream.requests.at(-1)).toMatchObject({ payloadHash: expect.stringMatching(/^[0-9a-f]{64}$/), accessKeyId: REAL.accessKeyId });
    expect(upstream.requests.at(-1)?.error).toBeUndefined();
  });
});

describe('aws_auth: refusals never reach the upstream', () => {
  it('a body over max_request_body_bytes: 413 body_truncated, never forwarded in part', async () => {
    const { error, record } = await expectRefused(staticProxy, '/bucket/big.bin', () =>
      s3(staticProxy).send(new PutObjectCommand({ Bucket: 'bucket', Key: 'big.bin', Body: Buffer.alloc(8192, 0x61) })),
    );
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 413 } });
    expect(record).toMatchObject({ status_code: 413, reason: 'body_truncated' });
    expect(rejector(record)).toMatchObject({ service: 's3', content_length: 8192, max_request_body_bytes: 4096, rejected: 'body_truncated' });
  });

  it('a region outside allowed_regions: 403 region_not_allowed', async () => {
    const { error, record } = await expectRefused(staticProxy, '/bucket/x', () => s3(staticProxy, 'ap-south-1').send(new GetObjectCommand({ Bucket: 'bucket', Key: 'x' })));
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect(record).toMatchObject({ status_code: 403, rejected_by: 'aws_auth', reason: 'region_not_allowed' });
    expect(rejector(record)).toMatchObject({ region: 'ap-south-1', rejected: 'region_not_allowed' });
  });

  it('a service outside allowed_services: 403 service_not_allowed', async () => {
    const { error, record } = await expectRefused(staticProxy, '/', () => new SSMClient(clientConfig(staticProxy, HOSTS.ssm)).send(new GetParameterCommand({ Name: '/x' })));
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect(record).toMatchObject({ status_code: 403, reason: 'service_not_allowed' });
    expect(rejector(record)).toMatchObject({ service: 'ssm', rejected: 'service_not_allowed' });
  });

  it('an unsigned request: 400 missing_sigv4 with the JSON error body', async () => {
    const before = upstream.requests.length;
    const after = staticProxy.audits().length;
    const r = await curl(['-sS', '-w', '\n%{http_code}', '--cacert', join(caDir, 'ca.crt'), '-x', `http://127.0.0.1:${staticProxy.port('tunnel')}`, `${endpoint(HOSTS.s3)}/bucket/report.csv`]);
    expect(r.stdout).toBe('{"error":"aws_auth","reason":"missing_sigv4"}\n400');
    const record = await auditOf(staticProxy, after, '/bucket/report.csv');
    expect(record).toMatchObject({ status_code: 400, reason: 'missing_sigv4' });
    expect(rejector(record)).toEqual({ rejected: 'missing_sigv4' });
    expect(upstream.requests.length).toBe(before);
  });

  it('a credential whose source has no value: 502 credential_unavailable', async () => {
    const { error, record } = await expectRefused(staticProxy, '/unavailable/x', () => s3(staticProxy).send(new GetObjectCommand({ Bucket: 'unavailable', Key: 'x' })));
    expect(error).toMatchObject({ $metadata: { httpStatusCode: 502 } });
    expect(record).toMatchObject({ status_code: 502, reason: 'credential_unavailable' });
    expect(rejector(record)).toMatchObject({ credential: 'static', rejected: 'credential_unavailable' });
  });
});

describe('aws_auth: workload identity (the AWS SDK default chain in the proxy)', () => {
  it('signs with credentials from the proxy\'s environment', async () => {
    const proxy = await startProxyProcess(WORKLOAD_IDENTITY(), { env: { ...NO_HOST_AWS, AWS_ACCESS_KEY_ID: REAL.accessKeyId, AWS_SECRET_ACCESS_KEY: REAL.secretAccessKey } });
    proxies.push(proxy);
    await s3(proxy).send(new PutObjectCommand({ Bucket: 'wi', Key: 'env', Body: 'from env' }));
    expect(upstream.objects.get('wi/env')?.toString()).toBe('from env');
    expect(upstream.requests.at(-1)).toMatchObject({ accessKeyId: REAL.accessKeyId });
    expect(upstream.requests.at(-1)?.error).toBeUndefined();
  });

  it('signs with a profile of a shared credentials file', async () => {
    const credentials = `[proxy-role]\naws_access_key_id = ${REAL.accessKeyId}\naws_secret_access_key = ${REAL.secretAccessKey}\n`;
    const dir = await mkdtemp(join(tmpdir(), 'aws-auth-e2e-wi-'));
    const proxy = await startProxyProcess(WORKLOAD_IDENTITY(), {
      dir,
      files: { 'aws-credentials': credentials },
      env: { ...NO_HOST_AWS, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'aws-credentials'), AWS_PROFILE: 'proxy-role' },
    });
    proxies.push(proxy);
    try {
      const got = await s3(proxy).send(new GetObjectCommand({ Bucket: 'wi', Key: 'env' }));
      expect(await got.Body?.transformToString()).toBe('from env');
      expect(upstream.requests.at(-1)).toMatchObject({ accessKeyId: REAL.accessKeyId });
      expect(upstream.requests.at(-1)?.error).toBeUndefined();
    } finally {
      await proxy.stop();
      proxies.splice(proxies.indexOf(proxy), 1);
      expect(proxy.stdout() + proxy.stderr()).not.toContain(REAL.secretAccessKey);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('aws_auth: proxy validate', () => {
  it.each([
    ['both credential forms', 'access_key_id: {type: env, var: A}\n      secret_access_key: {type: env, var: B}\n      credentials_provider: {type: workload_identity}', [':4:22: transforms[0].config.access_key_id: is not allowed here', ':5:26: transforms[0].config.secret_access_key: is not allowed here']],
    ['neither', 'allowed_services: ["s3"]', [':3:5: transforms[0].config: set one of: access_key_id, credentials_provider']],
    ['half a pair', 'access_key_id: {type: env, var: A}', [':4:22: transforms[0].config.secret_access_key: required when "access_key_id" is set (set both or neither)']],
    ['an upper-case region', 'credentials_provider: {type: workload_identity}\n      allowed_regions: ["US-EAST-1"]', [':5:25: transforms[0].config.allowed_regions[0]: "US-EAST-1" does not match the pattern ^[a-z0-9-]+$']],
  ])('reports %s at its file, line and field', async (_name, fields, expected) => {
    const dir = await mkdtemp(join(tmpdir(), 'aws-auth-validate-'));
    try {
      const file = join(dir, 'proxy.yaml');
      await writeFile(file, `transforms:\n  - name: aws_auth\n    config:\n      ${fields}\n      rules:\n        - host: "*.amazonaws.com"\n`);
      const r = await runCli(['validate', '--config', file]);
      expect(r.code).not.toBe(0);
      for (const line of expected) expect(r.stderr).toContain(`${file}${line}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
