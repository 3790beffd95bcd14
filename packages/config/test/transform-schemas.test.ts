import { ConfigError } from '@proxy/core';
import type { ConfigIssue, JsonSchema } from '@proxy/core';
import { describe, expect, it } from 'vitest';
import { parseConfigText, validateConfig } from '../src/index.js';
import { registryOf, standIn } from './support/stand-ins.js';

/** Validates `config` (YAML flow text) as the config of a transform with `schema`; returns the issues. */
function issuesFor(schema: JsonSchema, config: string): [string, string][] {
  const doc = parseConfigText(`transforms:\n  - name: custom\n    config: ${config}\n`, 'proxy.yaml');
  try {
    validateConfig(doc, registryOf([standIn('custom', schema)]));
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i: ConfigIssue) => [i.path, i.message]);
    throw err;
  }
  return [];
}

describe("issues from transforms' own schemas", () => {
  it('merges a union of types into one message', () => {
    const schema = { type: 'object', properties: { value: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } } };
    expect(issuesFor(schema, '{ value: 5 }')).toEqual([['transforms[0].config.value', 'must be a string or a list (got 5)']]);
    expect(issuesFor(schema, '{ value: [a, b] }')).toEqual([]);
  });

  it('keeps only the alternative of a oneOf that fits the data', () => {
    const provider = (type: string, field: string): JsonSchema => ({
      type: 'object',
      additionalProperties: false,
      required: ['type', field],
      properties: { type: { const: type }, [field]: { type: 'string' } },
    });
    const schema = { type: 'object', properties: { provider: { oneOf: [provider('anthropic', 'model'), provider('openai', 'deployment')] } } };
    expect(issuesFor(schema, '{ provider: { type: openai, deploymnt: x } }')).toEqual([
      ['transforms[0].config.provider.deployment', 'required field is missing'],
      ['transforms[0].config.provider.deploymnt', 'unknown field "deploymnt" (allowed: type, deployment)'],
    ]);
  });

  it('names the known values of a discriminator', () => {
    const schema = {
      type: 'object',
      properties: {
        backend: {
          type: 'object',
          discriminator: { propertyName: 'kind' },
          required: ['kind'],
          oneOf: [
            { properties: { kind: { const: 'file' }, path: { type: 'string' } } },
            { properties: { kind: { const: 'http' }, url: { type: 'string' } } },
          ],
        },
      },
    };
    expect(issuesFor(schema, '{ backend: { kind: s3 } }')).toEqual([['transforms[0].config.backend.kind', 'unknown kind "s3" (available: file, http)']]);
  });

  it('resolves local $refs of the transform schema, for paths and allowed fields', () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      definitions: { target: { type: 'object', additionalProperties: false, properties: { host: { type: 'string' }, port: { type: 'integer' } } } },
      properties: { targets: { type: 'array', items: { $ref: '#/definitions/target' } } },
    };
    expect(issuesFor(schema, '{ targets: [{ host: a, prot: 1 }] }')).toEqual([
      ['transforms[0].config.targets[0].prot', 'unknown field "prot" (allowed: host, port)'],
    ]);
  });

  it('reports a transform whose schema does not compile at its name', () => {
    const issues = issuesFor({ type: 'object', properties: { a: { type: 'strin' } } }, '{}');
    expect(issues).toHaveLength(1);
    expect(issues[0]?.[0]).toBe('transforms[0].name');
    expect(issues[0]?.[1]).toMatch(/^transform "custom" has an invalid config schema: /);
  });
});
