/** An `op://vault/item/[section/]field` reference, split into its parts. */
export interface SecretReference {
  readonly vault: string;
  readonly item: string;
  readonly section?: string;
  readonly field: string;
}

/** JSON Schema pattern of a reference Connect can resolve: three or four non-empty parts, no query. */
export const SECRET_REFERENCE_PATTERN = '^op://[^/?#]+/[^/?#]+/([^/?#]+/)?[^/?#]+$';


/**
 * Splits `op://vault/item/field` or `op://vault/item/section/field`. Each part is a name
 * (label, title) or an id. Throws an `Error` for anything else (the schema refuses it first).
 */
export function parseSecretReference(ref: string): SecretReference {
  const parts = ref.startsWith('op://') ? ref.slice('op://'.length).split('/') : [];
  if ((parts.length !== 3 && parts.length !== 4) || parts.some((p) => p === '' || /[?#]/.test(p))) {
    throw new Error(`"${ref}" is not a secret reference of the form op://vault/item/[section/]field`);
  }
  const [vault, item, ...rest] = parts as [string, string, ...string[]];
  return rest.length === 2 ? { vault, item, section: rest[0]!, field: rest[1]! } : { vault, item, field: rest[0]! };
}
