import { rulesSchema, secretSourceRef, type JsonSchema, type RuleConfig, type SecretSourceConfig } from '@proxy/core';

/**
 * The top-level `mcp_gateway` block (iron-proxy's extra): routes that send the requests an
 * `mcp` server governs to a concrete upstream, with the credentials the workload never holds.
 */
export interface McpGatewayConfig {
  /** Tried in order; the first whose rules match the request applies. Default `[]`. */
  readonly routes: readonly McpGatewayRouteConfig[];
}

/** One client-facing MCP name (and path) mapped to an upstream URL. */
export interface McpGatewayRouteConfig {
  /** Unique; names the route in audit records. */
  readonly name: string;
  /** The requests the route applies to (matched before it rewrites them). */
  readonly rules: readonly RuleConfig[];
  /**
   * The whole upstream URL (`https://mcp.example.com/v1/mcp`): the request goes to its scheme,
   * host, port and path (the client's path is dropped); its query comes first, then the
   * request's.
   */
  readonly upstream: string;
  /** Default `[]`. */
  readonly credentials: readonly McpGatewayCredentialConfig[];
}

/** A secret added to every request of the route. */
export interface McpGatewayCredentialConfig {
  readonly source: SecretSourceConfig;
  readonly inject: McpGatewayInjectConfig;
  /**
   * Default `true`: while the secret cannot be fetched, the route's requests fail (502
   * `gateway_credential_unavailable`) rather than reach the upstream without it.
   */
  readonly require: boolean;
}

/** Where the secret goes: exactly one of `header` and `query_param`. */
export interface McpGatewayInjectConfig {
  /** Header to set, sent with this exact casing. */
  readonly header?: string;
  /** Query parameter to set (URL-encoded). */
  readonly query_param?: string;
  /** Template of the value; `{{ .Value }}` is the secret (`Bearer {{ .Value }}`). Default: the bare value. */
  readonly formatter?: string;
}

/** An HTTP header field name (RFC 9110 token). */
const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

const nonEmptyString: JsonSchema = { type: 'string', minLength: 1 };

const injectSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    header: { type: 'string', pattern: HEADER_NAME },
    query_param: nonEmptyString,
    formatter: { type: 'string', proxyTemplate: { fields: ['Value'] } },
  },
  allOf: [
    {
      if: { required: ['header'] },
      then: { properties: { query_param: false }, description: 'a credential goes in one place: a header or a query parameter' },
    },
    { anyOf: [{ required: ['header'] }, { required: ['query_param'] }] },
  ],
};

/** JSON Schema of the `mcp_gateway` block (iron-proxy's fields; defaults applied by the validator). */
export const mcpGatewaySchema: JsonSchema = Object.freeze({
  type: 'object',
  additionalProperties: false,
  properties: {
    routes: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'rules', 'upstream'],
        properties: {
          name: nonEmptyString,
          rules: { ...rulesSchema, minItems: 1 },
          // Scheme, host, userinfo and fragment are checked by `mcpGatewayConfigProblems`.
          upstream: nonEmptyString,
          credentials: {
            type: 'array',
            default: [],
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['source', 'inject'],
              properties: {
                source: secretSourceRef,
                inject: injectSchema,
                require: { type: 'boolean', default: true },
              },
            },
          },
        },
      },
    },
  },
});

/** A problem of an `mcp_gateway` block the schema cannot see, with its field path below `mcp_gateway`. */
export interface GatewayConfigProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

/**
 * Problems of an `mcp_gateway` block the schema cannot see: duplicate route names, and
 * upstreams that are not an absolute `http`/`https` URL with a host, or that carry userinfo
 * (credentials belong in `credentials`, where they are kept out of logs) or a fragment.
 */
export function mcpGatewayConfigProblems(config: McpGatewayConfig): GatewayConfigProblem[] {
  const problems: GatewayConfigProblem[] = [];
  const seen = new Set<string>();
  config.routes.forEach((route, r) => {
    if (seen.has(route.name)) problems.push({ path: ['routes', r, 'name'], message: `duplicate route name "${route.name}"` });
    seen.add(route.name);
    const problem = upstreamProblem(route.upstream);
    if (problem !== undefined) problems.push({ path: ['routes', r, 'upstream'], message: problem });
  });
  return problems;
}

/** What is wrong with an upstream URL, or undefined when it is usable. */
function upstreamProblem(upstream: string): string | undefined {
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    return 'must be an absolute URL such as https://mcp.example.com/mcp';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must use http or https, not ${url.protocol.slice(0, -1)}`;
  if (url.hostname === '') return 'must include a host';
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password; add the credential under "credentials" instead';
  if (url.hash !== '') return 'must not include a fragment';
  return undefined;
}
