import { createSecureContext, type SecureContext } from 'node:tls';
import { TestCertificateAuthority as TestCa } from '@proxy/test-kit';
import type { LeafCertificateSource } from '../src/index.js';

/** A PEM certificate and its key. */
export interface CertifiedKey {
  readonly cert: string;
  readonly key: string;
}

/** A throwaway CA and a server certificate it signed (PEM). */
export interface TestPki extends CertifiedKey {
  readonly caCert: string;
}

/** A throwaway certificate authority (made in process, valid for two days): see `@proxy/test-kit`. */
export { TestCa };

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

/** Creates a CA and a leaf certificate for `localhost`, `upstream.test` and `127.0.0.1`, valid for two days. */
export async function createTestPki(): Promise<TestPki> {
  const ca = await TestCa.create('engine test CA');
  const leaf = await ca.issue(['localhost', 'upstream.test', '127.0.0.1']);
  return { caCert: ca.cert, ...leaf };
}
