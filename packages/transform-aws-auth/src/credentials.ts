import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { SecretHandle, TransformEnv } from '@proxy/core';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { AwsAuthConfig } from './config.js';

/** Where the real credentials come from, as the audit record names it. */
export type CredentialKind = 'static' | 'workload_identity';

/** The real credentials the transform signs with. */
export interface CredentialSource {
  readonly kind: CredentialKind;
  /** The current credentials; rejects with a message that names what failed, never a value. */
  get(): Promise<AwsCredentialIdentity>;
  close(): void;
}

/** Longest provider error message kept in an annotation. */
const MAX_ERROR_LENGTH = 200;

/** The credentials of `config`: the static sources, or the AWS SDK's default chain. */
export async function openCredentials(config: AwsAuthConfig, env: TransformEnv): Promise<CredentialSource> {
  if (config.credentials_provider !== undefined) return workloadIdentity(config.credentials_provider.region, env);
  return staticCredentials(config, env);
}

/**
 * Each field from its own secret source (core refreshes them with `ttl` and redacts the
 * values). A field whose source has no value fails the request, naming the field.
 */
async function staticCredentials(config: AwsAuthConfig, env: TransformEnv): Promise<CredentialSource> {
  const fields = (['access_key_id', 'secret_access_key', 'session_token'] as const).filter((field) => config[field] !== undefined);
  const handles: [string, SecretHandle][] = [];
  try {
    for (const field of fields) handles.push([field, await env.secrets.open(config[field]!)]);
  } catch (err) {
    for (const [, handle] of handles) handle.close();
    throw err;
  }
  const value = async (field: string, handle: SecretHandle): Promise<string> => {
    if (handle.pending) await handle.ready();
    try {
      return handle.value();
    } catch (err) {
      throw new Error(`${field}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  };
  return {
    kind: 'static',
    async get() {
      const values = new Map<string, string>();
      for (const [field, handle] of handles) values.set(field, await value(field, handle));
      const sessionToken = values.get('session_token');
      return {
        accessKeyId: values.get('access_key_id')!,
        secretAccessKey: values.get('secret_access_key')!,
        ...(sessionToken === undefined ? {} : { sessionToken }),
      };
    },
    close() {
      for (const [, handle] of handles) handle.close();
    },
  };
}

/**
 * The AWS SDK's default chain (environment, shared credentials and config files, web identity
 * (IRSA), EKS Pod Identity, ECS, IMDSv2), memoized by the SDK and refreshed before expiry.
 * Calls go through the SDK's own HTTP handler, not the upstream guard: the metadata and
 * container credential endpoints are link-local or loopback addresses the guard refuses.
 * Every credential it yields is registered with the redactor.
 */
function workloadIdentity(region: string | undefined, env: TransformEnv): CredentialSource {
  const provider = fromNodeProviderChain(region === undefined ? {} : { clientConfig: { region } });
  let last: AwsCredentialIdentity | undefined;
  return {
    kind: 'workload_identity',
    async get() {
      let credentials: AwsCredentialIdentity;
      try {
        credentials = await provider();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new Error(`AWS default credential chain: ${message.slice(0, MAX_ERROR_LENGTH)}`, { cause: err });
      }
      if (credentials !== last) {
        env.redactor.add(credentials.secretAccessKey, 'aws_auth workload_identity secret_access_key');
        if (credentials.sessionToken !== undefined) env.redactor.add(credentials.sessionToken, 'aws_auth workload_identity session_token');
        last = credentials;
      }
      return credentials;
    },
    close() {},
  };
}
