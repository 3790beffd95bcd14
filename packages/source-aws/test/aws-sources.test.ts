import { createSecretResolver, SecretRedactor, type SecretHandle, type SecretSourceConfig } from '@proxy/core';
import { recordingLogger, type LogEntry } from '@proxy/core/testing';
import { startFakeAwsSecrets, type FakeAwsSecrets } from '@proxy/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsSmSource, awsSources, awsSsmSource } from '../src/index.js';

const CREDS = { AWS_ACCESS_KEY_ID: 'AKIDSOURCEAWSTEST', AWS_SECRET_ACCESS_KEY: 'source-aws-dummy-secret-key' };

let aws: FakeAwsSecrets;
let env: Record<string, string>;

beforeAll(async () => {
  aws = await startFakeAwsSecrets({ credentials: { accessKeyId: CREDS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDS.AWS_SECRET_ACCESS_KEY } });
  env = { ...CREDS, AWS_REGION: 'us-west-1', AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.url, AWS_ENDPOINT_URL_SSM: aws.url };
});

afterAll(async () => {
  await aws?.close();
});

function open(source: SecretSourceConfig, options: { env?: Record<string, string>; logs?: LogEntry[]; redactor?: SecretRedactor } = {}) {
  const controller = new AbortController();
  const resolver = createSecretResolver({
    sources: awsSources,
    logger: recordingLogger(options.logs ?? []),
    clock: { now: () => Date.now() },
    http: () => Promise.reject(new Error('sources use their own clients')),
    signal: controller.signal,
    env: options.env ?? env,
    ...(options.redactor === undefined ? {} : { redactor: options.redactor }),
  });
  return resolver.open(source);
}

async function settled(handle: Promise<SecretHandle>): Promise<SecretHandle> {
  const h = await handle;
  await h.ready();
  return h;
}

