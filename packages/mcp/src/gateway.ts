import {
  canonicalHeaderName,
  compileRules,
  compileTemplate,
  ErrorCodes,
  ProxyError,
  retarget,
  setQueryParam,
  type AnnotationValue,
  type CompiledTemplate,
  type ProxyRequest,
  type RetargetDecision,
  type RuleSet,
  type RuleTarget,
  type SecretHandle,
  type SecretResolver,
} from '@proxy/core';
import type { McpGatewayConfig, McpGatewayCredentialConfig, McpGatewayRouteConfig } from './gateway-config.js';

/** The `gateway` entry of the audit record's `mcp` group: never a secret, nor the query it went into. */
export interface GatewayRecord {
  readonly route: string;
  readonly upstream: string;
  /** Each injected secret as `<label>:header:<Name>` or `<label>:query:<param>`. */
  readonly credentials_injected: string[];
  readonly [key: string]: AnnotationValue;
}

/** A credential of a route, its secret opened. */
interface RouteCredential {
  readonly handle: SecretHandle;
  readonly required: boolean;
  readonly formatter: CompiledTemplate;
  /** Puts the formatted value on the request and returns where it went (`header:Authorization`). */
  readonly inject: (request: ProxyRequest, value: string) => void;
  readonly location: string;
}

/** The formatter of a credential that names none: the bare value. */
const BARE_VALUE = '{{ .Value }}';

/** One compiled route. */
export class GatewayRoute {
  readonly name: string;
  readonly #rules: RuleSet;
  readonly #upstream: URL;
  readonly #credentials: readonly RouteCredential[];

  private constructor(config: McpGatewayRouteConfig, credentials: readonly RouteCredential[]) {
    this.name = config.name;
    this.#rules = compileRules(config.rules);
    this.#upstream = new URL(config.upstream);
    this.#credentials = credentials;
  }

  /** Compiles a route and opens its secrets. */
  static async open(config: McpGatewayRouteConfig, secrets: SecretResolver): Promise<GatewayRoute> {
    const credentials: RouteCredential[] = [];
    for (const credential of config.credentials) credentials.push(await openCredential(credential, secrets));
    return new GatewayRoute(config, credentials);
  }

  matches(target: RuleTarget): boolean {
    return this.#rules.matches(target);
  }

  /**
   * Adds the route's credentials to `request`, points its path and query at the upstream, and
   * returns the re-target to the upstream's scheme, host and port (the pipeline switches them
   * and has the destination deciders decide on it). Throws a `ProxyError` (502
   * `gateway_credential_unavailable`) when a required secret cannot be had.
   */
  apply(request: ProxyRequest, record: { gateway?: GatewayRecord }): RetargetDecision {
    const injected: string[] = [];
    for (const credential of this.#credentials) {
      if (!credential.handle.available) {
        if (!credential.required) continue;
        throw new ProxyError(ErrorCodes.SECRET_UNAVAILABLE, `MCP gateway route ${this.name}: secret ${credential.handle.label} is not available`, {
          status: 502,
          reason: 'gateway_credential_unavailable',
        });
      }
      credential.inject(request, credential.formatter.render({ Value: credential.handle.value() }));
      injected.push(`${credential.handle.label}:${credential.location}`);
    }
    const upstream = this.#upstream;
    record.gateway = { route: this.name, upstream: upstream.href, credentials_injected: injected };
    request.path = upstream.pathname;
    const base = upstream.search.slice(1);
    request.query = base === '' ? request.query : request.query === '' ? base : `${base}&${request.query}`;
    const scheme = upstream.protocol === 'https:' ? 'https' : 'http';
    const port = upstream.port === '' ? (scheme === 'https' ? 443 : 80) : Number(upstream.port);
    return retarget(upstream.hostname, port, scheme);
  }
}

async function openCredential(config: McpGatewayCredentialConfig, secrets: SecretResolver): Promise<RouteCredential> {
  const handle = await secrets.open(config.source);
  const formatter = compileTemplate(config.inject.formatter ?? BARE_VALUE, ['Value']);
  const { header, query_param: param } = config.inject;
  if (header !== undefined) {
    return { handle, required: config.require, formatter, location: `header:${canonicalHeaderName(header)}`, inject: (request, value) => request.headers.set(header, value) };
  }
  return {
    handle,
    required: config.require,
    formatter,
    location: `query:${param!}`,
    inject: (request, value) => {
      request.query = setQueryParam(request.query, param!, value);
    },
  };
}

/** Every route of the `mcp_gateway` block, in config order. */
export class McpGateway {
  readonly #routes: readonly GatewayRoute[];

  private constructor(routes: readonly GatewayRoute[]) {
    this.#routes = routes;
  }

  static async open(config: McpGatewayConfig, secrets: SecretResolver): Promise<McpGateway> {
    const routes: GatewayRoute[] = [];
    for (const route of config.routes) routes.push(await GatewayRoute.open(route, secrets));
    return new McpGateway(routes);
  }

  /** The first route whose rules match `target`, or undefined. */
  routeFor(target: RuleTarget): GatewayRoute | undefined {
    return this.#routes.find((route) => route.matches(target));
  }
}
