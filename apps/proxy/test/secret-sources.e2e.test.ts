/**
 * The secret sources end to end, in the built binary: `aws_sm`, `aws_ssm` and
 * `1password_connect` against the test-kit fakes (the real AWS SDK and Connect REST calls),
 * `file` from disk, `1password` with a token its SDK refuses; the iron-proxy documentation's
 * source blocks as written; rotation with `ttl`; a backend that is slow or down at startup;
 * `validate --check-secrets`. Every byte the proxy processes wrote is searched for every
 * secret value and every credential used.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand, startEchoServer, startFakeAwsSecrets, startFakeOnePasswordConnect, type EchoServer, type FakeAwsSecrets, type FakeOnePasswordConnect } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type CommandResult, type ProxyProcess } from './support/proxy-process.js';

/** Every value a secret source yields in this suite, and every credential the sources use. */
const SECRET = {
  smAnthropic: 'sm-anthropic-value-1a2b',
  smMyKey: 'sm-docs-my-key-3c4d',
  smClientSecret: 'sm-json-client-secret-5e6f',
  ssmApiKey: 'ssm-docs-api-key-7a8b',
  ssmRotated: 'ssm-rotated-api-key-9c0d',
  ssmParam: 'ssm-openai-param-1e2f',
  connectCredential: 'connect-openai-credential-3a4b',
  connectRotated: 'connect-rotated-credential-5c6d',
  connectSection: 'connect-prod-section-7e8f',
  fileToken: 'file-github-token-9a0b',
  lateSecret: 'late-arriving-secret-1c2d',
  slowSecret: 'slow-backend-secret-3e4f',
} as const;
const CREDENTIAL = {
  awsSecretKey: 'e2e-dummy-aws-secret-access-key-5a6b',
  connectToken: 'e2e-connect-token-7c8d',
  serviceAccountToken: 'ops_e2e-malformed-service-token-9e0f',
};
const AWS_KEY_ID = 'AKIDE2ESECRETSOURCES';

let aws: FakeAwsSecrets;
let connect: FakeOnePasswordConnect;
let echo: EchoServer;
let dir: string;
/** Everything every proxy process and CLI run wrote, for the leak check at the end. */
const written: string[] = [];

beforeAll(async () => {
  aws = await startFakeAwsSecrets({ credentials: { accessKeyId: AWS_KEY_ID, secretAccessKey: CREDENTIAL.awsSecretKey } });
  connect = await startFakeOnePasswordConnect({ token: CREDENTIAL.connectToken });
  echo = await startEchoServer();
  dir = await mkdtemp(join(tmpdir(), 'proxy-secret-sources-'));
  await mkdir(join(dir, 'secrets'));
  await writeFile(join(dir, 'secrets', 'github'), SECRET.fileToken);

  aws.putSecret('anthropic-key', SECRET.smAnthropic);
  aws.putSecret('my-key', SECRET.smMyKey);
  aws.putSecret('gsuite-oauth', JSON.stringify({ client_id: 'client-id-public', client_secret: SECRET.smClientSecret }));
  aws.putParameter('/myapp/api-key', SECRET.ssmApiKey);
  aws.putParameter('/myapp/openai-key', SECRET.ssmParam);
  connect.putVault('Engineering');
  connect.putItem('Engineering', {
    title: 'OpenAI',
    sections: [{ id: 'prodsection', label: 'Production' }],
    fields: [
      { id: 'credential', label: 'credential', value: SECRET.connectCredential },
      { label: 'api key', value: SECRET.connectSection, section: 'prodsection' },
    ],
  });
});

