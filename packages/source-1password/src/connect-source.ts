import type { SecretSourceConfig, SecretSourceDefinition } from '@proxy/core';
import { readConnectField } from './connect-client.js';
import { parseSecretReference, SECRET_REFERENCE_PATTERN } from './secret-reference.js';

/** The `source` block of a `1password_connect` secret. */
export interface OnePasswordConnectSourceConfig extends SecretSourceConfig {
  readonly type: '1password_connect';
  /** `op://vault/item/[section/]field`; each part by name or id. */
  readonly secret_ref: string;
  /** Environment variable holding the Connect server's URL (default `OP_CONNECT_HOST`). */
  readonly host_env?: string;
  /** Environment variable holding the Connect access token (default `OP_CONNECT_TOKEN`). */
  readonly token_env?: string;
}

/** Default of `host_env`. */
export const DEFAULT_CONNECT_HOST_ENV = 'OP_CONNECT_HOST';
/** Default of `token_env`. */
export const DEFAULT_CONNECT_TOKEN_ENV = 'OP_CONNECT_TOKEN';

/**
 * `1password_connect`: a field of an item on a 1Password Connect server (see
 * {@link readConnectField}). The server's URL and token are read from the environment the
 * proxy gives its sources, at each fetch; the token is registered with the redactor. Calls go
 * straight to the server (a Connect server usually runs beside the proxy, on an address the
 * upstream deny list refuses for workload traffic).
 */
export const onePasswordConnectSource: SecretSourceDefinition<OnePasswordConnectSourceConfig> = {
  type: '1password_connect',
  properties: {
    secret_ref: { type: 'string', pattern: SECRET_REFERENCE_PATTERN },
    host_env: { type: 'string', minLength: 1 },
    token_env: { type: 'string', minLength: 1 },
  },
  required: ['secret_ref'],
  label: (config) => config.secret_ref,
  create(config, context) {
    const ref = parseSecretReference(config.secret_ref);
    const hostEnv = config.host_env ?? DEFAULT_CONNECT_HOST_ENV;
    const tokenEnv = config.token_env ?? DEFAULT_CONNECT_TOKEN_ENV;
    return {
      fetch(signal) {
        const host = context.env[hostEnv];
        const token = context.env[tokenEnv];
        if (host === undefined || host === '') return Promise.reject(new Error(`${hostEnv} is not set`));
        if (token === undefined || token === '') return Promise.reject(new Error(`${tokenEnv} is not set`));
        context.redactor.add(token, tokenEnv);
        let url: URL;
        try {
          url = new URL(host);
        } catch {
          return Promise.reject(new Error(`${hostEnv} is not a URL (expected e.g. http://localhost:8080)`));
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new Error(`${hostEnv} must be an http or https URL`));
        return readConnectField({ url: url.href.replace(/\/+$/, ''), token }, ref, signal);
      },
    };
  },
};
