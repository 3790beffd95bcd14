/**
 * A new self-signed interception CA: CA:TRUE and keyCertSign/cRLSign (both critical), a random
 * serial, its key exported as PKCS#8 PEM.
 */
import { KeyObject, webcrypto } from 'node:crypto';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { randomSerialNumber, subjectWithCommonName } from './certificate-fields.js';
import { x509 } from './x509-library.js';

/** A CA as PEM text: the certificate and its PKCS#8 private key. */
export interface GeneratedCa {
  readonly certPem: string;
  readonly keyPem: string;
}

/** The key types a generated CA can have. */
export type CaKeyAlgorithm = 'ec' | 'rsa' | 'rsa4096' | 'ed25519';

/** What `generateCertificateAuthority` makes. */
export interface GenerateCaOptions {
  /** Subject CN; default "proxy local CA". */
  readonly commonName?: string;
  /** Validity in days from now; default 365. */
  readonly days?: number;
  /** `ec` (P-256, the default), `rsa` (2048 bits), `rsa4096` (4096 bits, iron-proxy's `generate-ca` default) or `ed25519`. */
  readonly algorithm?: CaKeyAlgorithm;
}

/** How each CA key type is generated with WebCrypto, and how its certificate is signed. */
const KEY_ALGORITHMS = {
  ec: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  rsa: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  rsa4096: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 4096, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  ed25519: { name: 'Ed25519' },
} as const;

/** The CA is valid from an hour ago, so clients whose clock lags a little accept it at once. */
const BACKDATE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Generates a self-signed CA certificate and key. */
export async function generateCertificateAuthority(options: GenerateCaOptions = {}): Promise<GeneratedCa> {
  const commonName = options.commonName ?? 'proxy local CA';
  const days = options.days ?? 365;
  const algorithm = KEY_ALGORITHMS[options.algorithm ?? 'ec'];
  if (algorithm === undefined) throw new ProxyError(ErrorCodes.CA_INVALID, `unknown CA key algorithm "${String(options.algorithm)}" (expected ec, rsa, rsa4096 or ed25519)`);
  if (!(days > 0) || !Number.isFinite(days)) throw new ProxyError(ErrorCodes.CA_INVALID, `CA validity must be a positive number of days, got ${days}`);
  if (commonName.length === 0 || commonName.length > 64) {
    throw new ProxyError(ErrorCodes.CA_INVALID, `CA common name must be 1 to 64 characters, got ${commonName.length}`);
  }

  // Every algorithm here is asymmetric, so the result is a key pair.
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const name = subjectWithCommonName(commonName);
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialNumber(),
      subject: name,
      issuer: name,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + days * DAY_MS),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  return {
    certPem: `${certificate.toString('pem')}\n`,
    keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
