import type { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { SecretSourceContext } from '@proxy/core';

/** The service part of `AWS_ENDPOINT_URL_<SERVICE>`. */
export type AwsServiceEnvName = 'SECRETS_MANAGER' | 'SSM';

/** The SDK's default credential provider chain. */
type ProviderChain = ReturnType<typeof fromNodeProviderChain>;

/** Static keys, or the SDK's default provider chain. */
export type AwsCredentials = { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | ProviderChain;

/** What an AWS SDK client of a source is built with. */
export interface AwsClientConfig {
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials: AwsCredentials;
  readonly maxAttempts: number;
  readonly requestHandler: { readonly connectionTimeout: number; readonly requestTimeout: number };
}

/** Time to open a connection to the service, and to wait for its answer once connected. */
const CONNECTION_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The client settings every AWS program gets from its environment, read from the environment
 * the proxy gives its secret sources (`context.env`, the process's own in the app):
 *
 * - region: the source's `region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the
 *   SDK's own lookup (the shared config profile);
 * - endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL` (unless
 *   `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else the service's public endpoint;
 * - credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`) when
 *   set, else the SDK's default provider chain (shared config and SSO, web identity, ECS and
 *   EC2 roles). Keys read here are registered with the redactor.
 *
 * Calls use the SDK's own HTTP handler, not the proxy's upstream guard: the AWS endpoints and
 * the credential endpoints (instance metadata, the ECS agent, a VPC endpoint on a private
 * address) are control-plane addresses the operator chose, which the deny list meant for
 * workload traffic would refuse.
 */
export function awsClientConfig(service: AwsServiceEnvName, region: string | undefined, context: SecretSourceContext): AwsClientConfig {
  const env = context.env;
  const regionValue = nonEmpty(region) ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION);
  const endpoint = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true' ? undefined : (nonEmpty(env[`AWS_ENDPOINT_URL_${service}`]) ?? nonEmpty(env.AWS_ENDPOINT_URL));
  return {
    ...(regionValue === undefined ? {} : { region: regionValue }),
    ...(endpoint === undefined ? {} : { endpoint }),
    credentials: credentialsFrom(context),
    // The resolver retries on its own schedule (failure_ttl, ttl/2); one SDK retry covers a blip.
    maxAttempts: 2,
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
  };
}

function credentialsFrom(context: SecretSourceContext): AwsCredentials {
  const accessKeyId = nonEmpty(context.env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(context.env.AWS_SECRET_ACCESS_KEY);
  if (accessKeyId === undefined || secretAccessKey === undefined) return defaultProviderChain();
  const sessionToken = nonEmpty(context.env.AWS_SESSION_TOKEN);
  context.redactor.add(secretAccessKey, 'AWS_SECRET_ACCESS_KEY');
  if (sessionToken !== undefined) context.redactor.add(sessionToken, 'AWS_SESSION_TOKEN');
  return { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) };
}

/**
 * The SDK's default provider chain, its module loaded on the first credentials lookup (with
 * the first fetch), so that a proxy whose config names no AWS source does not carry it.
 */
function defaultProviderChain(): ProviderChain {
  let chain: Promise<ProviderChain> | undefined;
  return async (...args) => {
    chain ??= import('@aws-sdk/credential-providers').then((m) => m.fromNodeProviderChain());
    return (await chain)(...args);
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Longest service message passed on in an error. */
const MAX_MESSAGE = 300;

/**
 * What an AWS call failure says, for the resolver's error: `<ErrorCode>: <service message>`
 * for a service answer, the transport error's message otherwise. Neither carries a value.
 */
export function awsFailure(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const fault = (err as { $fault?: string }).$fault;
  const message = err.message.length > MAX_MESSAGE ? `${err.message.slice(0, MAX_MESSAGE)}...` : err.message;
  const failure = new Error(fault === undefined ? message : `${err.name}: ${message}`, { cause: err });
  failure.name = err.name;
  return failure;
}

/** An SDK client made on first use (the SDK module is loaded then) and destroyed on close. */
export interface LazyClient<C> {
  get(): Promise<C>;
  close(): void;
}

/** See {@link LazyClient}. */
export function lazyClient<C extends { destroy(): void }>(make: () => Promise<C>): LazyClient<C> {
  let client: Promise<C> | undefined;
  return {
    get: () => (client ??= make()),
    close() {
      void client?.then((c) => c.destroy());
      client = undefined;
    },
  };
}
