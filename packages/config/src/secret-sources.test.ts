import { secretSourceRef, type TransformDefinition } from '@proxy/core';
import { describe, expect, it } from 'vitest';
import { findSecretSources } from './secret-sources.js';

const definition = (name: string, schema: Record<string, unknown>): TransformDefinition => ({ name, schema, create: () => ({}) });

const transforms = new Map<string, TransformDefinition>([
  [
    'secrets',
    definition('secrets', {
      type: 'object',
      properties: { secrets: { type: 'array', items: { type: 'object', properties: { source: secretSourceRef, type: { type: 'string' } } } } },
    }),
  ],
  [
    'creds',
    definition('creds', {
      type: 'object',
      properties: { credentials: { type: 'object', additionalProperties: secretSourceRef }, provider: { type: 'object', properties: { type: { type: 'string' } } } },
    }),
  ],
]);

describe('findSecretSources', () => {
  it('finds the source blocks where the transform schemas reference the source schema, and nothing else', () => {
    const data = {
      transforms: [
        { name: 'secrets', config: { secrets: [{ source: { type: 'env', var: 'A' }, type: 'not-a-source' }, { source: { type: '@acme/proxy-source-vault', path: 'x' } }] } },
        { name: 'unknown', config: { source: { type: 'env' } } },
        { name: 'creds', config: { credentials: { 'a/b': { type: 'aws_sm', secret_id: 's' } }, provider: { type: 'anthropic-api' } } },
      ],
    };
    expect(findSecretSources(data, transforms)).toEqual([
      { path: ['transforms', 0, 'config', 'secrets', 0, 'source'], source: { type: 'env', var: 'A' } },
      { path: ['transforms', 0, 'config', 'secrets', 1, 'source'], source: { type: '@acme/proxy-source-vault', path: 'x' } },
      { path: ['transforms', 2, 'config', 'credentials', 'a/b'], source: { type: 'aws_sm', secret_id: 's' } },
    ]);
  });

  it('copes with configs that are not objects, and leaves the data unchanged', () => {
    expect(findSecretSources({ transforms: [{ name: 'secrets', config: 'x' }, null] }, transforms)).toEqual([]);
    expect(findSecretSources(undefined, transforms)).toEqual([]);
    const data = { transforms: [{ name: 'secrets', config: { secrets: [] } }] };
    findSecretSources(data, transforms);
    expect(data).toEqual({ transforms: [{ name: 'secrets', config: { secrets: [] } }] });
  });
});
