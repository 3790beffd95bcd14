/** True for a plain mapping (a non-null, non-array object), as YAML mappings become. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
