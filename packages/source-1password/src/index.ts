/**
 * `@proxy/source-1password`: the `1password_connect` (a 1Password Connect server) and
 * `1password` (a service account, through the 1Password SDK) secret sources.
 */
import type { SecretSourceDefinition } from '@proxy/core';
import { onePasswordConnectSource } from './connect-source.js';
import { onePasswordSource } from './sdk-source.js';

export { onePasswordConnectSource, DEFAULT_CONNECT_HOST_ENV, DEFAULT_CONNECT_TOKEN_ENV } from './connect-source.js';
export type { OnePasswordConnectSourceConfig } from './connect-source.js';
export { onePasswordSource, createOnePasswordSource, DEFAULT_SERVICE_ACCOUNT_TOKEN_ENV } from './sdk-source.js';
export type { OnePasswordSourceConfig, OnePasswordSdkClient, OnePasswordClientFactory } from './sdk-source.js';
export { parseSecretReference } from './secret-reference.js';
export type { SecretReference } from './secret-reference.js';

/** Both sources, for registering with the resolver. */
export const onePasswordSources: readonly SecretSourceDefinition[] = [
  onePasswordConnectSource as SecretSourceDefinition,
  onePasswordSource as SecretSourceDefinition,
];
