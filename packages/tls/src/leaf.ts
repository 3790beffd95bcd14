/**
 * Minting leaf certificates: a fresh ECDSA P-256 key each, the server name as CN and SAN,
 * usable only to authenticate a TLS server, signed by the CA and never valid beyond it.
 */
import { KeyObject, createHash, webcrypto } from 'node:crypto';
import { ErrorCodes, ProxyError } from '@proxy/core';
import type { CertificateAuthority } from './authority.js';
import { randomSerialNumber, subjectWithCommonName } from './certificate-fields.js';
import type { ServerName } from './server-name.js';
import { x509 } from './x509-library.js';

/** A leaf certificate (PEM, without the CA) and its private key (PKCS#8 PEM). */
export interface MintedLeaf {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A leaf is valid from an hour before it is minted, for clients whose clock lags. */
const BACKDATE_MS = 60 * 60 * 1000;
/** The longest common name X.509 allows (ub-common-name); longer names go in the SAN only. */
const MAX_COMMON_NAME_LENGTH = 64;
const LEAF_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** Mints leaves signed by one CA; what every leaf shares is encoded once, up front. */
export class LeafMinter {
  readonly #ca: CertificateAuthority;
  readonly #issuer: x509.Name;
  /** CA:FALSE and digitalSignature (both critical), serverAuth, the CA's key identifier. */
  readonly #commonExtensions: readonly x509.Extension[];

  constructor(ca: CertificateAuthority) {
    this.#ca = ca;
    this.#issuer = new x509.Name(ca.subjectNameDer);
    this.#commonExtensions = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.AuthorityKeyIdentifierExtension(ca.keyIdentifier, false),
    ];
  }

  /**
   * Mints a leaf for `serverName` valid until `now + lifetimeMs`, or the CA's own expiry if that
   * comes first. Throws `CA_EXPIRED` once the CA has expired.
   */
  async mint(serverName: ServerName, validity: { readonly now: number; readonly lifetimeMs: number }): Promise<MintedLeaf> {
    const ca = this.#ca;
    const notAfter = new Date(Math.min(validity.now + validity.lifetimeMs, ca.notAfter.getTime()));
    if (notAfter.getTime() <= validity.now) {
      throw new ProxyError(ErrorCodes.CA_EXPIRED, `CA "${ca.commonName}" expired on ${ca.notAfter.toISOString()}; no certificate can be minted for ${serverName.name}`);
    }
    const notBefore = new Date(Math.max(validity.now - BACKDATE_MS, ca.notBefore.getTime()));

    const keys = await webcrypto.subtle.generateKey(LEAF_KEY_ALGORITHM, true, ['sign', 'verify']);
    const [spki, point] = await Promise.all([
      webcrypto.subtle.exportKey('spki', keys.publicKey),
      webcrypto.subtle.exportKey('raw', keys.publicKey),
    ]);
    const hasCommonName = serverName.name.length <= MAX_COMMON_NAME_LENGTH;
    const certificate = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerialNumber(),
        subject: hasCommonName ? subjectWithCommonName(serverName.name) : new x509.Name([]),
        issuer: this.#issuer,
        notBefore,
        notAfter,
        publicKey: spki,
        signingKey: ca.signingKey,
        signingAlgorithm: ca.signingAlgorithm,
        extensions: [
          ...this.#commonExtensions,
          // RFC 5280 4.2.1.6: with an empty subject the SAN is the identity and must be critical.
          new x509.SubjectAlternativeNameExtension([{ type: serverName.kind, value: serverName.name }], !hasCommonName),
          // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the EC point).
          new x509.SubjectKeyIdentifierExtension(createHash('sha1').update(new Uint8Array(point)).digest('hex'), false),
        ],
      },
      webcrypto,
    );
    return {
      certPem: `${certificate.toString('pem')}\n`,
      keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(),
      notBefore,
      notAfter,
    };
  }
}
