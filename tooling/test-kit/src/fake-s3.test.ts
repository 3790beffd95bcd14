import { GetObjectCommand, NoSuchBucket, NoSuchKey, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeS3, type FakeS3 } from './fake-s3.js';

const credentials = { accessKeyId: 'AKIDFAKES3', secretAccessKey: 'fake-s3-secret-key' };

const s3 = (fake: FakeS3, creds = credentials) => new S3Client({ region: 'eu-west-1', endpoint: fake.url, credentials: creds, maxAttempts: 1 });

/** The error a GetObject fails with. */
async function failure(client: S3Client, Bucket: string, Key: string): Promise<S3ServiceException> {
  try {
    await client.send(new GetObjectCommand({ Bucket, Key }));
  } catch (err) {
    if (err instanceof S3ServiceException) return err;
    throw err;
  }
  throw new Error('GetObject succeeded');
}

describe('fake S3 through the real SDK client', () => {
  let fake: FakeS3;
  beforeEach(async () => {
    fake = await startFakeS3({ credentials });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('answers GetObject with the stored bytes (path-style, nested keys) and records the signer', async () => {
    fake.putObject('configs', 'prod/proxy.yaml', 'log:\n  level: debug\n');
    const out = await s3(fake).send(new GetObjectCommand({ Bucket: 'configs', Key: 'prod/proxy.yaml' }));
    expect(await out.Body!.transformToString()).toBe('log:\n  level: debug\n');
    expect(out.ContentLength).toBe(20);
    expect(out.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(fake.calls).toEqual([{ bucket: 'configs', key: 'prod/proxy.yaml', accessKeyId: credentials.accessKeyId, region: 'eu-west-1' }]);
  });

  it('fails a missing key with NoSuchKey and a missing bucket with NoSuchBucket (404)', async () => {
    fake.putObject('configs', 'a.yaml', 'x');
    const noKey = await failure(s3(fake), 'configs', 'b.yaml');
    expect(noKey).toBeInstanceOf(NoSuchKey);
    expect(noKey.$metadata.httpStatusCode).toBe(404);
    expect(await failure(s3(fake), 'other', 'a.yaml')).toBeInstanceOf(NoSuchBucket);
  });

  it('refuses a denied bucket, an unknown key id and a bad signature with 403', async () => {
    fake.putObject('locked', 'a.yaml', 'x');
    fake.denyBucket('locked');
    expect(await failure(s3(fake), 'locked', 'a.yaml')).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    fake.putObject('open', 'a.yaml', 'x');
    expect((await failure(s3(fake, { ...credentials, accessKeyId: 'AKIDOTHER' }), 'open', 'a.yaml')).name).toBe('InvalidAccessKeyId');
    expect((await failure(s3(fake, { ...credentials, secretAccessKey: 'wrong' }), 'open', 'a.yaml')).name).toBe('SignatureDoesNotMatch');
  });
});
