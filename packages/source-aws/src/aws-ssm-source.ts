import type { SecretSourceConfig, SecretSourceDefinition } from '@proxy/core';
import { awsClientConfig, awsFailure, lazyClient } from './aws-client-config.js';

/** The `source` block of an `aws_ssm` secret. */
export interface AwsSsmSourceConfig extends SecretSourceConfig {
  readonly type: 'aws_ssm';
  /** The parameter's name or ARN. */
  readonly name: string;
  /** The parameter's region; default: `AWS_REGION` or the AWS profile's. */
  readonly region?: string;
  /** Decrypt a `SecureString` (default `true`). */
  readonly with_decryption?: boolean;
}

/**
 * `aws_ssm`: the value of an SSM Parameter Store parameter (`GetParameter`, decrypted unless
 * `with_decryption: false`). Client settings come from the environment (see
 * {@link awsClientConfig}); the SDK is loaded on the first fetch.
 */
export const awsSsmSource: SecretSourceDefinition<AwsSsmSourceConfig> = {
  type: 'aws_ssm',
  properties: {
    name: { type: 'string', minLength: 1 },
    region: { type: 'string', minLength: 1 },
    with_decryption: { type: 'boolean' },
  },
  required: ['name'],
  label: (config) => config.name,
  create(config, context) {
    const settings = awsClientConfig('SSM', config.region, context);
    const client = lazyClient(async () => new (await import('@aws-sdk/client-ssm')).SSMClient(settings));
    return {
      async fetch(signal) {
        const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
        let out;
        try {
          out = await (await client.get()).send(new GetParameterCommand({ Name: config.name, WithDecryption: config.with_decryption ?? true }), {
            abortSignal: signal,
          });
        } catch (err) {
          throw awsFailure(err);
        }
        const value = out.Parameter?.Value;
        if (value === undefined || value === '') throw new Error('the parameter has no value');
        return value;
      },
      close: client.close,
    };
  },
};
