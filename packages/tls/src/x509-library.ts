/**
 * The X.509 library, loaded behind the Reflect metadata polyfill its dependency injection
 * container needs at load time. Every module of this package imports `x509` from here, never
 * `@peculiar/x509` directly, so the polyfill is always evaluated first.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };
