/**
 * `secrets`: the credential boundary. Each entry either injects a real secret the workload
 * never holds (a header through a formatter, or a query parameter), or swaps a placeholder the
 * workload sends for the real value (headers, Basic credentials, body, path, query). Audit
 * annotations name the secret (its source label) and where it went, never its value.
 */
import {
  CONTINUE,
  ErrorCodes,
  ProxyError,
  compileRules,
  defineTransform,
  reject,
  type AnnotationValue,
  type RuleSet,
  type SecretHandle,
  type TransformDefinition,
} from '@proxy/core';
import { replaceConfigOf, secretsSchema, type SecretEntryConfig, type SecretsConfig } from './config.js';
import { compileInject } from './inject.js';
import { compileReplace } from './replace.js';
import type { SecretAction } from './secret-action.js';

export type { InjectConfig, ReplaceConfig, SecretEntryConfig, SecretsConfig } from './config.js';
export { DEFAULT_FORMATTER } from './inject.js';

/**
 * Reject reason for a request in scope of a `require: true` entry that carries the
 * placeholder in none of the scanned locations (status 403).
 */
export const PROXY_TOKEN_MISSING = 'proxy_token_missing';

/** One entry, compiled and with its source open. */
interface LiveSecret {
  readonly handle: SecretHandle;
  /** Undefined when the entry applies to every destination. */
  readonly scope: RuleSet | undefined;
  readonly action: SecretAction;
}

/** An entry's action: its inject block, or its replace settings in either form. */
function compileAction(entry: SecretEntryConfig): SecretAction {
  if (entry.inject !== undefined) return compileInject(entry.inject);
  const replace = replaceConfigOf(entry);
  // The schema guarantees one of the forms; this guards direct callers of create().
  if (replace === undefined) throw new ProxyError(ErrorCodes.CONFIG_INVALID, 'secrets entry has neither inject nor replace');
  return compileReplace(replace);
}

/** The `secrets` transform definition. */
export const secretsTransform: TransformDefinition<SecretsConfig> = defineTransform<SecretsConfig>({
  name: 'secrets',
  schema: secretsSchema,
  async create(config, env) {
    const secrets: LiveSecret[] = [];
    try {
      for (const entry of config.secrets) {
        const action = compileAction(entry);
        const scope = entry.rules.length === 0 ? undefined : compileRules(entry.rules);
        secrets.push({ action, scope, handle: await env.secrets.open(entry.source) });
      }
    } catch (err) {
      for (const secret of secrets) secret.handle.close();
      throw err;
    }

    return {
      async onRequest(request, trace) {
        const report: Record<SecretAction['kind'], AnnotationValue[]> = { injected: [], swapped: [] };
        try {
          for (const { handle, scope, action } of secrets) {
            if (scope !== undefined && !scope.matches(request)) continue;
            let value: string | undefined;
            const locations = await action.apply(request, () => (value ??= handle.value()));
            if (locations.length > 0) {
              report[action.kind].push({ secret: handle.label, locations });
            } else if (action.required) {
              trace.annotate('missing_proxy_token', handle.label);
              return reject(403, PROXY_TOKEN_MISSING);
            }
          }
          return CONTINUE;
        } finally {
          if (report.swapped.length > 0) trace.annotate('swapped', report.swapped);
          if (report.injected.length > 0) trace.annotate('injected', report.injected);
        }
      },
      close() {
        for (const secret of secrets) secret.handle.close();
      },
    };
  },
});

export default secretsTransform;
