import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runTransform } from '@proxy/core/testing';
import { awsAuthTransform } from '../src/index.js';
import { checkForwarded, forwardedText, headerSigned, PLACEHOLDER } from './harness.js';

const FROM_ENV = { accessKeyId: 'AKIAWORKLOADFROMENV1', secretAccessKey: 'workload-identity-secret-from-env-000001', sessionToken: 'workload-session-token-from-env-0001' };
const FROM_FILE = { accessKeyId: 'AKIAWORKLOADFROMFILE', secretAccessKey: 'workload-identity-secret-from-file-00001' };
const CONFIG = { credentials_provider: { type: 'workload_identity', region: 'us-east-1' }, rules: [{ host: '*.amazonaws.com' }] };
const SDK_VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_EC2_METADATA_DISABLED', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'];

let saved: Record<string, string | undefined>;
let dir: string;

beforeEach(async () => {
  saved = Object.fromEntries(SDK_VARS.map((name) => [name, process.env[name]]));
  for (const name of SDK_VARS) delete process.env[name];
  dir = await mkdtemp(join(tmpdir(), 'aws-auth-wi-'));
  // No host configuration and no instance metadata: only what a test puts in place.
  process.env.AWS_CONFIG_FILE = join(dir, 'config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
});

afterEach(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await rm(dir, { recursive: true, force: true });
});

const request = () => headerSigned({ method: 'GET', host: 'sts.amazonaws.com', path: '/', query: { Action: 'GetCallerIdentity', Version: '2011-06-15' }, service: 'sts' });

describe('aws_auth: credentials_provider workload_identity', () => {
  it('signs with credentials from the environment, session token included, and keeps them out of the logs', async () => {
    process.env.AWS_ACCESS_KEY_ID = FROM_ENV.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = FROM_ENV.secretAccessKey;
    process.env.AWS_SESSION_TOKEN = FROM_ENV.sessionToken;
    const result = await runTransform(awsAuthTransform, CONFIG, await request());
    expect(result.decision).toEqual({ action: 'continue' });
    expect((await checkForwarded(result, FROM_ENV)).error).toBeUndefined();
    expect(result.request.headers.get('x-amz-security-token')).toBe(FROM_ENV.sessionToken);
    expect(forwardedText(result)).not.toContain(PLACEHOLDER.accessKeyId);
    expect(JSON.stringify(result.logs)).not.toContain(FROM_ENV.secretAccessKey);
  });

  it('signs with a profile of the shared credentials file', async () => {
    await writeFile(join(dir, 'credentials'), `[proxy]\naws_access_key_id = ${FROM_FILE.accessKeyId}\naws_secret_access_key = ${FROM_FILE.secretAccessKey}\n`);
    process.env.AWS_PROFILE = 'proxy';
    const result = await runTransform(awsAuthTransform, CONFIG, await request());
    expect(result.decision).toEqual({ action: 'continue' });
    await expect(checkForwarded(result, FROM_FILE)).resolves.toMatchObject({ accessKeyId: FROM_FILE.accessKeyId, service: 'sts' });
    expect((await checkForwarded(result, FROM_FILE)).error).toBeUndefined();
  });

  it('answers 502 credential_unavailable when the chain finds nothing', async () => {
    const result = await runTransform(awsAuthTransform, CONFIG, await request());
    expect(result.decision).toMatchObject({ action: 'reject', status: 502, reason: 'credential_unavailable', message: '{"error":"aws_auth","reason":"credential_unavailable"}' });
    expect(result.audit.request_transforms[0]?.annotations).toMatchObject({ credential: 'workload_identity', error: expect.stringContaining('AWS default credential chain') });
  });
});