afterAll(async () => {
  await aws?.close();
  await connect?.close();
  await echo?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The environment of every proxy and CLI run: the fakes' endpoints and dummy credentials. */
function sourceEnv(fakes: { aws?: FakeAwsSecrets } = {}): Record<string, string> {
  const url = (fakes.aws ?? aws).url;
  return {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
    AWS_ENDPOINT_URL_SSM: url,
    AWS_ACCESS_KEY_ID: AWS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: CREDENTIAL.awsSecretKey,
    AWS_REGION: 'us-east-1',
    OP_CONNECT_HOST: connect.url,
    OP_CONNECT_TOKEN: CREDENTIAL.connectToken,
    OP_SERVICE_ACCOUNT_TOKEN: CREDENTIAL.serviceAccountToken,
  };
}

/** One secrets entry injecting its source's value as header `X-<name>` on path `/<name>`. */
const entry = (name: string, source: string): string => `
        - source:
${source
  .trim()
  .split('\n')
  .map((l) => `            ${l.trim()}`)
  .join('\n')}
          inject: { header: "X-${name}" }
          rules: [{ host: "127.0.0.1", paths: ["/${name}"] }]`;

/**
 * The source blocks of the iron-proxy documentation (field for field), plus this project's
 * `file` source and a Connect reference through a section.
 */
const DOC_SOURCES = {
  'aws-sm': `
    type: aws_sm
    secret_id: "arn:aws:secretsmanager:us-west-1:123456789:secret:my-key"
    region: "us-west-1"
    ttl: 10m`,
  'aws-ssm': `
    type: aws_ssm
    name: "/myapp/api-key"
    region: "us-east-1"
    with_decryption: true
    ttl: 15m`,
  'connect': `
    type: 1password_connect
    secret_ref: "op://Engineering/OpenAI/credential"
    host_env: OP_CONNECT_HOST
    token_env: OP_CONNECT_TOKEN
    ttl: 15m`,
  'onepassword': `
    type: 1password
    secret_ref: "op://Engineering/OpenAI/credential"
    token_env: OP_SERVICE_ACCOUNT_TOKEN
    ttl: 15m`,
  'json-key': `
    type: aws_sm
    secret_id: "arn:aws:secretsmanager:us-east-1:123456789:secret:gsuite-oauth"
    json_key: "client_secret"`,
  'file': `
    type: file
    path: secrets/github`,
  'section': `
    type: 1password_connect
    secret_ref: "op://Engineering/OpenAI/Production/api key"`,
};

/** Listeners, and an allowlist that lets requests reach the echo upstream only. */
const header = (): string => `
proxy:
  http_listen: "127.0.0.1:0"
  upstream_deny_cidrs: []
metrics:
  listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      rules: [{ cidr: "127.0.0.1/32", ports: [${echo.port}] }]`;

const docsConfig = (): string => `${header()}
  - name: secrets
    config:
      secrets:${Object.entries(DOC_SOURCES)
        .map(([name, source]) => entry(name, source))
        .join('')}
        - source:
            type: aws_sm
            secret_id: "arn:aws:secretsmanager:us-west-1:123456789:secret:anthropic-key"
            region: "us-west-1"
            ttl: 5m
          replace:
            proxy_value: "pk-proxy-anthropic-xyz"
            match_headers: ["x-api-key"]
            require: true
          rules:
            - host: "127.0.0.1"
              paths: ["/anthropic"]
        - source:
            type: aws_ssm
            name: "/myapp/openai-key"
            region: "us-east-1"
            ttl: 1s
          replace:
            proxy_value: "pk-proxy-openai-param"
            match_headers: ["Authorization"]
          rules:
            - host: "127.0.0.1"
              paths: ["/openai"]
`;

/** Sends a GET through the proxy; returns the upstream's view of the request, or the status. */
async function through(proxy: ProxyProcess, path: string, headers: Record<string, string> = {}, extra: string[] = []): Promise<{ status: string; headers: Record<string, string> }> {
  const r = await curl([
    '-x',
    `http://127.0.0.1:${proxy.port()}`,
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    ...extra,
    '-w',
    '\n%{http_code}',
    `http://127.0.0.1:${echo.port}${path}`,
  ]);
  const lines = r.stdout.split('\n');
  const status = lines.pop() ?? '';
  const body = lines.join('\n');
  return { status, headers: status === '200' ? (JSON.parse(body) as { headers: Record<string, string> }).headers : {} };
}

async function readyz(proxy: ProxyProcess): Promise<{ status: string; body: Record<string, unknown> }> {
  const r = await curl(['-w', '\n%{http_code}', `http://127.0.0.1:${proxy.port('metrics')}/readyz`]);
  const lines = r.stdout.trim().split('\n');
  return { status: lines.at(-1) ?? '', body: JSON.parse(lines[0] ?? '') as Record<string, unknown> };
}

function keep(result: CommandResult): CommandResult {
  written.push(result.stdout, result.stderr);
  return result;
}

async function stopAndKeep(proxy: ProxyProcess | undefined): Promise<void> {
  if (proxy === undefined) return;
  await proxy.stop();
  written.push(proxy.stdout(), proxy.stderr());
}

describe('the documented source blocks against the fakes', () => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    await writeFile(join(dir, 'docs.yaml'), docsConfig());
    proxy = await startProxyProcess(docsConfig(), { dir, env: sourceEnv() });
  });

  afterAll(async () => {
    await stopAndKeep(proxy);
  });

  it('load with proxy validate', async () => {
    const r = keep(await runCli(['validate', '--config', join(dir, 'docs.yaml')], { PATH: process.env.PATH ?? '' }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('serve each source: aws_sm (partial ARN, json_key), aws_ssm, 1password_connect (also through a section), file', async () => {
    const expected: Record<string, string> = {
      'aws-sm': SECRET.smMyKey,
      'aws-ssm': SECRET.ssmApiKey,
      connect: SECRET.connectCredential,
      'json-key': SECRET.smClientSecret,
      file: SECRET.fileToken,
      section: SECRET.connectSection,
    };
    for (const [name, value] of Object.entries(expected)) {
      const seen = await through(proxy, `/${name}`);
      expect(seen.status, name).toBe('200');
      expect(seen.headers[`x-${name}`], name).toBe(value);
    }
    const swapped = await through(proxy, '/anthropic', { 'x-api-key': 'pk-proxy-anthropic-xyz' });
    expect(swapped.headers['x-api-key']).toBe(SECRET.smAnthropic);
  });

  it('signed every AWS call with the environment credentials, in the configured regions', () => {
    const sm = aws.calls.find((c) => c.id === 'arn:aws:secretsmanager:us-west-1:123456789:secret:my-key');
    expect(sm).toMatchObject({ target: 'secretsmanager.GetSecretValue', accessKeyId: AWS_KEY_ID, region: 'us-west-1' });
    expect(aws.calls.find((c) => c.id === '/myapp/api-key')).toMatchObject({ withDecryption: true, region: 'us-east-1' });
    expect(connect.calls.every((c) => c.authorized)).toBe(true);
  });

  it('reports the 1password source, which cannot reach 1Password here, as unavailable, and leaves its request untouched', async () => {
    const ready = await readyz(proxy);
    expect(ready).toEqual({ status: '503', body: { ready: false, secrets_unavailable: ['op://Engineering/OpenAI/credential'] } });
    const seen = await through(proxy, '/onepassword');
    expect(seen.status).toBe('200');
    expect(seen.headers['x-onepassword']).toBeUndefined();
    const warned = await proxy.waitForLine((l) => Array.isArray(l.secrets_unavailable));
    expect(warned.secrets_unavailable).toEqual(['op://Engineering/OpenAI/credential']);
    expect(proxy.stdout()).toContain('invalid service account token');
  });

  it('picks up a rotated SSM parameter with ttl', async () => {
    aws.putParameter('/myapp/openai-key', SECRET.ssmRotated);
    await expect
      .poll(async () => (await through(proxy, '/openai', { Authorization: 'Bearer pk-proxy-openai-param' })).headers.authorization, { timeout: 10_000, interval: 300 })
      .toBe(`Bearer ${SECRET.ssmRotated}`);
  });

  it('proxy validate --check-secrets fetches every source and names the one that failed', async () => {
    const r = keep(await runCli(['validate', '--config', join(dir, 'docs.yaml'), '--check-secrets'], { PATH: process.env.PATH ?? '', ...sourceEnv() }));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/secret arn:aws:secretsmanager:us-west-1:123456789:secret:my-key \(aws_sm\): available/);
    expect(r.stdout).toMatch(/secret \/myapp\/api-key \(aws_ssm\): available/);
    expect(r.stdout).toMatch(/secret op:\/\/Engineering\/OpenAI\/credential \(1password_connect\): available/);
    expect(r.stdout).toMatch(/secret secrets\/github \(file\): available/);
    expect(r.stdout).toMatch(/secret op:\/\/Engineering\/OpenAI\/credential \(1password\): unavailable: .*invalid service account token/);
    expect(r.stdout).toContain('9 secret(s) checked, 1 unavailable');
  });
});

describe('a backend that is slow or down when the proxy starts', () => {
  let down: FakeAwsSecrets;
  let proxy: ProxyProcess | undefined;

  beforeAll(async () => {
    down = await startFakeAwsSecrets({ credentials: { accessKeyId: AWS_KEY_ID, secretAccessKey: CREDENTIAL.awsSecretKey } });
  });

  afterAll(async () => {
    await stopAndKeep(proxy);
    await down?.close();
  });

  const config = (): string => `${header()}
  - name: secrets
    config:
      secrets:${entry('late', 'type: aws_sm\nsecret_id: late-secret\nfailure_ttl: 1s')}${entry('slow', 'type: aws_ssm\nname: /slow/param')}
`;

  it('starts listening without waiting for a slow backend; a request that gives up does not cancel the fetch', async () => {
    down.putParameter('/slow/param', SECRET.slowSecret);
    const release = down.hold();
    try {
      // The next test goes on with this process; afterAll stops it.
      proxy = await startProxyProcess(config(), { env: sourceEnv({ aws: down }), keepAfterTest: true });
      // Both first fetches are in flight, held by the fake: the proxy listens all the same.
      await expect.poll(() => down.calls.length).toBe(2);
      expect((await readyz(proxy)).body).toEqual({ ready: false, secrets_pending: ['late-secret', '/slow/param'] });
      const gaveUp = await through(proxy, '/slow', {}, ['--max-time', '1']);
      expect(gaveUp.status).toBe('000');
    } finally {
      release();
    }
    const served = await through(proxy, '/slow');
    expect(served.headers['x-slow']).toBe(SECRET.slowSecret);
    // The fetch the abandoned request waited for completed: nothing was fetched again.
    expect(down.calls.filter((c) => c.id === '/slow/param')).toHaveLength(1);
  });

  it('reports a secret whose backend has it not as unavailable (503), then ready once a retry after failure_ttl finds it', async () => {
    expect(proxy).toBeDefined();
    const p = proxy!;
    await expect.poll(async () => (await readyz(p)).body, { timeout: 5_000 }).toEqual({ ready: false, secrets_unavailable: ['late-secret'] });
    expect((await through(p, '/late')).headers['x-late']).toBeUndefined();
    const warned = await p.waitForLine((l) => Array.isArray(l.secrets_unavailable));
    expect(warned.secrets_unavailable).toEqual(['late-secret']);
    expect(p.stdout()).toContain('ResourceNotFoundException');
    down.putSecret('late-secret', SECRET.lateSecret);
    await expect.poll(async () => (await readyz(p)).status, { timeout: 10_000, interval: 200 }).toBe('200');
    expect((await through(p, '/late')).headers['x-late']).toBe(SECRET.lateSecret);
    await p.waitForLine((l) => typeof l.msg === 'string' && l.msg.includes('late-secret is available now'));
  });
});

describe('no secret value or credential in anything the proxy wrote', () => {
  it('greps every byte of every proxy process and CLI run of this suite', () => {
    // What it greps was made by the curl requests above, skipped where curl is missing.
    requireCommand('curl');
    const output = written.join('\n');
    expect(output).toContain('"msg":"request"');
    for (const [name, value] of Object.entries({ ...SECRET, ...CREDENTIAL })) {
      for (const spelling of [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), Buffer.from(value).toString('base64')]) {
        expect(output.includes(spelling), `${name} (as ${spelling}) in the proxy's output`).toBe(false);
      }
    }
  });
});
