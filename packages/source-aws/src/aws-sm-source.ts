import type { SecretSourceConfig, SecretSourceDefinition } from '@proxy/core';
import { awsClientConfig, awsFailure, lazyClient } from './aws-client-config.js';

/** The `source` block of an `aws_sm` secret. */
export interface AwsSmSourceConfig extends SecretSourceConfig {
  readonly type: 'aws_sm';
  /** The secret's name or ARN. */
  readonly secret_id: string;
  /** The secret's region; default: `AWS_REGION` or the AWS profile's. */
  readonly region?: string;
}

/**
 * `aws_sm`: the `AWSCURRENT` value of an AWS Secrets Manager secret (`GetSecretValue`): its
 * `SecretString`, or its `SecretBinary` read as UTF-8. Client settings come from the
 * environment (see {@link awsClientConfig}); the SDK is loaded on the first fetch.
 */
export const awsSmSource: SecretSourceDefinition<AwsSmSourceConfig> = {
  type: 'aws_sm',
  properties: {
    secret_id: { type: 'string', minLength: 1 },
    region: { type: 'string', minLength: 1 },
  },
  required: ['secret_id'],
  label: (config) => config.secret_id,
  create(config, context) {
    const settings = awsClientConfig('SECRETS_MANAGER', config.region, context);
    const client = lazyClient(async () => new (await import('@aws-sdk/client-secrets-manager')).SecretsManagerClient(settings));
    return {
      async fetch(signal) {
        const { GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
        let out;
        try {
          out = await (await client.get()).send(new GetSecretValueCommand({ SecretId: config.secret_id }), { abortSignal: signal });
        } catch (err) {
          throw awsFailure(err);
        }
        if (out.SecretString !== undefined) return out.SecretString;
        if (out.SecretBinary !== undefined) return decodeUtf8(out.SecretBinary);
        throw new Error('the secret has neither SecretString nor SecretBinary');
      },
      close: client.close,
    };
  },
};

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new Error('the SecretBinary is not valid UTF-8');
  }
}
