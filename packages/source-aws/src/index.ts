/**
 * `@proxy/source-aws`: the `aws_sm` (Secrets Manager) and `aws_ssm` (SSM Parameter Store)
 * secret sources.
 */
import type { SecretSourceDefinition } from '@proxy/core';
import { awsSmSource } from './aws-sm-source.js';
import { awsSsmSource } from './aws-ssm-source.js';

export { awsSmSource } from './aws-sm-source.js';
export type { AwsSmSourceConfig } from './aws-sm-source.js';
export { awsSsmSource } from './aws-ssm-source.js';
export type { AwsSsmSourceConfig } from './aws-ssm-source.js';

/** Both sources, for registering with the resolver. */
export const awsSources: readonly SecretSourceDefinition[] = [awsSmSource as SecretSourceDefinition, awsSsmSource as SecretSourceDefinition];
