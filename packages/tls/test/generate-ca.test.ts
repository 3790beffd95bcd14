import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateAuthorityFromPem, generateCertificateAuthority, loadCertificateAuthority, writeCertificateAuthority } from '../src/index.js';
import { x509 } from '../src/x509-library.js';
import { openssl, temporaryDirectory } from './fixtures.js';

let dir: string;
let remove: () => Promise<void>;
beforeAll(async () => ({ dir, remove } = await temporaryDirectory()));
afterAll(() => remove());

const DAY_MS = 24 * 60 * 60 * 1000;

describe('generateCertificateAuthority', () => {
  it.each([
    ['ec', 'ec', { namedCurve: 'prime256v1' }],
    ['rsa', 'rsa', { modulusLength: 2048 }],
    ['rsa4096', 'rsa', { modulusLength: 4096 }],
    ['ed25519', 'ed25519', {}],
  ] as const)('makes a self-signed %s CA with a PKCS#8 key', async (algorithm, keyType, keyDetails) => {
    const before = Date.now();
    const generated = await generateCertificateAuthority({ algorithm, commonName: 'Team CA', days: 30 });
    const certificate = new X509Certificate(generated.certPem);
    expect(certificate.ca).toBe(true);
    expect(certificate.subject).toBe('CN=Team CA');
    expect(certificate.issuer).toBe('CN=Team CA');
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificate.validToDate.getTime()).toBeGreaterThanOrEqual(Math.floor((before + 30 * DAY_MS) / 1000) * 1000);
    expect(certificate.validToDate.getTime()).toBeLessThanOrEqual(Date.now() + 30 * DAY_MS);
    expect(certificate.validFromDate.getTime()).toBeLessThan(before);

    expect(generated.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(generated.keyPem);
    expect(key.asymmetricKeyType).toBe(keyType);
    expect(key.asymmetricKeyDetails).toMatchObject(keyDetails);

    const parsed = new x509.X509Certificate(generated.certPem);
    const basicConstraints = parsed.getExtension(x509.BasicConstraintsExtension);
    expect(basicConstraints).toMatchObject({ ca: true, critical: true });
    const keyUsage = parsed.getExtension(x509.KeyUsagesExtension);
    expect(keyUsage?.critical).toBe(true);
    expect(keyUsage?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);

    // openssl agrees it is a CA fit to issue server certificates.
    const certFile = join(dir, `generated-${algorithm}.crt`);
    await writeFile(certFile, generated.certPem);
    const purposes = await openssl(dir, ['x509', '-in', certFile, '-noout', '-purpose']);
    expect(purposes).toContain('SSL server CA : Yes');

    const ca = await certificateAuthorityFromPem(generated);
    expect(ca.commonName).toBe('Team CA');
  });

  it('defaults to an EC P-256 CA named "proxy local CA" valid for 365 days', async () => {
    const generated = await generateCertificateAuthority();
    const certificate = new X509Certificate(generated.certPem);
    expect(certificate.subject).toBe('CN=proxy local CA');
    expect(createPrivateKey(generated.keyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const days = (certificate.validToDate.getTime() - Date.now()) / DAY_MS;
    expect(days).toBeGreaterThan(364.99);
    expect(days).toBeLessThanOrEqual(365);
  });

  it('gives each CA a distinct random serial', async () => {
    const [a, b] = await Promise.all([generateCertificateAuthority(), generateCertificateAuthority()]);
    expect(new X509Certificate(a.certPem).serialNumber).not.toBe(new X509Certificate(b.certPem).serialNumber);
  });

  it('refuses a bad validity or common name', async () => {
    await expect(generateCertificateAuthority({ days: 0 })).rejects.toMatchObject({ code: ErrorCodes.CA_INVALID });
    await expect(generateCertificateAuthority({ commonName: '' })).rejects.toMatchObject({ code: ErrorCodes.CA_INVALID });
    await expect(generateCertificateAuthority({ commonName: 'x'.repeat(65) })).rejects.toMatchObject({ code: ErrorCodes.CA_INVALID });
  });
});

describe('writeCertificateAuthority', () => {
  it('writes ca.crt 0644 and ca.key 0600 into a new directory, whatever the umask, and they load', async () => {
    const target = join(dir, 'new', 'nested');
    const generated = await generateCertificateAuthority();
    const previousUmask = process.umask(0o077);
    let files;
    try {
      files = await writeCertificateAuthority(target, generated);
    } finally {
      process.umask(previousUmask);
    }
    expect(files).toEqual({ certFile: join(target, 'ca.crt'), keyFile: join(target, 'ca.key') });
    expect((await stat(files.certFile)).mode & 0o777).toBe(0o644);
    expect((await stat(files.keyFile)).mode & 0o777).toBe(0o600);
    expect(await readFile(files.certFile, 'utf8')).toBe(generated.certPem);
    expect(await readFile(files.keyFile, 'utf8')).toBe(generated.keyPem);
    expect((await loadCertificateAuthority(files)).commonName).toBe('proxy local CA');
  });

  it.each(['ca.crt', 'ca.key'])('refuses to overwrite an existing %s and writes nothing', async (existing) => {
    const target = join(dir, `existing-${existing}`);
    await mkdir(target);
    await writeFile(join(target, existing), 'keep me\n');
    const error: unknown = await writeCertificateAuthority(target, await generateCertificateAuthority()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProxyError);
    expect(error).toMatchObject({ code: ErrorCodes.CA_EXISTS });
    expect((error as Error).message).toContain(join(target, existing));
    expect(await readFile(join(target, existing), 'utf8')).toBe('keep me\n');
    const other = existing === 'ca.crt' ? 'ca.key' : 'ca.crt';
    await expect(stat(join(target, other))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('reports a directory it cannot create as CA_WRITE', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, '');
    await expect(writeCertificateAuthority(join(blocker, 'sub'), await generateCertificateAuthority())).rejects.toMatchObject({ code: ErrorCodes.CA_WRITE });
  });
});
