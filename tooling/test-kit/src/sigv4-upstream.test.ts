import { Agent, get } from 'node:https';
import { Readable } from 'node:stream';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAwsSecrets, type FakeAwsSecrets } from './fake-aws-secrets.js';
import { startSigV4Upstream, type SigV4Upstream } from './sigv4-upstream.js';
import { createTestPki, type TestPki } from './test-pki.js';

const REAL = { accessKeyId: 'AKIAREALUPSTREAMKEY1', secretAccessKey: 'real-upstream-secret-access-key-000000001' };
const WRONG = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };

let pki: TestPki;
let upstream: SigV4Upstream;
let secrets: FakeAwsSecrets;
let handler: NodeHttpHandler;

beforeAll(async () => {
  pki = await createTestPki({ names: ['localhost', '127.0.0.1'] });
  secrets = await startFakeAwsSecrets();
  upstream = await startSigV4Upstream({ credentials: REAL, tls: { cert: pki.cert, key: pki.key }, backends: { secretsmanager: secrets.url } });
  handler = new NodeHttpHandler({ httpsAgent: new Agent({ ca: pki.caCert }) });
});

afterAll(async () => {
  handler?.destroy();
  await upstream?.close();
  await secrets?.close();
  await pki?.remove();
});

const s3 = (credentials = REAL, extra: Partial<ConstructorParameters<typeof S3Client>[0]> = {}) =>
  new S3Client({ region: 'us-east-1', endpoint: upstream.url, forcePathStyle: true, credentials, requestHandler: handler, maxAttempts: 1, ...extra });

describe('startSigV4Upstream', () => {
  it('stores and serves S3 objects for the real credentials, header-signed and over a presigned URL', async () => {
    await s3().send(new PutObjectCommand({ Bucket: 'b', Key: 'dir/a b.txt', Body: 'hello upstream' }));
    expect(upstream.objects.get('b/dir/a b.txt')?.toString()).toBe('hello upstream');
    const got = await s3().send(new GetObjectCommand({ Bucket: 'b', Key: 'dir/a b.txt' }));
    expect(await got.Body?.transformToString()).toBe('hello upstream');

    const url = await getSignedUrl(s3(), new GetObjectCommand({ Bucket: 'b', Key: 'dir/a b.txt' }), { expiresIn: 60 });
    const presigned = await new Promise<string>((resolve, reject) => {
      get(url, { ca: pki.caCert }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${text}`));
      }).on('error', reject);
    });
    expect(presigned).toBe('200 hello upstream');
    expect(upstream.requests.at(-1)).toMatchObject({ kind: 'query', service: 's3', region: 'us-east-1', accessKeyId: REAL.accessKeyId });
  });

  it('decodes an aws-chunked streaming upload (STREAMING-UNSIGNED-PAYLOAD-TRAILER)', async () => {
    await s3().send(new PutObjectCommand({ Bucket: 'b', Key: 'stream', Body: Readable.from([Buffer.from('part one, '), Buffer.from('part two')]), ContentLength: 18 }));
    expect(upstream.objects.get('b/stream')?.toString()).toBe('part one, part two');
    expect(upstream.requests.at(-1)).toMatchObject({ kind: 'header', payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' });
  });

  it('refuses other credentials and a tampered request with AWS error codes, recording the key id', async () => {
    const err = await s3(WRONG)
      .send(new GetObjectCommand({ Bucket: 'b', Key: 'dir/a b.txt' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ServiceException);
    expect(err).toMatchObject({ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } });
    expect(upstream.accessKeyIds()).toContain(WRONG.accessKeyId);

    const tampered = s3();
    tampered.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { path: string };
        request.path = request.path.replace('a%20b', 'other');
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low' },
    );
    await expect(tampered.send(new GetObjectCommand({ Bucket: 'b', Key: 'dir/a b.txt' }))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
  });

  it('passes verified requests of other services to their backend fake', async () => {
    secrets.putSecret('db-password', 'from-the-backend');
    const client = new SecretsManagerClient({ region: 'eu-west-1', endpoint: upstream.url, credentials: REAL, requestHandler: handler, maxAttempts: 1 });
    const out = await client.send(new GetSecretValueCommand({ SecretId: 'db-password' }));
    expect(out.SecretString).toBe('from-the-backend');
    const wrong = new SecretsManagerClient({ region: 'eu-west-1', endpoint: upstream.url, credentials: WRONG, requestHandler: handler, maxAttempts: 1 });
    await expect(wrong.send(new GetSecretValueCommand({ SecretId: 'db-password' }))).rejects.toMatchObject({ name: 'InvalidAccessKeyId' });
    expect(secrets.calls).toHaveLength(1);
  });
});
