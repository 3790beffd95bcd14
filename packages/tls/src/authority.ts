/**
 * The certificate authority leaves are signed with: loaded from PEM files (or PEM text) and
 * checked before use, so a CA that clients would reject, or a key that does not belong to the
 * certificate, is refused at startup with a one-line message naming the file.
 */
import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ErrorCodes, ProxyError, type ErrorCode } from '@proxy/core';
import type { GeneratedCa } from './generate.js';
import { SUPPORTED_KEY_TYPES, signingKeyFrom, type SigningAlgorithm } from './signing-key.js';
import { x509 } from './x509-library.js';

/** A loaded, checked CA: its certificate, and what signing a leaf with it takes. */
export interface CertificateAuthority {
  /** The CA certificate, PEM: the last certificate of every chain served. */
  readonly certificatePem: string;
  /** The CA's subject common name (its whole subject when it has no CN). */
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The CA's subject name, DER encoded, copied as is into the issuer of every leaf. */
  readonly subjectNameDer: ArrayBuffer;
  /** The CA's key identifier (hex): the authorityKeyIdentifier of every leaf. */
  readonly keyIdentifier: string;
  /** The CA private key as a non-extractable WebCrypto key that may only sign. */
  readonly signingKey: webcrypto.CryptoKey;
  /** How leaves are signed, following the CA key type (and curve). */
  readonly signingAlgorithm: SigningAlgorithm;
}

/** Where a CA is stored: its certificate and its private key, both PEM. */
export interface CertificateAuthorityFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Reads and checks a CA. Every failure is a `ProxyError` whose one-line message names the file:
 * `CA_READ` (unreadable), `CA_INVALID` (not a PEM certificate or key, not a CA, no keyCertSign,
 * not yet valid, unsupported or encrypted key), `CA_EXPIRED`, `CA_KEY_MISMATCH`.
 */
export async function loadCertificateAuthority(paths: CertificateAuthorityFiles): Promise<CertificateAuthority> {
  const [certPem, keyPem] = await Promise.all([
    readCaFile(paths.certFile, 'CA certificate'),
    readCaFile(paths.keyFile, 'CA key'),
  ]);
  return certificateAuthorityFromPem({ certPem, keyPem }, paths);
}

/**
 * Checks a CA given as PEM text, with the same checks and errors as `loadCertificateAuthority`;
 * `names` label the certificate and the key in error messages. A certificate PEM holding several
 * certificates uses the first.
 */
export async function certificateAuthorityFromPem(
  pem: GeneratedCa,
  names: CertificateAuthorityFiles = { certFile: '(in memory)', keyFile: '(in memory)' },
): Promise<CertificateAuthority> {
  const certProblem = (code: ErrorCode, problem: string, cause?: unknown): ProxyError =>
    new ProxyError(code, `CA certificate ${names.certFile}: ${problem}`, { cause });
  const keyProblem = (problem: string, cause?: unknown): ProxyError =>
    new ProxyError(ErrorCodes.CA_INVALID, `CA key ${names.keyFile}: ${problem}`, { cause });

  const certificatePem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem.certPem)?.[0];
  if (certificatePem === undefined) throw certProblem(ErrorCodes.CA_INVALID, 'not a PEM certificate (no BEGIN CERTIFICATE block)');
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(certificatePem);
  } catch (error) {
    throw certProblem(ErrorCodes.CA_INVALID, `not a valid X.509 certificate (${describe(error)})`, error);
  }

  if (certificate.getExtension(x509.BasicConstraintsExtension)?.ca !== true) {
    throw certProblem(ErrorCodes.CA_INVALID, 'not a CA certificate (basicConstraints CA:TRUE is missing)');
  }
  const keyUsage = certificate.getExtension(x509.KeyUsagesExtension);
  if (keyUsage === null) throw certProblem(ErrorCodes.CA_INVALID, 'has no keyUsage extension (a CA needs keyCertSign)');
  if ((keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw certProblem(ErrorCodes.CA_INVALID, 'keyUsage lacks keyCertSign, so it may not sign certificates');
  }
  const now = Date.now();
  if (certificate.notAfter.getTime() <= now) {
    throw certProblem(ErrorCodes.CA_EXPIRED, `expired on ${certificate.notAfter.toISOString()}`);
  }
  if (certificate.notBefore.getTime() > now) {
    throw certProblem(ErrorCodes.CA_INVALID, `not valid before ${certificate.notBefore.toISOString()}`);
  }

  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem.keyPem);
  } catch (error) {
    const encrypted = (error as { code?: unknown }).code === 'ERR_MISSING_PASSPHRASE';
    throw keyProblem(encrypted ? 'is encrypted; an unencrypted key is required' : 'not a PEM private key (PKCS#1, PKCS#8 or SEC1)', error);
  }
  const signingKey = signingKeyFrom(privateKey);
  if ('unsupported' in signingKey) throw keyProblem(`unsupported ${signingKey.unsupported} (supported: ${SUPPORTED_KEY_TYPES})`);

  const certificatePublicKey = createPublicKey({ key: Buffer.from(certificate.publicKey.rawData), format: 'der', type: 'spki' });
  if (!createPublicKey(privateKey).equals(certificatePublicKey)) {
    throw new ProxyError(ErrorCodes.CA_KEY_MISMATCH, `CA key ${names.keyFile} does not match CA certificate ${names.certFile}`);
  }

  const subjectKeyIdentifier = certificate.getExtension(x509.SubjectKeyIdentifierExtension)
    ?? (await x509.SubjectKeyIdentifierExtension.create(certificate.publicKey, false, webcrypto));
  return {
    certificatePem: `${certificatePem}\n`,
    commonName: certificate.subjectName.getField('CN')[0] ?? certificate.subject,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    subjectNameDer: certificate.subjectName.toArrayBuffer(),
    keyIdentifier: subjectKeyIdentifier.keyId,
    signingKey: signingKey.key,
    signingAlgorithm: signingKey.algorithm,
  };
}

async function readCaFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new ProxyError(ErrorCodes.CA_READ, `${what} ${file}: cannot read it (${describe(error)})`, { cause: error });
  }
}

/** A one-line description of a thrown value: its errno code when it has one, else its message. */
function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? 'unknown error';
}
