import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';
import type { LeafCertificateSource } from '../src/index.js';

const run = promisify(execFile);
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A PEM certificate and its key. */
export interface CertifiedKey {
  readonly cert: string;
  readonly key: string;
}

/** A throwaway CA and a server certificate it signed (PEM). */
export interface TestPki extends CertifiedKey {
  readonly caCert: string;
}

/** A throwaway certificate authority made with the openssl CLI, valid for two days. */
export class TestCa {
  readonly cert: string;
  readonly #key: string;

  private constructor(cert: string, key: string) {
    this.cert = cert;
    this.#key = key;
  }

  /** Creates a CA named `commonName`. */
  static async create(commonName: string): Promise<TestCa> {
    return withTempDir(async (path) => {
      await run('openssl', [
        'req', '-x509', ...EC_KEY, '-keyout', path('ca.key'), '-out', path('ca.crt'), '-days', '2', '-subj', `/CN=${commonName}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
      ]);
      const [cert, key] = await Promise.all([readFile(path('ca.crt'), 'utf8'), readFile(path('ca.key'), 'utf8')]);
      return new TestCa(cert, key);
    });
  }

  /** Issues a server certificate for `names` (DNS names and IP literals, as SANs); the first is its CN. */
  async issue(names: readonly string[]): Promise<CertifiedKey> {
    return withTempDir(async (path) => {
      const sans = names.map((n) => (isIP(n) === 0 ? `DNS:${n}` : `IP:${n}`)).join(',');
      await writeFile(path('ca.crt'), this.cert);
      await writeFile(path('ca.key'), this.#key, { mode: 0o600 });
      await writeFile(path('leaf.ext'), `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      await run('openssl', ['req', ...EC_KEY, '-keyout', path('leaf.key'), '-out', path('leaf.csr'), '-subj', `/CN=${names[0] ?? 'leaf'}`]);
      await run('openssl', [
        'x509', '-req', '-in', path('leaf.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'), '-CAcreateserial',
        '-out', path('leaf.crt'), '-days', '2', '-extfile', path('leaf.ext'),
      ]);
      const [cert, key] = await Promise.all([readFile(path('leaf.crt'), 'utf8'), readFile(path('leaf.key'), 'utf8')]);
      return { cert, key };
    });
  }
}

/**
 * A `LeafCertificateSource` for tests: one leaf per name, minted on demand by a {@link TestCa}
 * and cached; the chain includes the CA. Records every name asked for.
 */
export class TestLeafSource implements LeafCertificateSource {
  readonly ca: TestCa;
  /** Every name a context was asked for, in order. */
  readonly requested: string[] = [];
  readonly #contexts = new Map<string, Promise<SecureContext>>();

  constructor(ca: TestCa) {
    this.ca = ca;
  }

  secureContextFor(serverName: string): Promise<SecureContext> {
    this.requested.push(serverName);
    let context = this.#contexts.get(serverName);
    if (context === undefined) {
      context = this.ca.issue([serverName]).then(({ cert, key }) => createSecureContext({ cert: `${cert}${this.ca.cert}`, key }));
      this.#contexts.set(serverName, context);
    }
    return context;
  }
}

/**
 * Creates a CA and a leaf certificate for `localhost`, `upstream.test` and `127.0.0.1` with
 * the openssl CLI, valid for two days.
 */
export async function createTestPki(): Promise<TestPki> {
  const ca = await TestCa.create('engine test CA');
  const leaf = await ca.issue(['localhost', 'upstream.test', '127.0.0.1']);
  return { caCert: ca.cert, ...leaf };
}

async function withTempDir<T>(work: (path: (name: string) => string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'engine-pki-'));
  try {
    return await work((name) => join(dir, name));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
