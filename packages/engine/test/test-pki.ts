import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A throwaway CA and a server certificate it signed (PEM). */
export interface TestPki {
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * Creates a CA and a leaf certificate for `localhost`, `upstream.test` and `127.0.0.1` with
 * the openssl CLI, valid for two days.
 */
export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'engine-pki-'));
  const path = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  try {
    await run('openssl', [
      'req', '-x509', ...ec, '-keyout', path('ca.key'), '-out', path('ca.crt'), '-days', '2', '-subj', '/CN=engine test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
    ]);
    await run('openssl', ['req', ...ec, '-keyout', path('leaf.key'), '-out', path('leaf.csr'), '-subj', '/CN=localhost']);
    await writeFile(
      path('leaf.ext'),
      'subjectAltName=DNS:localhost,DNS:upstream.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    await run('openssl', [
      'x509', '-req', '-in', path('leaf.csr'), '-CA', path('ca.crt'), '-CAkey', path('ca.key'), '-CAcreateserial',
      '-out', path('leaf.crt'), '-days', '2', '-extfile', path('leaf.ext'),
    ]);
    const [caCert, cert, key] = await Promise.all([readFile(path('ca.crt'), 'utf8'), readFile(path('leaf.crt'), 'utf8'), readFile(path('leaf.key'), 'utf8')]);
    return { caCert, cert, key };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
