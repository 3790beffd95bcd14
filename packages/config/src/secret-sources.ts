import { createSchemaValidator } from '@proxy/core';
import type { TransformDefinition } from '@proxy/core';
import { pointerToFieldPath, type FieldPath } from './field-path.js';
import { isRecord } from './is-record.js';

/** A secret source written in a config: where, and the block as written. */
export interface FoundSecretSource {
  /** `['transforms', i, 'config', ...]` down to the source block. */
  readonly path: FieldPath;
  readonly source: Readonly<Record<string, unknown>>;
}

/**
 * Finds every secret source block in the config's transforms: each place a transform's schema
 * references the secret-source schema (`secretSourceRef`), whatever the block holds. Sources
 * are found by the schemas, not by guessing from field names, so a transform's own `type`
 * fields are never mistaken for one. Entries naming an unknown transform are skipped (the
 * validator reports them).
 */
export function findSecretSources(data: unknown, transforms: ReadonlyMap<string, TransformDefinition>): FoundSecretSource[] {
  const entries = isRecord(data) && Array.isArray(data.transforms) ? (data.transforms as unknown[]) : [];
  const found: FoundSecretSource[] = [];
  entries.forEach((entry, index) => {
    if (!isRecord(entry) || typeof entry.name !== 'string' || !isRecord(entry.config)) return;
    const definition = transforms.get(entry.name);
    if (definition === undefined) return;
    // Defaults are applied while validating: probe a copy.
    const config: unknown = structuredClone(entry.config);
    const seen = new Set<string>();
    const ajv = createSchemaValidator({
      onSecretSource(source, pointer) {
        // A source under several branches of a oneOf is reported once.
        if (!isRecord(source) || seen.has(pointer)) return;
        seen.add(pointer);
        found.push({ path: ['transforms', index, 'config', ...pointerToFieldPath(pointer, config)], source });
      },
    });
    try {
      ajv.compile(definition.schema)(config);
    } catch {
      // A schema that does not compile is reported by the validator.
    }
  });
  return found;
}
