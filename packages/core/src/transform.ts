import type { Meter } from '@opentelemetry/api';
import type { JsonSchema } from './schema.js';
import type { ProxyRequest, ProxyResponse } from './request.js';
import type { SecretRedactor } from './redactor.js';
import type { SecretResolver } from './secrets.js';

/** What a transform may return: nothing (continue) or a decision. */
export type Awaitable<T> = T | Promise<T>;

/** Let the request go on to the next transform (and, at the end, upstream). */
export interface ContinueDecision {
  readonly action: 'continue';
}

/**
 * Refuse the request. `status` is sent to the client with a short plain-text body; `reason`
 * is a machine-readable word for the audit record (`not_allowlisted`, `token_missing`, ...).
 * `message` optionally overrides the client-facing body; it must never contain a secret.
 * `contentType` is the media type of `message` when it is not plain text (a JSON error body).
 */
export interface RejectDecision {
  readonly action: 'reject';
  readonly status: number;
  readonly reason: string;
  readonly message?: string;
  /** The media type of `message`; default `text/plain; charset=utf-8`. See {@link rejectJson}. */
  readonly contentType?: string;
}

/**
 * Answer the request from the proxy without contacting the upstream (a stubbed token
 * endpoint, a JSON-RPC error, ...). Recorded in the audit record as action `stub`.
 */
export interface RespondDecision {
  readonly action: 'respond';
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  readonly reason?: string;
}

export type Decision = ContinueDecision | RejectDecision | RespondDecision;

/**
 * Continue, but to another destination (an external policy server routing a request to a
 * mirror, the MCP gateway sending a client-facing name to its upstream). Only `onRequest` may
 * return it, and the pipeline honours it only when it is safe:
 * - the request is not a TLS passthrough (whose connection is bound to its destination) and
 *   the host is a valid name or IP literal;
 * - no transform other than destination deciders (`decidesDestinations`) has run before the
 *   one re-targeting (none can have acted on the old host, e.g. injected its credential),
 *   unless the re-targeting transform declares `routesByConfig`: its destinations are routes
 *   the operator wrote, so what ran before for the old name was meant for the new one.
 * Inside a CONNECT or SOCKS5 tunnel a re-targeted request leaves the tunnel's own upstream
 * connection for a new one. The pipeline then switches the request's `host`, `port`, `scheme`
 * (when given) and `Host` header, runs the destination deciders that ran before again on the
 * new destination (only those), and carries on; the upstream guard checks the new host when
 * it is dialled. Otherwise the request fails with 502 (`retarget_unsafe`,
 * `retarget_unsupported`, `retarget_invalid`). A request is re-targeted at most once. The path
 * and query are the transform's to change on the request itself.
 */
export interface RetargetDecision {
  readonly action: 'retarget';
  /** The new destination host (a name or an IP literal; IPv6 with or without brackets). */
  readonly host: string;
  readonly port: number;
  /** The new scheme; default: the request's own. */
  readonly scheme?: 'http' | 'https';
}

/** Decision constructors, so transforms read as prose: `return reject(403, 'not_allowlisted')`. */
export const CONTINUE: ContinueDecision = Object.freeze({ action: 'continue' });
export function reject(status: number, reason: string, message?: string, contentType?: string): RejectDecision {
  if (message === undefined) return { action: 'reject', status, reason };
  return contentType === undefined ? { action: 'reject', status, reason, message } : { action: 'reject', status, reason, message, contentType };
}
/**
 * Refuse the request with a JSON body, for transforms whose clients expect one (iron-proxy's
 * signing transforms answer `{"error":"hmac_sign","reason":"body_truncated"}`). Recorded like
 * any reject; the body must never contain a secret.
 */
