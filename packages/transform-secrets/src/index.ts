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
  type Decision,
  type ProxyRequest,
  type RuleSet,
  type SecretHandle,
  type Trace,
  type TransformDefinition,
} from '@proxy/core';
import { replaceConfigOf, secretsSchema, type SecretEntryConfig, type SecretsConfig, type SecretsInput } from './config.js';
import { compileInject } from './inject.js';
import { compileReplace } from './replace.js';
import type { SecretAction } from './secret-action.js';

export type { InjectConfig, ReplaceConfig, SecretEntryConfig, SecretEntryInput, SecretsConfig, SecretsInput } from './config.js';
export { DEFAULT_FORMATTER } from './inject.js';

/**
 * Reject reason for a request in scope of a `require: true` entry that carries the
 * placeholder in none of the scanned locations (status 403).
 */
export const PROXY_TOKEN_MISSING = 'proxy_token_missing';

/**
 * Reject reason (status 403) for a request in scope of a `require: true` entry whose secret
 * could not be fetched. Entries without `require` leave such a request untouched instead and
 * list the secret under the `secret_unavailable` and `skipped` annotations.
 */
export const SECRET_UNAVAILABLE = 'secret_unavailable';

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

/** What one in-scope entry did to a request. */
interface Applied {
  readonly live: LiveSecret;
  /** Reads the entry's value once per request, when first needed. */
  readonly secret: () => string;
  /** Where the value went; `body` is added after the body pass. */
  readonly locations: string[];
}

/** Runs the body pass of the entries that have one (in order), then concludes. */
async function applyToBodies(request: ProxyRequest, applied: Applied[], trace: Trace): Promise<Decision> {
  try {
    for (const entry of applied) {
      const location = await entry.live.action.applyToBody?.(request, entry.secret);
      if (location !== undefined) entry.locations.push(location);
    }
  } catch (err) {
    annotate(applied, trace);
    throw err;
  }
  return conclude(applied, trace);
}

/** Annotates where each secret went; refuses when a required placeholder was found nowhere. */
function conclude(applied: readonly Applied[], trace: Trace): Decision {
  for (const entry of applied) {
    if (entry.locations.length === 0 && entry.live.action.required) return refuseMissing(applied, trace, entry.live);
  }
  annotate(applied, trace);
  return CONTINUE;
}

function refuseMissing(applied: readonly Applied[], trace: Trace, missing: LiveSecret): Decision {
  annotate(applied, trace);
  trace.annotate('missing_proxy_token', missing.handle.label);
  return reject(403, PROXY_TOKEN_MISSING);
}

/** The `swapped` and `injected` annotations: each secret by label, with where it went. */
function annotate(applied: readonly Applied[], trace: Trace): void {
  const report: Record<SecretAction['kind'], AnnotationValue[]> = { injected: [], swapped: [] };
  for (const { live, locations } of applied) {
    if (locations.length > 0) report[live.action.kind].push({ secret: live.handle.label, locations });
  }
  if (report.swapped.length > 0) trace.annotate('swapped', report.swapped);
  if (report.injected.length > 0) trace.annotate('injected', report.injected);
}

/**
 * Lists the secrets a request in scope went without, because they could not be fetched:
 * `secret_unavailable` (iron-proxy's annotation) and `skipped` with the reason.
 */
function noteUnavailable(trace: Trace, labels: readonly string[]): void {
  trace.annotate('secret_unavailable', [...labels]);
  trace.annotate(
    'skipped',
    labels.map((secret) => ({ secret, reason: SECRET_UNAVAILABLE })),
  );
}

/** The `secrets` transform definition. */
export const secretsTransform: TransformDefinition<SecretsConfig, SecretsInput> = defineTransform<SecretsConfig, SecretsInput>({
  name: 'secrets',
  // Waits per request only for the secrets whose scope matches it (see onRequest).
  waitsForSecrets: true,
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

    /** Runs the entries on a request once every in-scope secret has settled its first fetch. */
    const apply = (request: ProxyRequest, trace: Trace): Decision | Promise<Decision> => {
      const applied: Applied[] = [];
      let bodyWork = false;
      let unavailable: string[] | undefined;
      for (const live of secrets) {
        if (live.scope !== undefined && !live.scope.matches(request)) continue;
        if (!live.handle.available) {
          (unavailable ??= []).push(live.handle.label);
          noteUnavailable(trace, unavailable);
          if (live.action.required) {
            annotate(applied, trace);
            trace.annotate('missing_secret', live.handle.label);
            return reject(403, SECRET_UNAVAILABLE);
          }
          continue;
        }
        let value: string | undefined;
        const secret = (): string => (value ??= live.handle.value());
        const locations = live.action.apply(request, secret);
        applied.push({ live, secret, locations });
        if (live.action.applyToBody !== undefined) bodyWork = true;
        else if (locations.length === 0 && live.action.required) return refuseMissing(applied, trace, live);
      }
      return bodyWork ? applyToBodies(request, applied, trace) : conclude(applied, trace);
    };

    // True once every first fetch has settled: a handle is pending only before its first one.
    let settled = false;
    return {
      onRequest(request, trace) {
        if (settled) return apply(request, trace);
        // A secret in scope still on its first fetch is waited for (never longer than the
        // resolver's fetch timeout; waiting never cancels the fetch).
        let waits: Promise<void>[] | undefined;
        let anyPending = false;
        for (const live of secrets) {
          if (!live.handle.pending) continue;
          anyPending = true;
          if (live.scope === undefined || live.scope.matches(request)) (waits ??= []).push(live.handle.ready());
        }
        settled = !anyPending;
        if (waits === undefined) return apply(request, trace);
        return Promise.all(waits).then(() => apply(request, trace));
      },
      close() {
        for (const secret of secrets) secret.handle.close();
      },
    };
  },
});

export default secretsTransform;
