/**
 * `@proxy/core/testing`: the harness for transform authors. Runs a transform exactly as the
 * proxy does (schema validation with defaults, `create`, the pipeline runner, the audit
 * builder) against a request you describe, with no network.
 *
 * ```ts
 * const result = await runTransform(myTransform, { header: 'x-team' }, { host: 'api.example.com', headers: { 'x-team': 'a' } });
 * expect(result.decision.action).toBe('continue');
 * expect(result.request.headers.get('x-team')).toBe('a');
 * ```
 */
import type { AuditRecord } from './audit.js';
import type { ProxyRequest, RequestMode } from './request.js';
import type { Decision, TransformDefinition, TransformEnv } from './transform.js';
import type { ConfigIssue } from './errors.js';

/** A request to run a transform on; everything has a default (`GET http://example.com/`). */
export interface TestRequestInit {
  readonly method?: string;
  readonly scheme?: 'http' | 'https';
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly query?: string;
  readonly headers?: Record<string, string | readonly string[]> | readonly (readonly [string, string])[];
  readonly body?: string | Buffer;
  readonly mode?: RequestMode;
  readonly clientAddress?: string;
  readonly maxBodyBytes?: number;
}

/** What {@link runTransform} returns. */
export interface TransformRunResult {
  readonly decision: Decision;
  /** The request after the transform ran (headers, path, query, body as it would be forwarded). */
  readonly request: ProxyRequest;
  /** The audit record, as the proxy would log it. */
  readonly audit: AuditRecord;
  /** The body that would be forwarded (buffered for the test). */
  readonly forwardedBody: Buffer;
}

/** Options of {@link runTransform}. */
export interface RunTransformOptions {
  /** Environment variables the `env` secret source reads (default: none). */
  readonly env?: Readonly<Record<string, string>>;
  /** Overrides of the transform environment. */
  readonly transformEnv?: Partial<TransformEnv>;
}

/** Builds a request for tests. */
export function testRequest(init?: TestRequestInit): ProxyRequest {
  void init;
  throw new Error('TODO(core): testRequest');
}

/** Validates `config` against the definition's schema; returns every issue (empty when valid). */
export function validateTransformConfig(definition: TransformDefinition, config: unknown): ConfigIssue[] {
  void definition;
  void config;
  throw new Error('TODO(core): validateTransformConfig');
}

/**
 * Validates the config (throwing a `ConfigError` listing every issue), creates the transform,
 * runs it on the request through the pipeline runner, closes it, and reports what happened.
 */
export async function runTransform(
  definition: TransformDefinition,
  config: unknown,
  request?: TestRequestInit,
  options?: RunTransformOptions,
): Promise<TransformRunResult> {
  void definition;
  void config;
  void request;
  void options;
  throw new Error('TODO(core): runTransform');
}