export function rejectJson(status: number, reason: string, body: { readonly [key: string]: AnnotationValue }): RejectDecision {
  return { action: 'reject', status, reason, message: JSON.stringify(body), contentType: 'application/json; charset=utf-8' };
}
export function respond(
  status: number,
  body?: string | Uint8Array,
  headers?: Readonly<Record<string, string>>,
  reason?: string,
): RespondDecision {
  return {
    action: 'respond',
    status,
    ...(body === undefined ? {} : { body }),
    ...(headers === undefined ? {} : { headers }),
    ...(reason === undefined ? {} : { reason }),
  };
}

/** Re-targets the request to `host:port`, optionally switching its scheme (see {@link RetargetDecision}). */
export function retarget(host: string, port: number, scheme?: 'http' | 'https'): RetargetDecision {
  return scheme === undefined ? { action: 'retarget', host, port } : { action: 'retarget', host, port, scheme };
}

/** A JSON value allowed in an audit annotation. */
export type AnnotationValue = string | number | boolean | null | readonly AnnotationValue[] | { readonly [k: string]: AnnotationValue };

/**
 * The transform's entry in the request's audit trace. Annotations must never hold a
 * secret value; name the secret (its env var, its label) instead.
 */
export interface Trace {
  annotate(key: string, value: AnnotationValue): void;
  /**
   * Writes a top-level group of the request's audit record, beside `request_transforms`, for a
   * stage whose findings are the record's subject rather than a transform's note (the MCP policy
   * writes `mcp`). The last value written under a name wins; the record's own field names
   * (`host`, `action`, ...) are refused with an error. Never a secret value.
   */
  group(name: string, value: AnnotationValue): void;
}

/** A pino-compatible logger: the subset transforms may rely on. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** The time source transforms use, so tests can move time. */
export interface Clock {
  now(): number;
}

/** An HTTP client for a transform's own calls (token endpoints, LLM APIs). */
export type HttpClient = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** What `create()` receives besides its config: everything a transform may use. */
export interface TransformEnv {
  /** Logger bound to this transform instance. */
  readonly logger: Logger;
  /** Opens secret sources (`env` built in; `json_key` and `ttl` handled for every source). */
  readonly secrets: SecretResolver;
  /**
   * Keeps credentials out of logs and audit records. Values fetched through `secrets` are
   * registered already; register here any credential the transform obtains itself (a token it
   * mints), with a label naming it.
   */
  readonly redactor: SecretRedactor;
  /** OpenTelemetry meter for the transform's own instruments. */
  readonly meter: Meter;
  /** HTTP client that dials through the same upstream guard as proxied traffic. */
  readonly http: HttpClient;
  readonly clock: Clock;
  /** Aborted when the transform is being closed (reload or shutdown). */
  readonly signal: AbortSignal;
  /** This instance's position in the pipeline, e.g. `secrets#1`. */
  readonly instanceId: string;
  /**
   * The directory relative file paths in the config are resolved against: the config file's
   * directory in the proxy. Absent: the working directory.
   */
  readonly configDir?: string;
}

/**
 * A live transform, built by `create()`. Hooks return nothing (continue) or a decision; a
 * hook that throws fails the request closed (502, or the status of a thrown `ProxyError`).
 */
export interface Transform {
  /**
   * The name this instance's entries carry in the audit record (`request_transforms[].name`,
   * `rejected_by`), for transforms configured with an instance name (`grpc`); default: the
   * definition's `name`.
   */
  readonly auditName?: string;
  /** Runs on every request, in pipeline order, before it is forwarded. May re-target it (see {@link RetargetDecision}). */
  onRequest?(request: ProxyRequest, trace: Trace): Awaitable<Decision | RetargetDecision | void>;
  /**
   * Runs when a CONNECT or SOCKS5 tunnel is about to open, on a host-only request (mode
   * `tunnel`: the target's host and port, no method, path, headers or body). Implement it in a
   * transform that decides on destinations (an allowlist); every request inside the tunnel then
   * goes through `onRequest` on its own. Transforms without it take no part in opening tunnels.
   */
  onTunnel?(request: ProxyRequest, trace: Trace): Awaitable<Decision | void>;
  /** Runs on the upstream response, in pipeline order, before it is returned. */
  onResponse?(request: ProxyRequest, response: ProxyResponse, trace: Trace): Awaitable<Decision | void>;
  /** Releases resources. Called once, after the last request using this instance is done. */
  close?(): Awaitable<void>;
}

