import { rulesSchema } from '@proxy/core';
import type { JsonSchema, RuleConfig, WithDefaults } from '@proxy/core';

/** The `config` block of the transform, after schema validation (defaults applied). */
export interface RequestGuardConfig {
  /** Regular expressions (JavaScript syntax, case-insensitive); a matching `User-Agent` is refused. */
  readonly deny_user_agents?: readonly string[];
  /** Header names every request must carry with a non-empty value. */
  readonly require_headers?: readonly string[];
  /** Status sent when a request is refused (4xx, default 403). */
  readonly reject_status: number;
  /** Destinations the guard applies to; absent means every request. */
  readonly rules?: readonly RuleConfig[];
}

/** The `config` block as users write it: `reject_status` has a schema default, so it is optional. */
export type RequestGuardInput = WithDefaults<RequestGuardConfig, 'reject_status'>;

/** An HTTP field name (RFC 9110 `token`). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/**
 * JSON Schema of {@link RequestGuardConfig}. Unknown keys are errors, and a guard must check
 * something: at least one of `deny_user_agents` and `require_headers`.
 */
export const configSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    deny_user_agents: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    require_headers: { type: 'array', minItems: 1, items: { type: 'string', pattern: HEADER_NAME } },
    reject_status: { type: 'integer', minimum: 400, maximum: 499, default: 403 },
    rules: { ...rulesSchema, minItems: 1 },
  },
  anyOf: [{ required: ['deny_user_agents'] }, { required: ['require_headers'] }],
};
