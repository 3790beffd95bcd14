import { GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient, SecretsManagerServiceException } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, ParameterNotFound, SSMClient, SSMServiceException } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeAwsSecrets, type FakeAwsSecrets } from './fake-aws-secrets.js';

const credentials = { accessKeyId: 'AKIDFAKESECRETS', secretAccessKey: 'fake-secrets-secret-key' };

const sm = (fake: FakeAwsSecrets, creds = credentials) =>
  new SecretsManagerClient({ region: 'eu-west-2', endpoint: fake.url, credentials: creds, maxAttempts: 1 });
const ssm = (fake: FakeAwsSecrets, creds = credentials) => new SSMClient({ region: 'eu-west-2', endpoint: fake.url, credentials: creds, maxAttempts: 1 });

describe('fake Secrets Manager through the real SDK client', () => {
  let fake: FakeAwsSecrets;
  beforeEach(async () => {
    fake = await startFakeAwsSecrets({ credentials });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('answers GetSecretValue by name and by ARN, and records the signer', async () => {
    const arn = fake.putSecret('prod/api-key', 'first-value');
    const byName = await sm(fake).send(new GetSecretValueCommand({ SecretId: 'prod/api-key' }));
    expect(byName).toMatchObject({ ARN: arn, Name: 'prod/api-key', SecretString: 'first-value', VersionStages: ['AWSCURRENT'] });
    expect(byName.CreatedDate).toBeInstanceOf(Date);
    const byArn = await sm(fake).send(new GetSecretValueCommand({ SecretId: arn }));
    expect(byArn.SecretString).toBe('first-value');
    const byPartialArn = await sm(fake).send(new GetSecretValueCommand({ SecretId: 'arn:aws:secretsmanager:us-west-1:123456789:secret:prod/api-key' }));
    expect(byPartialArn.SecretString).toBe('first-value');
    expect(fake.calls).toEqual([
      { target: 'secretsmanager.GetSecretValue', id: 'prod/api-key', accessKeyId: credentials.accessKeyId, region: 'eu-west-2' },
      { target: 'secretsmanager.GetSecretValue', id: arn, accessKeyId: credentials.accessKeyId, region: 'eu-west-2' },
      { target: 'secretsmanager.GetSecretValue', id: 'arn:aws:secretsmanager:us-west-1:123456789:secret:prod/api-key', accessKeyId: credentials.accessKeyId, region: 'eu-west-2' },
    ]);
  });

  it('serves a rotated value under a new version, and binary secrets as SecretBinary', async () => {
    fake.putSecret('rotating', 'v1-value');
    const first = await sm(fake).send(new GetSecretValueCommand({ SecretId: 'rotating' }));
    fake.putSecret('rotating', 'v2-value');
    const second = await sm(fake).send(new GetSecretValueCommand({ SecretId: 'rotating' }));
    expect(second.SecretString).toBe('v2-value');
    expect(second.VersionId).not.toBe(first.VersionId);
    fake.putSecret('binary', Buffer.from([0, 1, 2, 250]));
    const binary = await sm(fake).send(new GetSecretValueCommand({ SecretId: 'binary' }));
    expect(binary.SecretString).toBeUndefined();
    expect(Buffer.from(binary.SecretBinary!)).toEqual(Buffer.from([0, 1, 2, 250]));
  });

  it('answers ResourceNotFoundException for an unknown or deleted secret', async () => {
    fake.putSecret('gone', 'value');
    fake.deleteSecret('gone');
    const err = await sm(fake)
      .send(new GetSecretValueCommand({ SecretId: 'gone' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceNotFoundException);
    expect(err).toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } });
  });

  it('fails as told (AccessDeniedException, InternalServiceError, a dropped connection) and recovers', async () => {
    fake.putSecret('s', 'value');
    fake.failWith('AccessDeniedException');
    await expect(sm(fake).send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
    fake.failWith('InternalFailure', 'secretsmanager.GetSecretValue');
    await expect(sm(fake).send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toMatchObject({
      name: 'InternalServiceError',
      $metadata: { httpStatusCode: 500 },
    });
    fake.failWith('drop');
    const dropped = await sm(fake)
      .send(new GetSecretValueCommand({ SecretId: 's' }))
      .catch((e: unknown) => e);
    expect(dropped).toBeInstanceOf(Error);
    expect(dropped).not.toBeInstanceOf(SecretsManagerServiceException);
    fake.failWith(undefined);
    expect((await sm(fake).send(new GetSecretValueCommand({ SecretId: 's' }))).SecretString).toBe('value');
  });

  it('verifies SigV4: another key is UnrecognizedClientException, a wrong secret InvalidSignatureException', async () => {
    fake.putSecret('s', 'value');
    await expect(sm(fake, { accessKeyId: 'AKIDOTHER', secretAccessKey: credentials.secretAccessKey }).send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
    await expect(sm(fake, { ...credentials, secretAccessKey: 'wrong' }).send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toMatchObject({
      name: 'InvalidSignatureException',
    });
  });

  it('refuses an unsigned request', async () => {
    const res = await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
      body: JSON.stringify({ SecretId: 's' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
    expect(fake.calls).toHaveLength(0);
  });

  it('holds answers until released', async () => {
    fake.putSecret('s', 'value');
    const release = fake.hold();
    const pending = sm(fake).send(new GetSecretValueCommand({ SecretId: 's' }));
    let settled = false;
    void pending.finally(() => (settled = true));
    await expect.poll(() => fake.calls.length).toBe(1);
    expect(settled).toBe(false);
    release();
    expect((await pending).SecretString).toBe('value');
  });
});

describe('fake SSM Parameter Store through the real SDK client', () => {
  let fake: FakeAwsSecrets;
  beforeEach(async () => {
    fake = await startFakeAwsSecrets();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('answers GetParameter, decrypting a SecureString only when asked', async () => {
    fake.putParameter('/app/key', 'param-value');
    const decrypted = await ssm(fake).send(new GetParameterCommand({ Name: '/app/key', WithDecryption: true }));
    expect(decrypted.Parameter).toMatchObject({ Name: '/app/key', Type: 'SecureString', Value: 'param-value', Version: 1, ARN: 'arn:aws:ssm:eu-west-2:123456789012:parameter/app/key' });
    const encrypted = await ssm(fake).send(new GetParameterCommand({ Name: '/app/key', WithDecryption: false }));
    expect(encrypted.Parameter?.Value).not.toBe('param-value');
    fake.putParameter('/app/plain', 'plain-value', 'String');
    expect((await ssm(fake).send(new GetParameterCommand({ Name: '/app/plain' }))).Parameter?.Value).toBe('plain-value');
    expect(fake.calls.map((c) => [c.target, c.id, c.withDecryption])).toEqual([
      ['AmazonSSM.GetParameter', '/app/key', true],
      ['AmazonSSM.GetParameter', '/app/key', false],
      ['AmazonSSM.GetParameter', '/app/plain', undefined],
    ]);
  });

  it('counts versions up on overwrite and finds a parameter by ARN', async () => {
    fake.putParameter('/p', 'one');
    fake.putParameter('/p', 'two');
    const out = await ssm(fake).send(new GetParameterCommand({ Name: 'arn:aws:ssm:eu-west-2:123456789012:parameter/p', WithDecryption: true }));
    expect(out.Parameter).toMatchObject({ Value: 'two', Version: 2 });
  });

  it('answers ParameterNotFound, and the failures it is told to', async () => {
    const err = await ssm(fake)
      .send(new GetParameterCommand({ Name: '/missing' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParameterNotFound);
    fake.putParameter('/p', 'v');
    fake.failWith('AccessDeniedException', 'AmazonSSM.GetParameter');
    const denied = await ssm(fake)
      .send(new GetParameterCommand({ Name: '/p' }))
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(SSMServiceException);
    expect(denied).toMatchObject({ name: 'AccessDeniedException' });
    fake.failWith('ThrottlingException');
    await expect(ssm(fake).send(new GetParameterCommand({ Name: '/p' }))).rejects.toMatchObject({ name: 'ThrottlingException' });
  });

  it('is reached through AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_SECRETS_MANAGER with credentials from the environment', async () => {
    fake.putParameter('/env', 'through-env');
    fake.putSecret('env-secret', 'sm-through-env');
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SSM: fake.url,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: fake.url,
      AWS_ACCESS_KEY_ID: 'AKIDFROMENV',
      AWS_SECRET_ACCESS_KEY: 'from-env-secret',
      AWS_REGION: 'ap-south-1',
    });
    try {
      expect((await new SSMClient({ maxAttempts: 1 }).send(new GetParameterCommand({ Name: '/env', WithDecryption: true }))).Parameter?.Value).toBe('through-env');
      expect((await new SecretsManagerClient({ maxAttempts: 1 }).send(new GetSecretValueCommand({ SecretId: 'env-secret' }))).SecretString).toBe('sm-through-env');
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
    expect(fake.calls.map((c) => [c.accessKeyId, c.region])).toEqual([
      ['AKIDFROMENV', 'ap-south-1'],
      ['AKIDFROMENV', 'ap-south-1'],
    ]);
  });
});
