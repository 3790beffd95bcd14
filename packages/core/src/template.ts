/**
 * The safe template mini-language of `formatter`, header and message templates: a subset of
 * Go templates. Text, `{{ .Field }}`, and function calls `{{ base64 "x-access-token:" .Value }}`
 * whose arguments are string literals or fields. `base64` concatenates its arguments and
 * base64-encodes the result. No loops, no conditionals, no other functions.
 */
export interface CompiledTemplate {
  /** The fields the template references, e.g. `["Value"]`. */
  readonly fields: readonly string[];
  render(data: Readonly<Record<string, string>>): string;
}

/** The functions templates may call. */
export const templateFunctions: readonly string[] = ['base64'];

/**
 * Parses a template once, at config load. Throws a `ProxyError` with code
 * `PROXY_ERR_CONFIG_TEMPLATE` when it does not parse, calls an unknown function or references
 * a field not in `allowedFields`; the message names the field or function and its offset.
 */
export function compileTemplate(source: string, allowedFields: readonly string[]): CompiledTemplate {
  void source;
  void allowedFields;
  throw new Error('TODO(core): compileTemplate');
}
