import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { hasCommand } from '@proxy/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeafCertificateIssuer, generateCertificateAuthority, loadCertificateAuthority } from '../src/index.js';
import { x509 } from '../src/x509-library.js';
import { OPENSSL_KEY_FORMATS, caExtensions, openssl, opensslCa, selfSignedCertificate, temporaryDirectory } from './fixtures.js';

let dir: string;
let remove: () => Promise<void>;
beforeAll(async () => ({ dir, remove } = await temporaryDirectory()));
afterAll(() => remove());

/** The signature algorithm each CA key type signs leaves with. */
const EXPECTED_LEAF_SIGNATURE: Record<keyof typeof OPENSSL_KEY_FORMATS, { name: string; hash?: string }> = {
  'RSA PKCS#1': { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  'RSA PKCS#8': { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  'EC P-256 SEC1': { name: 'ECDSA', hash: 'SHA-256' },
  'EC P-256 PKCS#8': { name: 'ECDSA', hash: 'SHA-256' },
  'EC P-384 SEC1': { name: 'ECDSA', hash: 'SHA-384' },
  'EC P-384 PKCS#8': { name: 'ECDSA', hash: 'SHA-384' },
  'EC P-521 SEC1': { name: 'ECDSA', hash: 'SHA-512' },
  'Ed25519 PKCS#8': { name: 'Ed25519' },
};

describe('loadCertificateAuthority: CAs made by openssl', () => {
  for (const [format, keyCommand] of Object.entries(OPENSSL_KEY_FORMATS) as [keyof typeof OPENSSL_KEY_FORMATS, readonly string[]][]) {
    it(`loads a ${format} key and signs leaves that openssl verifies`, async () => {
      const name = format.replace(/[^A-Za-z0-9]+/g, '-');
      const files = await opensslCa(dir, name, keyCommand);
      const keyPem = await readFile(files.keyFile, 'utf8');
      const expectedPemLabel = format.endsWith('PKCS#1') ? 'RSA PRIVATE KEY' : format.endsWith('SEC1') ? 'EC PRIVATE KEY' : 'PRIVATE KEY';
      expect(keyPem).toContain(`-----BEGIN ${expectedPemLabel}-----`);

      const ca = await loadCertificateAuthority(files);
      expect(ca.commonName).toBe(`${name} test CA`);
      expect(ca.notAfter.getTime()).toBe(new X509Certificate(await readFile(files.certFile)).validToDate.getTime());

      const leaf = await new LeafCertificateIssuer(ca).leafFor('service.example.test');
      const leafFile = join(dir, `${name}-leaf.crt`);
      await writeFile(leafFile, leaf.certPem);
      expect(new X509Certificate(leaf.certPem).verify(new X509Certificate(ca.certificatePem).publicKey)).toBe(true);
      expect(new x509.X509Certificate(leaf.certPem).signatureAlgorithm).toMatchObject(
        EXPECTED_LEAF_SIGNATURE[format].hash === undefined
          ? { name: EXPECTED_LEAF_SIGNATURE[format].name }
          : { name: EXPECTED_LEAF_SIGNATURE[format].name, hash: { name: EXPECTED_LEAF_SIGNATURE[format].hash } },
      );
      const verdict = await openssl(dir, ['verify', '-CAfile', files.certFile, '-purpose', 'sslserver', '-verify_hostname', 'service.example.test', leafFile]);
      expect(verdict.trim()).toBe(`${leafFile}: OK`);
    });
  }

  it('loads a CA written by generateCertificateAuthority', async () => {
    const generated = await generateCertificateAuthority({ commonName: 'generated, with "quotes"' });
    const certFile = join(dir, 'generated.crt');
    const keyFile = join(dir, 'generated.key');
    await writeFile(certFile, generated.certPem);
    await writeFile(keyFile, generated.keyPem);
    const ca = await loadCertificateAuthority({ certFile, keyFile });
    expect(ca.commonName).toBe('generated, with "quotes"');
    expect(ca.certificatePem).toBe(generated.certPem);
  });

  it('uses the first certificate of a bundle', async () => {
    const files = await opensslCa(dir, 'bundle-first', OPENSSL_KEY_FORMATS['EC P-256 PKCS#8']);
    const other = await generateCertificateAuthority();
    const bundleFile = join(dir, 'bundle.crt');
    await writeFile(bundleFile, (await readFile(files.certFile, 'utf8')) + other.certPem);
    const ca = await loadCertificateAuthority({ certFile: bundleFile, keyFile: files.keyFile });
    expect(ca.commonName).toBe('bundle-first test CA');
  });
});

/** Loads a CA expected to be refused; returns the error after checking its code, file and one-line message. */
async function refusal(files: { certFile: string; keyFile: string }, code: string, namedFile: string): Promise<ProxyError> {
  const error: unknown = await loadCertificateAuthority(files).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProxyError);
  const proxyError = error as ProxyError;
  expect(proxyError.code).toBe(code);
  expect(proxyError.message).toContain(namedFile);
  expect(proxyError.message).not.toContain('\n');
  return proxyError;
}

// Its fixture CA is made with openssl, in a hook (where a missing command cannot skip a test).
describe.skipIf(!hasCommand('openssl'))('loadCertificateAuthority: refusals', () => {
  let good: { certFile: string; keyFile: string };
  beforeAll(async () => {
    good = await opensslCa(dir, 'good', OPENSSL_KEY_FORMATS['EC P-256 SEC1']);
  });

  it('refuses an unreadable certificate or key file', async () => {
    const missing = join(dir, 'missing.crt');
    expect((await refusal({ certFile: missing, keyFile: good.keyFile }, ErrorCodes.CA_READ, missing)).message).toContain('ENOENT');
    await refusal({ certFile: good.certFile, keyFile: missing }, ErrorCodes.CA_READ, missing);
    await refusal({ certFile: dir, keyFile: good.keyFile }, ErrorCodes.CA_READ, dir);
  });

  it('refuses a certificate file that is not a PEM certificate', async () => {
    const text = join(dir, 'text.crt');
    await writeFile(text, 'hello\n');
    await refusal({ certFile: text, keyFile: good.keyFile }, ErrorCodes.CA_INVALID, text);
    // A key where the certificate belongs.
    await refusal({ certFile: good.keyFile, keyFile: good.keyFile }, ErrorCodes.CA_INVALID, good.keyFile);
    const garbage = join(dir, 'garbage.crt');
    await writeFile(garbage, '-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n');
    expect((await refusal({ certFile: garbage, keyFile: good.keyFile }, ErrorCodes.CA_INVALID, garbage)).message).toContain('not a valid X.509 certificate');
  });

  it('refuses a certificate that is not a CA', async () => {
    const files = await opensslCa(dir, 'not-ca', OPENSSL_KEY_FORMATS['EC P-256 SEC1'], ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,keyCertSign']);
    expect((await refusal(files, ErrorCodes.CA_INVALID, files.certFile)).message).toContain('basicConstraints CA:TRUE');
    const noConstraints = await opensslCa(dir, 'no-constraints', OPENSSL_KEY_FORMATS['EC P-256 SEC1'], ['keyUsage = critical,keyCertSign']);
    expect((await refusal(noConstraints, ErrorCodes.CA_INVALID, noConstraints.certFile)).message).toContain('basicConstraints CA:TRUE');
  });

  it('refuses a CA without keyCertSign', async () => {
    const noKeyUsage = await opensslCa(dir, 'no-key-usage', OPENSSL_KEY_FORMATS['EC P-256 SEC1'], ['basicConstraints = critical,CA:TRUE']);
    expect((await refusal(noKeyUsage, ErrorCodes.CA_INVALID, noKeyUsage.certFile)).message).toContain('no keyUsage');
    const noCertSign = await opensslCa(dir, 'no-cert-sign', OPENSSL_KEY_FORMATS['EC P-256 SEC1'], ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,digitalSignature,cRLSign']);
    expect((await refusal(noCertSign, ErrorCodes.CA_INVALID, noCertSign.certFile)).message).toContain('lacks keyCertSign');
  });

  it('refuses an expired CA, and one not valid yet', async () => {
    const day = 24 * 60 * 60 * 1000;
    const expired = await selfSignedCertificate({ notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day), extensions: caExtensions() });
    const files = { certFile: join(dir, 'expired.crt'), keyFile: join(dir, 'expired.key') };
    await writeFile(files.certFile, expired.certPem);
    await writeFile(files.keyFile, expired.keyPem);
    expect((await refusal(files, ErrorCodes.CA_EXPIRED, files.certFile)).message).toContain('expired on');

    const future = await selfSignedCertificate({ notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 10 * day), extensions: caExtensions() });
    const futureFiles = { certFile: join(dir, 'future.crt'), keyFile: join(dir, 'future.key') };
    await writeFile(futureFiles.certFile, future.certPem);
    await writeFile(futureFiles.keyFile, future.keyPem);
    expect((await refusal(futureFiles, ErrorCodes.CA_INVALID, futureFiles.certFile)).message).toContain('not valid before');
  });

  it('refuses a key that does not belong to the certificate, naming both files', async () => {
    const other = await opensslCa(dir, 'other', OPENSSL_KEY_FORMATS['EC P-256 SEC1']);
    const error = await refusal({ certFile: good.certFile, keyFile: other.keyFile }, ErrorCodes.CA_KEY_MISMATCH, good.certFile);
    expect(error.message).toContain(other.keyFile);
    // Same algorithm family, different type: an RSA key for an EC certificate.
    const rsa = await opensslCa(dir, 'rsa-other', OPENSSL_KEY_FORMATS['RSA PKCS#8']);
    await refusal({ certFile: good.certFile, keyFile: rsa.keyFile }, ErrorCodes.CA_KEY_MISMATCH, rsa.keyFile);
  });

  it('refuses a key file that is not an unencrypted PEM private key', async () => {
    const text = join(dir, 'text.key');
    await writeFile(text, 'not a key\n');
    expect((await refusal({ certFile: good.certFile, keyFile: text }, ErrorCodes.CA_INVALID, text)).message).toContain('not a PEM private key');
    // The certificate where the key belongs.
    await refusal({ certFile: good.certFile, keyFile: good.certFile }, ErrorCodes.CA_INVALID, good.certFile);

    const encrypted = join(dir, 'encrypted.key');
    await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes256', '-pass', 'pass:secret', '-out', encrypted]);
    expect((await refusal({ certFile: good.certFile, keyFile: encrypted }, ErrorCodes.CA_INVALID, encrypted)).message).toContain('encrypted');
  });

  it('refuses a key type leaves cannot be signed with', async () => {
    const files = await opensslCa(dir, 'secp256k1', ['ecparam', '-name', 'secp256k1', '-genkey', '-noout', '-out', 'KEY']);
    const error = await refusal(files, ErrorCodes.CA_INVALID, files.keyFile);
    expect(error.message).toContain('secp256k1');
    // The key itself is sound: it matches its certificate.
    const certKey = new X509Certificate(await readFile(files.certFile)).publicKey;
    expect(createPublicKey(await readFile(files.keyFile)).equals(certKey)).toBe(true);
  });
});
