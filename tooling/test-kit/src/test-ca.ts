// The X.509 library needs the Reflect metadata polyfill evaluated before it loads.
import 'reflect-metadata';
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** A PEM certificate and its private key (PKCS#8 PEM). */
export interface IssuedCertificate {
  readonly cert: string;
  readonly key: string;
}

/** What a certificate from {@link TestCertificateAuthority.issue} is for (its extended key usage). */
export type CertificateUsage = 'server' | 'client';

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start a minute in the past, so a peer whose clock is a little behind accepts them. */
const BACKDATE_MS = 60 * 1000;

/**
 * A throwaway certificate authority (ECDSA P-256), made in-process with `@peculiar/x509` so
 * that tests need no `openssl` binary: basicConstraints CA:TRUE and keyUsage keyCertSign and
 * cRLSign, both critical, valid for `days` (default 2).
 */
export class TestCertificateAuthority {
  /** The CA certificate (PEM). */
  readonly cert: string;
  /** The CA's private key (PKCS#8 PEM), for tests that hand a CA to the proxy. */
  readonly key: string;
  readonly #certificate: x509.X509Certificate;
  readonly #keys: CryptoKeyPair;
  readonly #days: number;

  private constructor(certificate: x509.X509Certificate, keys: CryptoKeyPair, days: number) {
    this.#certificate = certificate;
    this.#keys = keys;
    this.#days = days;
    this.cert = pem(certificate);
    this.key = privateKeyPem(keys);
  }

  /** Creates a CA whose subject is `CN=<commonName>`. */
  static async create(commonName: string, days = 2): Promise<TestCertificateAuthority> {
    const keys = await generateKeys();
    const now = Date.now();
    const certificate = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serialNumber(),
        name: [{ CN: [commonName] }],
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(now + days * DAY_MS),
        keys,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
        ],
      },
      webcrypto,
    );
    return new TestCertificateAuthority(certificate, keys, days);
  }

  /**
   * Issues a certificate with a fresh key: for a server, `names` (DNS names, and IP literals as
   * IP SANs) are its subjectAltName and the first is its common name; for a client, `names[0]`
   * is its common name and it has no SAN. basicConstraints CA:FALSE and keyUsage
   * digitalSignature, both critical; extendedKeyUsage serverAuth or clientAuth.
   */
  async issue(names: readonly string[], usage: CertificateUsage = 'server'): Promise<IssuedCertificate> {
    const [first] = names;
    if (first === undefined) throw new Error('TestCertificateAuthority.issue: give at least one name');
    const keys = await generateKeys();
    const now = Date.now();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(this.#certificate, false, webcrypto),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
    ];
    if (usage === 'server') {
      extensions.push(new x509.SubjectAlternativeNameExtension(names.map((name): x509.JsonGeneralName => ({ type: isIP(name) === 0 ? 'dns' : 'ip', value: name })), false));
    }
    const certificate = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(),
        subject: [{ CN: [first] }],
        issuer: this.#certificate.subjectName,
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(now + this.#days * DAY_MS),
        publicKey: keys.publicKey,
        signingKey: this.#keys.privateKey,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions,
      },
      webcrypto,
    );
    return { cert: pem(certificate), key: privateKeyPem(keys) };
  }
}

function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

/** A positive 128-bit serial number (RFC 5280 allows up to 20 octets). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function pem(certificate: x509.X509Certificate): string {
  return `${certificate.toString('pem')}\n`;
}

function privateKeyPem(keys: CryptoKeyPair): string {
  return KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
}
