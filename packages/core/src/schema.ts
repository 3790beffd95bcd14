import type { Ajv } from 'ajv';

/** A JSON Schema object (draft-07, as ajv reads it). */
export type JsonSchema = Record<string, unknown>;

/** Schema of a duration string such as `30s`, `5m`, `1h30m`, `250ms` (Go syntax). */
export const durationSchema: JsonSchema = Object.freeze({ type: 'string', format: 'duration' });

/**
 * Parses a Go-style duration (`300ms`, `1.5s`, `5m`, `1h30m`, `0`) into milliseconds.
 * Throws a `ProxyError` with code `PROXY_ERR_DURATION_INVALID` on anything else.
 */
export function parseDuration(text: string): number {
  void text;
  throw new Error('TODO(core): parseDuration');
}

/**
 * Builds the ajv instance every config in the project is validated with: all errors,
 * defaults applied, strict schemas, the `discriminator` keyword, and these formats and
 * keywords:
 * - format `duration`: {@link parseDuration} accepts it;
 * - format `cidr`: an IPv4 or IPv6 CIDR (`10.0.0.0/8`, `fd00::/8`);
 * - format `host-glob`: `*`, `*.example.com`, `api.example.com`, or an IP literal;
 * - format `path-glob`: starts with `/`;
 * - format `header-pattern`: a header name or a `/regex/` that compiles;
 * - keyword `proxyTemplate: { fields: [...] }`: the string is a template of the safe template
 *   language that only references the listed fields (see `compileTemplate`).
 * Schemas registered with {@link registerSharedSchemas} (secret sources) are resolvable by `$ref`.
 */
export function createSchemaValidator(): Ajv {
  throw new Error('TODO(core): createSchemaValidator');
}
