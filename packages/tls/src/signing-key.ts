/**
 * The CA private key as a WebCrypto signing key, and the signature algorithm that goes with it:
 * RSA -> RSASSA-PKCS1-v1_5 with SHA-256, EC -> ECDSA with the hash sized to the curve, Ed25519.
 */
import type { KeyObject, webcrypto } from 'node:crypto';

/** The signature algorithms a CA key can sign leaves with. */
export type SigningAlgorithm =
  | { readonly name: 'RSASSA-PKCS1-v1_5'; readonly hash: 'SHA-256' }
  | { readonly name: 'ECDSA'; readonly hash: 'SHA-256' | 'SHA-384' | 'SHA-512' }
  | { readonly name: 'Ed25519' };

/** A private key ready to sign with WebCrypto. */
export interface SigningKey {
  readonly key: webcrypto.CryptoKey;
  readonly algorithm: SigningAlgorithm;
}

/** WebCrypto's name of each supported EC curve (Node reports the OpenSSL name) and its hash. */
const EC_CURVES: Readonly<Record<string, { readonly namedCurve: string; readonly hash: 'SHA-256' | 'SHA-384' | 'SHA-512' }>> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
  secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
};

/** The key types `signingKeyFrom` accepts, as listed in error messages. */
export const SUPPORTED_KEY_TYPES = 'RSA, EC P-256/P-384/P-521, Ed25519';

/**
 * Converts a private `KeyObject` into a non-extractable WebCrypto signing key. Returns a short
 * description of the key instead when its type or curve is not supported.
 */
export function signingKeyFrom(privateKey: KeyObject): SigningKey | { readonly unsupported: string } {
  switch (privateKey.asymmetricKeyType) {
    case 'rsa': {
      const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
      return { key: privateKey.toCryptoKey(algorithm, false, ['sign']), algorithm };
    }
    case 'ec': {
      const curveName = privateKey.asymmetricKeyDetails?.namedCurve ?? 'unknown';
      const curve = EC_CURVES[curveName];
      if (curve === undefined) return { unsupported: `EC key on curve ${curveName}` };
      return {
        key: privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: curve.namedCurve }, false, ['sign']),
        algorithm: { name: 'ECDSA', hash: curve.hash },
      };
    }
    case 'ed25519': {
      const algorithm = { name: 'Ed25519' } as const;
      return { key: privateKey.toCryptoKey(algorithm, false, ['sign']), algorithm };
    }
    default:
      return { unsupported: `${privateKey.asymmetricKeyType ?? 'unknown'} key` };
  }
}