/**
 * What a transform package exports (as `default`, or as a named `transform`).
 *
 * Lifecycle: the config block is validated against `schema` (unknown keys are errors,
 * defaults applied) -> `create(config, env)` -> hooks per request -> `close()`. `create` may
 * do I/O (open secret sources) but must be quick; it must not touch module globals, so that
 * a reload can run two generations of the same transform side by side.
 */
export interface TransformDefinition<Config = unknown, Input = Config> {
  /** The config name: `allowlist`, `secrets`, or a package name such as `@acme/transform-foo`. */
  readonly name: string;
  /** JSON Schema (draft-07, ajv) of the `config` block. Use `additionalProperties: false`. */
  readonly schema: JsonSchema;
  /**
   * Set to `true` on a transform whose `onTunnel`/`onRequest` refuse destinations it does not
   * permit, as the allowlist does. The app warns about a config in which no transform decides
   * destinations: the proxy then forwards to any host outside `proxy.upstream_deny_cidrs`.
   * Such a transform's `onRequest` must only decide, never change the request: when a later
   * transform re-targets a request ({@link RetargetDecision}), the pipeline runs it again on
   * the new destination.
   */
  readonly decidesDestinations?: boolean;
  /**
   * Set to `true` on a transform whose re-targets ({@link RetargetDecision}) are routes the
   * operator wrote in its config (a static table mapping a name the workload uses to an
   * upstream, as the MCP gateway's), never destinations computed from the request or from an
   * outside service. The pipeline honours such a re-target even after other transforms acted
   * on the request; the destination deciders still decide on the new destination.
   */
  readonly routesByConfig?: boolean;
  /**
   * By default a transform's hooks run only once every secret it opened has had its first
   * fetch settled (a request arriving earlier waits, at most the 30 s fetch bound), so
   * `handle.value()` never throws for a fetch still in flight. Set to `true` on a transform
   * that waits itself (`handle.ready()`), e.g. only for the secrets a request's host needs.
   */
  readonly waitsForSecrets?: boolean;
  create(config: Config, env: TransformEnv): Awaitable<Transform>;
  /**
   * Type-only, never set: the config a user writes, before the schema's defaults are applied
   * (`Input`), where `create` receives it after (`Config`). Read it with {@link ConfigInput}.
   */
  readonly '~input'?: Input;
}

/**
 * `Config` with the fields in `Keys` optional: the input type of a config whose schema gives
 * those fields a `default`. `defineTransform<Config, WithDefaults<Config, 'header'>>({ ... })`.
 */
export type WithDefaults<Config, Keys extends keyof Config> = Omit<Config, Keys> & { [K in Keys]?: Config[K] };

/**
 * The config a user writes for a transform definition: its schema's input, fields with a schema
 * default optional (the `Input` of `TransformDefinition<Config, Input>`; `Config` itself when
 * the definition declares none).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any Config: only Input is read
export type ConfigInput<Definition> = Definition extends TransformDefinition<any, infer Input> ? Input : never;

/**
 * Identity helper that types `create`'s config and marks intent, like `fastify-plugin`'s `fp()`.
 * `Config` is the config after schema defaults (what `create` receives); `Input` the config as
 * written (what `transformPlugin` and `proxyPlugin` accept), by default `Config`. Give a schema
 * with defaults its input type, e.g. `defineTransform<Config, WithDefaults<Config, 'header'>>`.
 */
export function defineTransform<Config, Input = Config>(definition: TransformDefinition<Config, Input>): TransformDefinition<Config, Input> {
  return Object.freeze(definition);
}

/** True when `value` has the shape of a transform definition. */
export function isTransformDefinition(value: unknown): value is TransformDefinition {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === 'string' && v.name.length > 0 && typeof v.schema === 'object' && v.schema !== null && typeof v.create === 'function';
}
