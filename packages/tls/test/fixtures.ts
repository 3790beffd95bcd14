/**
 * Test fixtures: CA files made with the openssl CLI (an independent implementation), and CA
 * certificates with hand-picked flaws made with the X.509 library.
 */
import { execFile } from 'node:child_process';
import { KeyObject, webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireCommand } from '@proxy/test-kit';
import { x509 } from '../src/x509-library.js';

const run = promisify(execFile);

/** Runs the openssl CLI in `cwd`; returns its stdout. Skips the test where openssl is not installed. */
export async function openssl(cwd: string, args: readonly string[]): Promise<string> {
  requireCommand('openssl');
  const { stdout } = await run('openssl', [...args], { cwd });
  return stdout;
}

/** A fresh temporary directory and a function removing it. */
export async function temporaryDirectory(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'proxy-tls-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The openssl commands writing a private key in each format the loader must accept. */
export const OPENSSL_KEY_FORMATS = {
  'RSA PKCS#1': ['genrsa', '-traditional', '-out', 'KEY', '2048'],
  'RSA PKCS#8': ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'KEY'],
  'EC P-256 SEC1': ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'KEY'],
  'EC P-256 PKCS#8': ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'KEY'],
  'EC P-384 SEC1': ['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'KEY'],
  'EC P-384 PKCS#8': ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', 'KEY'],
  'EC P-521 SEC1': ['ecparam', '-name', 'secp521r1', '-genkey', '-noout', '-out', 'KEY'],
  'Ed25519 PKCS#8': ['genpkey', '-algorithm', 'ed25519', '-out', 'KEY'],
} as const satisfies Record<string, readonly string[]>;

/** The extensions section of an openssl CA certificate; the default is a well-formed CA. */
const GOOD_CA_EXTENSIONS = ['basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash'];

/**
 * Writes `<name>.key` with `keyCommand` (KEY stands for the file) and a self-signed `<name>.crt`
 * for it with the given extension lines. Returns both paths.
 */
export async function opensslCa(
  dir: string,
  name: string,
  keyCommand: readonly string[],
  extensions: readonly string[] = GOOD_CA_EXTENSIONS,
): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const configFile = join(dir, `${name}.cnf`);
  await openssl(dir, keyCommand.map((arg) => (arg === 'KEY' ? keyFile : arg)));
  const config = ['[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no', '[dn]', `CN = ${name} test CA`, '[ext]', ...extensions].join('\n');
  await writeFile(configFile, `${config}\n`);
  await openssl(dir, ['req', '-x509', '-new', '-config', configFile, '-key', keyFile, '-days', '30', '-out', certFile]);
  return { certFile, keyFile };
}

/** A self-signed ECDSA P-256 certificate with the given validity and extensions, and its key (PKCS#8), as PEM. */
export async function selfSignedCertificate(options: {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: readonly x509.Extension[];
}): Promise<{ certPem: string; keyPem: string }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    { name: 'CN=fixture CA', keys, signingAlgorithm: algorithm, notBefore: options.notBefore, notAfter: options.notAfter, extensions: [...options.extensions] },
    webcrypto,
  );
  return {
    certPem: `${certificate.toString('pem')}\n`,
    keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** The extensions of a well-formed CA, for `selfSignedCertificate`. */
export function caExtensions(): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
}
