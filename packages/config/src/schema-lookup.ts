import type { JsonSchema } from '@proxy/core';
import type { Ajv, ErrorObject } from 'ajv';

/** Finds the schema object holding the keyword an ajv error is about (its "parent schema"). */
export type SchemaLookup = (error: ErrorObject) => JsonSchema | undefined;

/**
 * Builds a {@link SchemaLookup} for errors of a validator compiled from `root` on `ajv`.
 * Uses the error's own `parentSchema` when ajv reports it (option `verbose`); otherwise walks
 * the error's `schemaPath`: `#/...` from `root`, `<$id>/...` from a schema added to `ajv`
 * (such as core's secret-source schema, reached through a `$ref`).
 */
export function createSchemaLookup(ajv: Ajv, root: JsonSchema): SchemaLookup {
  return (error) => {
    if (isSchemaObject(error.parentSchema)) return error.parentSchema;
    const holder = error.schemaPath.slice(0, error.schemaPath.lastIndexOf('/'));
    if (holder.startsWith('#')) return walk(root, holder.slice(1));
    const id = Object.keys(ajv.schemas)
      .filter((key) => key !== '' && (holder === key || holder.startsWith(`${key}/`) || holder.startsWith(`${key}#`)))
      .sort((a, b) => b.length - a.length)[0];
    const base = id === undefined ? undefined : ajv.schemas[id]?.schema;
    if (id === undefined || !isSchemaObject(base)) return undefined;
    return walk(base, holder.slice(id.length).replace(/^#/, ''));
  };
}

/** Follows a JSON pointer (`/properties/dns`, URI-escaped as ajv writes it) into a schema. */
function walk(schema: JsonSchema, pointer: string): JsonSchema | undefined {
  let node: unknown = schema;
  for (const raw of pointer.split('/').slice(1)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return isSchemaObject(node) ? node : undefined;
}

function isSchemaObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
