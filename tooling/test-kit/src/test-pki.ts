import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A throwaway CA and a server certificate it signed, as PEM text and as files. */
export interface TestPki {
  /** The CA certificate (PEM): what a client trusts to accept {@link TestPki.cert}. */
  readonly caCert: string;
  /** The server certificate (PEM), signed by the CA. */
  readonly cert: string;
  /** The server certificate's private key (PEM, PKCS#8, ECDSA P-256). */
  readonly key: string;
  /** Directory holding the files below (and the CA key, `ca.key`). */
  readonly dir: string;
  /** `<dir>/ca.crt`, for CLI clients (`curl --cacert`, `SSL_CERT_FILE`) and config files. */
  readonly caFile: string;
  /** `<dir>/server.crt`. */
  readonly certFile: string;
  /** `<dir>/server.key`. */
  readonly keyFile: string;
  /**
   * A client certificate (clientAuth) signed by the same CA, for mutual TLS, when
   * {@link TestPkiOptions.clientName} was given: PEM texts and `<dir>/client.crt`, `<dir>/client.key`.
   */
  readonly client?: { readonly cert: string; readonly key: string; readonly certFile: string; readonly keyFile: string };
  /** Deletes {@link TestPki.dir}. */
  remove(): Promise<void>;
}

/** Options for {@link createTestPki}. */
export interface TestPkiOptions {
  /** DNS names and IP literals the server certificate covers (its subjectAltName), in order; at least one. */
  readonly names: readonly string[];
  /** Common name of the CA; default `test-kit CA`. */
  readonly caName?: string;
  /** Validity of the certificates in days; default 2. */
  readonly days?: number;
  /** When set, also issue a client certificate with this common name (see {@link TestPki.client}). */
  readonly clientName?: string;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/**
 * Creates a CA (basicConstraints CA:TRUE, keyUsage keyCertSign) and a server certificate it
 * signed for `names` (DNS SANs, IP SANs for IP literals; serverAuth EKU, CA:FALSE), and a
 * client certificate (clientAuth EKU) when `clientName` is given, with the `openssl` CLI, in a
 * fresh temporary directory. Call `remove()` when done.
 */
export async function createTestPki(options: TestPkiOptions): Promise<TestPki> {
  const [first] = options.names;
  if (first === undefined) throw new Error('createTestPki: give at least one name');
  const days = String(options.days ?? 2);
  const dir = await mkdtemp(join(tmpdir(), 'test-pki-'));
  const path = (name: string): string => join(dir, name);
  try {
    await run('openssl', [
      'req', '-x509', ...EC_KEY, '-keyout', path('ca.key'), '-out', path('ca.crt'), '-days', days,
      '-subj', `/CN=${options.caName ?? 'test-kit CA'}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await run('openssl', ['req', ...EC_KEY, '-keyout', path('server.key'), '-out', path('server.csr'), '-subj', `/CN=${first}`]);
    const san = options.names.map((name) => (isIP(name) === 0 ? `DNS:${name}` : `IP:${name}`)).join(',');
    await writeFile(
      path('server.ext'),
      `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
    );
    await run('openssl', [
      'x509', '-req', '-in', path('server.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'), '-CAcreateserial',
      '-out', path('server.crt'), '-days', days, '-extfile', path('server.ext'),
    ]);
    const [caCert, cert, key] = await Promise.all(['ca.crt', 'server.crt', 'server.key'].map((name) => readFile(path(name), 'utf8')));
    let client: TestPki['client'];
    if (options.clientName !== undefined) {
      await run('openssl', ['req', ...EC_KEY, '-keyout', path('client.key'), '-out', path('client.csr'), '-subj', `/CN=${options.clientName}`]);
      await writeFile(path('client.ext'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
      await run('openssl', [
        'x509', '-req', '-in', path('client.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'), '-CAcreateserial',
        '-out', path('client.crt'), '-days', days, '-extfile', path('client.ext'),
      ]);
      const [clientCert, clientKey] = await Promise.all(['client.crt', 'client.key'].map((name) => readFile(path(name), 'utf8')));
      client = { cert: clientCert!, key: clientKey!, certFile: path('client.crt'), keyFile: path('client.key') };
    }
    return {
      ...(client === undefined ? {} : { client }),
      caCert: caCert!,
      cert: cert!,
      key: key!,
      dir,
      caFile: path('ca.crt'),
      certFile: path('server.crt'),
      keyFile: path('server.key'),
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
