import { rulesSchema, type JsonSchema, type RuleConfig } from '@proxy/core';

/** The top-level `mcp` block: the error sent for a denied call, and the policy of each MCP server. */
export interface McpConfig {
  /** JSON-RPC error returned for a denied call. Defaults: -32001, "blocked by iron-proxy policy". */
  readonly error: { readonly code: number; readonly message: string };
  readonly servers: readonly McpServerConfig[];
}

/** The tool allowlist of the MCP servers matched by `rules`. */
export interface McpServerConfig {
  /** Names the policy in audit records. */
  readonly name: string;
  readonly rules: readonly RuleConfig[];
  /** Default `[]`: every tool denied. */
  readonly tools: readonly McpToolConfig[];
}

/** One allowed tool; every `when` matcher must pass. */
export interface McpToolConfig {
  readonly name: string;
  readonly when: readonly McpArgumentMatcher[];
}

/** A matcher on a dotted path of `params.arguments`: exactly one of `equals`, `in`, `matches`. */
export interface McpArgumentMatcher {
  readonly path: string;
  readonly equals?: unknown;
  readonly in?: readonly unknown[];
  /** An RE2 regular expression (Go's syntax, linear-time), searched for in the value, which must be a string. */
  readonly matches?: string;
}

const nonEmptyString: JsonSchema = { type: 'string', minLength: 1 };

const argumentMatcherSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: nonEmptyString,
    equals: {},
    in: { type: 'array' },
    // RE2 syntax is checked by `mcpConfigProblems`, with the same engine that matches.
    matches: { type: 'string' },
  },
  oneOf: [{ required: ['equals'] }, { required: ['in'] }, { required: ['matches'] }],
};

/** JSON Schema of the `mcp` block (iron-proxy's fields; defaults applied by the validator). */
export const mcpSchema: JsonSchema = Object.freeze({
  type: 'object',
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        code: { type: 'integer', default: -32001 },
        message: { type: 'string', default: 'blocked by iron-proxy policy' },
      },
    },
    servers: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'rules'],
        properties: {
          name: nonEmptyString,
          rules: { ...rulesSchema, minItems: 1 },
          tools: {
            type: 'array',
            default: [],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name'],
              properties: {
                name: nonEmptyString,
                when: { type: 'array', items: argumentMatcherSchema, default: [] },
              },
            },
          },
        },
      },
    },
  },
});