function errorOf(handle: SecretHandle): string {
  try {
    handle.value();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the secret to be unavailable');
}

describe('aws_sm', () => {
  it('labels by secret_id and declares its fields', () => {
    expect(awsSmSource.label({ type: 'aws_sm', secret_id: 'prod/key' })).toBe('prod/key');
    expect(awsSmSource.required).toEqual(['secret_id']);
    expect(Object.keys(awsSmSource.properties)).toEqual(['secret_id', 'region']);
  });

  it('fetches SecretString through the real SDK, signed with the environment credentials, in the configured region', async () => {
    const arn = aws.putSecret('prod/openai', 'sk-sm-value-1');
    const handle = await settled(open({ type: 'aws_sm', secret_id: arn, region: 'eu-central-1' }));
    expect(handle.value()).toBe('sk-sm-value-1');
    expect(aws.calls.at(-1)).toMatchObject({ target: 'secretsmanager.GetSecretValue', id: arn, accessKeyId: CREDS.AWS_ACCESS_KEY_ID, region: 'eu-central-1' });
    handle.close();
  });

  it('uses AWS_REGION without a region field, and applies json_key', async () => {
    aws.putSecret('prod/oauth', JSON.stringify({ client_id: 'cid-1', client_secret: 'cs-sm-json-value' }));
    const handle = await settled(open({ type: 'aws_sm', secret_id: 'prod/oauth', json_key: 'client_secret' }));
    expect(handle.value()).toBe('cs-sm-json-value');
    expect(aws.calls.at(-1)?.region).toBe('us-west-1');
    handle.close();
  });

  it('reads a SecretBinary secret as UTF-8', async () => {
    aws.putSecret('prod/binary', Buffer.from('binary-secret-value'));
    const handle = await settled(open({ type: 'aws_sm', secret_id: 'prod/binary' }));
    expect(handle.value()).toBe('binary-secret-value');
    handle.close();
  });

  it('reports ResourceNotFoundException and AccessDeniedException by code, naming the secret', async () => {
    const missing = await settled(open({ type: 'aws_sm', secret_id: 'prod/missing' }));
    expect(missing.available).toBe(false);
    expect(errorOf(missing)).toMatch(/^secret prod\/missing \(aws_sm\) could not be fetched: ResourceNotFoundException: /);
    missing.close();
    aws.putSecret('prod/denied', 'never-seen-value');
    aws.failWith('AccessDeniedException', 'secretsmanager.GetSecretValue');
    try {
      const denied = await settled(open({ type: 'aws_sm', secret_id: 'prod/denied' }));
      expect(errorOf(denied)).toContain('AccessDeniedException');
      denied.close();
    } finally {
      aws.failWith(undefined);
    }
  });

  it('reports a backend that cannot be reached as a transport failure', async () => {
    const handle = await settled(open({ type: 'aws_sm', secret_id: 'x' }, { env: { ...env, AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:1' } }));
    expect(errorOf(handle)).toMatch(/^secret x \(aws_sm\) could not be fetched: .*ECONNREFUSED/);
    handle.close();
  });

  it('falls back to AWS_ENDPOINT_URL and AWS_DEFAULT_REGION', async () => {
    aws.putSecret('generic', 'generic-endpoint-value');
    const handle = await settled(open({ type: 'aws_sm', secret_id: 'generic' }, { env: { ...CREDS, AWS_DEFAULT_REGION: 'sa-east-1', AWS_ENDPOINT_URL: aws.url } }));
    expect(handle.value()).toBe('generic-endpoint-value');
    expect(aws.calls.at(-1)?.region).toBe('sa-east-1');
    handle.close();
  });

  it('registers the AWS secret key and session token with the redactor', async () => {
    const redactor = new SecretRedactor();
    aws.putSecret('redacted', 'the-redacted-sm-value');
    const handle = await settled(open({ type: 'aws_sm', secret_id: 'redacted' }, { redactor, env: { ...env, AWS_SESSION_TOKEN: 'session-token-value-1' } }));
    expect(redactor.redact(`${CREDS.AWS_SECRET_ACCESS_KEY} session-token-value-1 the-redacted-sm-value`)).toBe(
      '[redacted:AWS_SECRET_ACCESS_KEY] [redacted:AWS_SESSION_TOKEN] [redacted:redacted]',
    );
    handle.close();
  });

  it('picks up a rotated value on the next fetch', async () => {
    aws.putSecret('rotating', 'before-rotation-1');
    const fetcher = awsSmSource.create({ type: 'aws_sm', secret_id: 'rotating' }, { logger: recordingLogger([]), http: () => Promise.reject(new Error('x')), env, baseDir: '/', redactor: new SecretRedactor() });
    const signal = new AbortController().signal;
    expect(await fetcher.fetch(signal)).toBe('before-rotation-1');
    aws.putSecret('rotating', 'after-rotation-2');
    expect(await fetcher.fetch(signal)).toBe('after-rotation-2');
    fetcher.close?.();
  });

  it('aborts a call in flight when the secret is closed', async () => {
    aws.putSecret('slow', 'slow-value');
    const release = aws.hold();
    try {
      const handle = await open({ type: 'aws_sm', secret_id: 'slow' });
      await expect.poll(() => aws.calls.at(-1)?.id).toBe('slow');
      handle.close();
      await handle.ready();
      expect(handle.available).toBe(false);
    } finally {
      release();
    }
  });
});

describe('aws_ssm', () => {
  it('labels by name and declares its fields', () => {
    expect(awsSsmSource.label({ type: 'aws_ssm', name: '/app/key' })).toBe('/app/key');
    expect(Object.keys(awsSsmSource.properties)).toEqual(['name', 'region', 'with_decryption']);
  });

  it('fetches a SecureString decrypted by default', async () => {
    aws.putParameter('/app/key', 'ssm-secure-value');
    const handle = await settled(open({ type: 'aws_ssm', name: '/app/key', region: 'us-east-2' }));
    expect(handle.value()).toBe('ssm-secure-value');
    expect(aws.calls.at(-1)).toMatchObject({ target: 'AmazonSSM.GetParameter', id: '/app/key', withDecryption: true, region: 'us-east-2' });
    handle.close();
  });

  it('sends WithDecryption false when with_decryption is false', async () => {
    aws.putParameter('/app/plain', 'ssm-plain-value', 'String');
    const handle = await settled(open({ type: 'aws_ssm', name: '/app/plain', with_decryption: false }));
    expect(handle.value()).toBe('ssm-plain-value');
    expect(aws.calls.at(-1)?.withDecryption).toBe(false);
    handle.close();
  });

  it('reports ParameterNotFound naming the parameter, and recovers after failure_ttl', async () => {
    const logs: LogEntry[] = [];
    const handle = await settled(open({ type: 'aws_ssm', name: '/app/later', failure_ttl: '100ms' }, { logs }));
    expect(errorOf(handle)).toMatch(/^secret \/app\/later \(aws_ssm\) could not be fetched: ParameterNotFound/);
    aws.putParameter('/app/later', 'ssm-late-value');
    await expect.poll(() => handle.available, { timeout: 5_000 }).toBe(true);
    expect(handle.value()).toBe('ssm-late-value');
    expect(JSON.stringify(logs)).not.toContain('ssm-late-value');
    handle.close();
  });

  it('keeps the last value while refreshes fail, and takes the rotated one when they succeed', async () => {
    aws.putParameter('/app/rotating', 'ssm-rotation-1');
    const handle = await settled(open({ type: 'aws_ssm', name: '/app/rotating', ttl: '200ms' }));
    expect(handle.value()).toBe('ssm-rotation-1');
    aws.failWith('InternalFailure', 'AmazonSSM.GetParameter');
    const failedBefore = aws.calls.length;
    await expect.poll(() => aws.calls.length, { timeout: 5_000 }).toBeGreaterThan(failedBefore);
    expect(handle.value()).toBe('ssm-rotation-1');
    aws.putParameter('/app/rotating', 'ssm-rotation-2');
    aws.failWith(undefined);
    await expect.poll(() => handle.value(), { timeout: 5_000 }).toBe('ssm-rotation-2');
    handle.close();
  });
});

describe('schema', () => {
  it('composes into the source schema with the documented fields', async () => {
    const { createSchemaValidator, secretSourceRef } = await import('@proxy/core');
    const ajv = createSchemaValidator({ secretSources: awsSources });
    const validate = ajv.compile(secretSourceRef);
    expect(validate({ type: 'aws_sm', secret_id: 'arn:aws:secretsmanager:us-west-1:123456789:secret:my-key', region: 'us-west-1', ttl: '10m' })).toBe(true);
    expect(validate({ type: 'aws_ssm', name: '/myapp/api-key', region: 'us-east-1', with_decryption: true, ttl: '15m', failure_ttl: '30s', json_key: 'k' })).toBe(true);
    expect(validate({ type: 'aws_sm' })).toBe(false);
    expect(validate({ type: 'aws_ssm', name: '/x', with_decryption: 'yes' })).toBe(false);
    expect(validate({ type: 'aws_sm', secret_id: 'x', colour: 'blue' })).toBe(false);
  });
});
