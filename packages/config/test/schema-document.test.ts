import { fileURLToPath } from 'node:url';
import { secretSourceRef } from '@proxy/core';
import type { JsonSchema } from '@proxy/core';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA_DOCUMENT_ID, configSchemaDocument, readConfigFile } from '../src/index.js';
import { ironProxyStandIns, registryOf, standIn } from './support/stand-ins.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** A validator as an editor or another tool would bring it: plain ajv, unknown keywords and formats ignored. */
function stockAjv(): Ajv {
  return new Ajv({ strict: false, allErrors: true, logger: false });
}

/** Every `$ref` in a schema document. */
function refsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsOf);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' ? [v] : refsOf(v)));
}

/** Every `$id` below the root of a schema document. */
function nestedIds(value: unknown, root = true): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => nestedIds(v, false));
  if (typeof value !== 'object' || value === null) return [];
  const own = !root && typeof (value as JsonSchema).$id === 'string' ? [(value as JsonSchema).$id] : [];
  return [...own, ...Object.values(value).flatMap((v) => nestedIds(v, false))];
}

/** A third-party transform with local `$ref`s, a nested `$id` and a secret source. */
const thirdParty = standIn('@acme/transform-guard', {
  type: 'object',
  additionalProperties: false,
  definitions: { header: { type: 'string', pattern: '^[A-Za-z-]+$' } },
  properties: {
    headers: { type: 'array', items: { $ref: '#/definitions/header' } },
    token: { type: 'object', properties: { source: secretSourceRef }, required: ['source'] },
    limits: {
      $id: 'limits.json',
      type: 'object',
      definitions: { n: { type: 'integer', minimum: 1 } },
      properties: { max: { $ref: '#/definitions/n' } },
    },
    extra: { $ref: 'limits.json#/definitions/n' },
  },
});

describe('configSchemaDocument', () => {
  const registry = registryOf([...ironProxyStandIns.transforms.values(), thirdParty]);
  const document = configSchemaDocument(registry);

  it('is one draft-07 document: no nested $id, every $ref a pointer into it', () => {
    expect(document.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(document.$id).toBe(CONFIG_SCHEMA_DOCUMENT_ID);
    expect(document.title).toBeTypeOf('string');
    expect(nestedIds(document)).toEqual([]);
    const refs = refsOf(document);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref).toMatch(/^#\//);
    expect(refs).toContain('#/definitions/secret-source');
    expect(refs).toContain('#/definitions/transform._acme_transform-guard/definitions/header');
    expect(refs).toContain('#/definitions/transform._acme_transform-guard/properties/limits/definitions/n');
    expect(Object.keys(document.definitions as object)).toEqual([
      'secret-source',
      'transform.allowlist',
      'transform.secrets',
      'transform.annotate',
      'transform.grpc',
      'transform.judge',
      'transform.header_allowlist',
      'transform._acme_transform-guard',
    ]);
  });

  it('does not change the transform definitions it reads', () => {
    expect((thirdParty.schema.properties as Record<string, JsonSchema>).limits?.$id).toBe('limits.json');
  });

  it('compiles in stock ajv and validates a config through every $ref', async () => {
    const validate = stockAjv().compile(document);
    const data = structuredClone((await readConfigFile(fixture('full-example.yaml'))).data);
    expect(validate(data), JSON.stringify(validate.errors)).toBe(true);

    const guard = (config: unknown): boolean => validate({ transforms: [{ name: '@acme/transform-guard', config }] });
    expect(guard({ headers: ['X-Team'], token: { source: { type: 'env', var: 'T' } }, limits: { max: 2 }, extra: 3 })).toBe(true);
    expect(guard({ headers: ['X Team'] })).toBe(false);
    expect(guard({ token: { source: { type: 'vault', path: 'x' } } })).toBe(false);
    expect(guard({ limits: { max: 0 } })).toBe(false);
    expect(guard({ extra: 0 })).toBe(false);
    expect(guard({ unknown: true })).toBe(false);
  });

  it('refuses an unknown top-level key and a wrong type', () => {
    const validate = stockAjv().compile(document);
    expect(validate({ proxy: { http_listen: ':8080' } })).toBe(true);
    expect(validate({ proxi: {} })).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({ keyword: 'additionalProperties', params: { additionalProperty: 'proxi' } });
    expect(validate({ proxy: { max_connections: 'many' } })).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({ instancePath: '/proxy/max_connections', keyword: 'type' });
  });

  it('offers the registered names and leaves other names open', () => {
    const entry = ((document.properties as Record<string, JsonSchema>).transforms?.items ?? {}) as JsonSchema;
    expect((entry.properties as Record<string, JsonSchema>).name?.examples).toEqual([...registry.transforms.keys()]);
    expect(stockAjv().compile(document)({ transforms: [{ name: '@other/unlisted', config: { anything: 1 } }] })).toBe(true);
  });

  it('refuses a $ref it cannot bundle', () => {
    const outside = standIn('outside', { type: 'object', properties: { a: { $ref: 'https://example.com/s.json' } } });
    expect(() => configSchemaDocument(registryOf([outside]))).toThrow(/points outside the config schema/);
    const anchor = standIn('anchor', { type: 'object', properties: { a: { $ref: '#thing' } } });
    expect(() => configSchemaDocument(registryOf([anchor]))).toThrow(/plain-name fragment/);
  });

  it('keeps distinct keys for names that sanitize alike', () => {
    const keys = Object.keys(configSchemaDocument(registryOf([standIn('a/b', {}), standIn('a_b', {})])).definitions as object);
    expect(keys).toEqual(['secret-source', 'transform.a_b', 'transform.a_b.2']);
  });
});
