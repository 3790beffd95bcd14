import type { Client } from '@1password/sdk';
import type { SecretSourceConfig, SecretSourceDefinition } from '@proxy/core';

/** The `source` block of a `1password` secret. */
export interface OnePasswordSourceConfig extends SecretSourceConfig {
  readonly type: '1password';
  /** A secret reference the 1Password SDK resolves, `op://vault/item/[section/]field`. */
  readonly secret_ref: string;
  /** Environment variable holding the service account token (default `OP_SERVICE_ACCOUNT_TOKEN`). */
  readonly token_env?: string;
}

/** Default of `token_env`. */
export const DEFAULT_SERVICE_ACCOUNT_TOKEN_ENV = 'OP_SERVICE_ACCOUNT_TOKEN';

/** The part of the SDK's `Client` this source uses: `secrets.resolve(reference)`. */
export interface OnePasswordSdkClient {
  readonly secrets: Pick<Client['secrets'], 'resolve'>;
}

/** Makes an authenticated SDK client for a service account token (the SDK's `createClient`). */
export type OnePasswordClientFactory = (token: string) => Promise<OnePasswordSdkClient>;

/** The name and version the SDK reports to 1Password for this integration. */
const INTEGRATION = { integrationName: 'egress-proxy source-1password', integrationVersion: '0.1.0' };

/** The real factory: loads `@1password/sdk` (and its WebAssembly core) on first use. */
const sdkClientFactory: OnePasswordClientFactory = async (token) => {
  const { createClient } = await import('@1password/sdk');
  return createClient({ auth: token, ...INTEGRATION });
};

/**
 * Builds the `1password` source over a client factory: the SDK's own by default; tests give
 * one that returns a client implementing the same `secrets.resolve` interface. One client is
 * made per token and shared by every secret using it; a failed sign-in is retried at the next
 * fetch.
 */
export function createOnePasswordSource(createClient: OnePasswordClientFactory = sdkClientFactory): SecretSourceDefinition<OnePasswordSourceConfig> {
  const clients = new Map<string, Promise<OnePasswordSdkClient>>();
  const clientFor = (token: string): Promise<OnePasswordSdkClient> => {
    let client = clients.get(token);
    if (client === undefined) {
      client = createClient(token);
      clients.set(token, client);
      client.catch(() => clients.delete(token));
    }
    return client;
  };
  return {
    type: '1password',
    properties: {
      secret_ref: { type: 'string', pattern: '^op://' },
      token_env: { type: 'string', minLength: 1 },
    },
    required: ['secret_ref'],
    label: (config) => config.secret_ref,
    create(config, context) {
      const tokenEnv = config.token_env ?? DEFAULT_SERVICE_ACCOUNT_TOKEN_ENV;
      return {
        async fetch() {
          const token = context.env[tokenEnv];
          if (token === undefined || token === '') throw new Error(`${tokenEnv} is not set`);
          context.redactor.add(token, tokenEnv);
          const value = await (await clientFor(token)).secrets.resolve(config.secret_ref);
          if (value === '') throw new Error('the field is empty');
          return value;
        },
      };
    },
  };
}

/**
 * `1password`: a secret reference resolved by the 1Password SDK with a service account token.
 * The SDK takes no abort signal: a slow call is given up on by the resolver's fetch timeout.
 */
export const onePasswordSource: SecretSourceDefinition<OnePasswordSourceConfig> = createOnePasswordSource();
