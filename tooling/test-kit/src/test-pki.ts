import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCertificateAuthority } from './test-ca.js';

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

/**
 * Creates a CA (basicConstraints CA:TRUE, keyUsage keyCertSign) and a server certificate it
 * signed for `names` (DNS SANs, IP SANs for IP literals; serverAuth EKU, CA:FALSE), and a
 * client certificate (clientAuth EKU) when `clientName` is given, in process (see
 * {@link TestCertificateAuthority}), and writes them to a fresh temporary directory. Call
 * `remove()` when done.
 */
export async function createTestPki(options: TestPkiOptions): Promise<TestPki> {
  if (options.names.length === 0) throw new Error('createTestPki: give at least one name');
  const ca = await TestCertificateAuthority.create(options.caName ?? 'test-kit CA', options.days ?? 2);
  const server = await ca.issue(options.names, 'server');
  const clientPair = options.clientName === undefined ? undefined : await ca.issue([options.clientName], 'client');
  const dir = await mkdtemp(join(tmpdir(), 'test-pki-'));
  const path = (name: string): string => join(dir, name);
  try {
    await writeFile(path('ca.crt'), ca.cert);
    await writeFile(path('ca.key'), ca.key, { mode: 0o600 });
    await writeFile(path('server.crt'), server.cert);
    await writeFile(path('server.key'), server.key, { mode: 0o600 });
    let client: TestPki['client'];
    if (clientPair !== undefined) {
      await writeFile(path('client.crt'), clientPair.cert);
      await writeFile(path('client.key'), clientPair.key, { mode: 0o600 });
      client = { ...clientPair, certFile: path('client.crt'), keyFile: path('client.key') };
    }
    return {
      ...(client === undefined ? {} : { client }),
      caCert: ca.cert,
      cert: server.cert,
      key: server.key,
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
