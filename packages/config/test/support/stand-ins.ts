import { defineTransform, durationSchema, envSource, portsSchema, rulesSchema, secretSourceRef } from '@proxy/core';
import type { JsonSchema, SecretSourceDefinition, TransformDefinition } from '@proxy/core';
import type { ConfigRegistry } from '../../src/index.js';

/** A transform definition that only carries a schema: the config loader never calls `create`. */
export function standIn(name: string, schema: JsonSchema): TransformDefinition {
  return defineTransform({
    name,
    schema,
    create() {
      throw new Error(`stand-in transform "${name}" is for config tests only`);
    },
  });
}

/** A secret backend that only carries its fields' schema. */
function standInSource(type: string, properties: Record<string, JsonSchema>, required: string[]): SecretSourceDefinition {
  return {
    type,
    properties,
    required,
    label: (config) => `${type}:${String(config[required[0] ?? 'type'])}`,
    create() {
      throw new Error(`stand-in secret source "${type}" is for config tests only`);
    },
  };
}

/** `env` plus stand-ins for the AWS backends iron-proxy's full example uses. */
export const secretSources: readonly SecretSourceDefinition[] = [
  envSource as SecretSourceDefinition,
  standInSource('aws_sm', { secret_id: { type: 'string' }, region: { type: 'string' } }, ['secret_id']),
  standInSource('aws_ssm', { name: { type: 'string' }, region: { type: 'string' }, with_decryption: { type: 'boolean' } }, ['name']),
];

export function registryOf(definitions: readonly TransformDefinition[]): ConfigRegistry {
  return { transforms: new Map(definitions.map((d) => [d.name, d])), secretSources };
}

const permissive: JsonSchema = { type: 'object' };

/**
 * Stand-ins named like iron-proxy's transforms: permissive, except that each secret's
 * `source` is checked against the registered secret backends.
 */
export const ironProxyStandIns: ConfigRegistry = registryOf([
  standIn('allowlist', permissive),
  standIn('secrets', {
    type: 'object',
    properties: { secrets: { type: 'array', items: { type: 'object', required: ['source'], properties: { source: secretSourceRef } } } },
  }),
  standIn('annotate', permissive),
  standIn('grpc', permissive),
  standIn('judge', permissive),
  standIn('header_allowlist', permissive),
]);

/** Strict stand-ins shaped like the real allowlist and secrets transforms, for error tests. */
export const strictStandIns: ConfigRegistry = registryOf([
  standIn('allowlist', {
    type: 'object',
    additionalProperties: false,
    properties: {
      domains: { type: 'array', items: { type: 'string', format: 'host-port-glob' }, default: [] },
      cidrs: { type: 'array', items: { type: 'string', format: 'cidr' }, default: [] },
      rules: { ...rulesSchema, default: [] },
      default_ports: { ...portsSchema, default: [80, 443] },
      warn: { type: 'boolean', default: false },
    },
  }),
  standIn('secrets', {
    type: 'object',
    additionalProperties: false,
    properties: {
      secrets: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['source'],
          properties: {
            source: secretSourceRef,
            inject: {
              type: 'object',
              additionalProperties: false,
              required: ['header'],
              properties: {
                header: { type: 'string', minLength: 1 },
                formatter: { type: 'string', proxyTemplate: { fields: ['Value'] }, default: '{{ .Value }}' },
              },
            },
            rules: rulesSchema,
          },
        },
      },
    },
  }),
  standIn('slow_policy', {
    type: 'object',
    additionalProperties: false,
    properties: { timeout: { ...durationSchema, default: '8s' } },
  }),
]);
