/**
 * `@proxy/core/fastify`: run transforms inside someone else's Fastify server.
 *
 * ```ts
 * import Fastify from 'fastify';
 * import proxy from '@fastify/http-proxy';
 * import { proxyPlugin, use } from '@proxy/core/fastify';
 * import secrets from '@proxy/transform-secrets';
 * import allowlist from '@proxy/transform-allowlist';
 *
 * const app = Fastify();
 * await app.register(async (scope) => {
 *   await scope.register(proxyPlugin({ transforms: [use(allowlist, { domains: ['api.example.com'] }), use(secrets, { secrets: [ ... ] })] }));
 *   await scope.register(proxy, { upstream: 'https://api.example.com' });
 * }, { prefix: '/api' });
 * ```
 *
 * The plugin validates each transform's config against its schema (the same validator the
 * proxy's config loader uses), creates the transforms on registration as one pipeline (the
 * runner the proxy uses), runs their `onRequest` hooks in a `preHandler` hook, applies the
 * changes they made (method, path, query, headers, body) to the Fastify request, answers
 * rejects and stubs itself, runs their `onResponse` hooks in `onSend`, writes one audit record
 * per request and closes the transforms when Fastify closes. A request a transform re-targets
 * to another destination is refused (502 `retarget_unsupported`): the server's own route
 * decides where requests go.
 *
 * Scope: the hooks apply to the routes of the encapsulation context the plugin is registered
 * in, and of its child contexts; never to sibling or parent contexts (the plugin is wrapped
 * with `fastify-plugin`, which is what lets its hooks reach the routes registered beside it).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AuditBuilder, type AuditRecord } from './audit.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { HeaderList } from './headers.js';
import { createPipeline, type Pipeline, type TransformSpec } from './pipeline.js';
import { createMessageBody, createProxyRequest, type ProxyRequest, type ProxyResponse } from './request.js';
import { createSchemaValidator, toConfigIssues } from './schema.js';
import { createTransformEnv, systemClock } from './transform-env.js';
import { reject, type ConfigInput, type Decision, type Logger, type TransformDefinition, type TransformEnv } from './transform.js';

/** Adapter options that are not a transform's own config. */
export interface TransformPluginOptions {
  /**
   * The destination the transforms' rules see. Defaults to the Host header with scheme
   * `http`; in front of `@fastify/http-proxy` pass the upstream you proxy to.
   */
  readonly destination?: (request: FastifyRequest) => { scheme: 'http' | 'https'; host: string; port: number };
  /** Largest request body a transform may buffer (default 1 MiB). */
  readonly maxBodyBytes?: number;
  /** Largest response body a response transform may buffer (default 1 MiB; 0 = no limit). */
  readonly maxResponseBodyBytes?: number;
  /** Overrides parts of the transform environment (logger, secrets resolver, clock, ...). */
  readonly env?: Partial<TransformEnv>;
  /** Receives the audit record of every request the plugin saw: one per request. */
  readonly onAudit?: (record: AuditRecord) => void;
  /**
   * How a body a transform buffered is handed on as `request.body`: `stream` (default) is
   * a Readable of the bytes, which `@fastify/http-proxy` / `@fastify/reply-from` forward
   * unchanged whatever the content type (they JSON-encode a Buffer sent as
   * `application/json`); `buffer` is the Buffer itself, for route handlers.
   */
  readonly bodyAs?: 'stream' | 'buffer';
}

/** One transform of a {@link proxyPlugin} pipeline: its definition and its config as written. */
export interface TransformUse<Config = unknown, Input = Config> {
  readonly transform: TransformDefinition<Config, Input>;
  /** The config block, before schema defaults: fields the schema defaults may be left out. */
  readonly config: Input;
}

/**
 * Pairs a transform with its config, typed by the transform: `use(allowlist, { domains: [...] })`.
 * The config is the schema's input (fields with a default optional), checked at registration.
 */
export function use<Config, Input>(transform: TransformDefinition<Config, Input>, config: NoInfer<Input>): TransformUse<Config, Input> {
  return { transform, config };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any definition; each entry is checked by CheckedUses
type AnyUse = { readonly transform: TransformDefinition<any, any>; readonly config: unknown };

/** Each entry's `config` checked against its own transform's input type. */
type CheckedUses<Uses extends readonly AnyUse[]> = {
  readonly [K in keyof Uses]: Uses[K] extends { readonly transform: infer D } ? { readonly transform: D; readonly config: ConfigInput<D> } : Uses[K];
};

/** Options of {@link proxyPlugin}. */
export interface ProxyPluginOptions<Uses extends readonly AnyUse[] = readonly AnyUse[]> extends TransformPluginOptions {
  /** The pipeline, in order: `[use(secrets, {...}), use(allowlist, {...})]` or `{ transform, config }` objects. */
  readonly transforms: Uses & CheckedUses<Uses>;
}

/** Largest body a transform may buffer by default (the proxy's `max_request_body_bytes` default). */
const DEFAULT_MAX_BODY_BYTES = 1_048_576;

/**
 * A Fastify plugin running a whole pipeline of transforms, in order, with one audit record per
 * request (`request_transforms` has an entry per transform that ran; the first reject or
 * respond stops the run, as in the proxy).
 *
 * Registration validates every config (defaults applied; a `ConfigError` lists every issue,
 * paths as `transforms[1].config.domains[0]`, each naming its transform) and creates the
 * transforms once, with a logger from `fastify.log`, a secret resolver over `process.env`, a
 * no-op meter, the system clock, global `fetch` and a signal aborted when Fastify closes (each
 * overridable through `options.env`); a transform whose `create` fails closes the ones before
 * it. Per request:
 * - `preHandler` (so a route's own content-type parser, e.g. `@fastify/http-proxy`'s
 *   pass-through, has run): the `onRequest` hooks. A reject or respond decision is answered
 *   with {@link sendDecision}; otherwise the changes are written back for the rest of the server:
 *   headers replace `request.headers`, `request.raw.headers` and `request.raw.rawHeaders`; the
 *   method replaces `request.raw.method`, path and query replace `request.raw.url` (the route
 *   was already chosen on the original URL); a body a transform replaced becomes `request.body`
 *   (`Content-Length` fixed) as a stream of its bytes or, with `bodyAs: 'buffer'`, a Buffer; a
 *   body it only read does too when it was a stream (now consumed), while an already parsed
 *   body it only read stays as parsed. `@fastify/reply-from` refuses a body on GET and HEAD.
 *   The body a transform reads is the unread request stream (or `request.body` when it is a
 *   stream), a Buffer or string body as is, and any other parsed body re-serialized as JSON.
 * - `onSend`, only when some transform has `onResponse`: the response hooks, on the reply's
 *   status, headers and payload (the upstream stream from `@fastify/http-proxy`, or what a
 *   handler sent, serialized). Changed status and headers are written to the reply, a body a
 *   transform read or replaced is sent in place of the payload, and a reject or respond
 *   replaces the whole reply.
 * - `onResponse` (or the client leaving first, as `client_closed`): the audit record.
 */
export function proxyPlugin<const Uses extends readonly AnyUse[]>(options: ProxyPluginOptions<Uses>): FastifyPluginAsync {
  const uses: readonly AnyUse[] = options.transforms;
  const plugin: FastifyPluginAsync = async (fastify) => {
    const issues: ConfigIssue[] = [];
    const specs = uses.map(({ transform, config }, index): TransformSpec => {
      const validated = validateConfig(transform, config, `transforms[${index}].config`, issues);
      return { definition: transform, config: validated, index };
    });
    if (issues.length > 0) throw new ConfigError(issues);
    await installPipeline(fastify, specs, options);
  };
  return fp(plugin, { name: '@proxy/core/proxy-plugin', fastify: '5.x' });
}

/**
 * Turns one transform definition into a Fastify plugin whose options are the transform's config
 * (the schema's input: fields with a default may be left out). The same machinery as
 * {@link proxyPlugin} with a pipeline of one; issue paths are the config's own fields.
 */
export function transformPlugin<Config, Input>(
  definition: TransformDefinition<Config, Input>,
  options: TransformPluginOptions = {},
): FastifyPluginAsync<Input & Record<never, never>> {
  const plugin: FastifyPluginAsync<Input & Record<never, never>> = async (fastify, rawConfig) => {
    const issues: ConfigIssue[] = [];
    const config = validateConfig(definition, rawConfig, '', issues);
    if (issues.length > 0) throw new ConfigError(issues);
    await installPipeline(fastify, [{ definition: definition as TransformDefinition, config, index: 0 }], options);
  };
  return fp(plugin, { name: definition.name, fastify: '5.x' });
}

/**
 * Validates one transform's config (a copy: defaults are applied to it, never to the caller's
 * object) and collects its issues, each naming the transform.
 */
function validateConfig(definition: TransformDefinition<unknown, unknown>, raw: unknown, prefix: string, issues: ConfigIssue[]): unknown {
  const validate = createSchemaValidator().compile(definition.schema);
  const config = structuredClone(raw ?? {}) as unknown;
  if (!validate(config)) {
    for (const issue of toConfigIssues(validate.errors, prefix)) issues.push({ ...issue, message: `${issue.message} (transform ${definition.name})` });
  }
  return config;
}

/** What a request carries from `preHandler` to the response hooks. */
interface RequestState {
  readonly request: ProxyRequest;
  readonly audit: AuditBuilder;
  /** Releases the request's hold on the pipeline; idempotent. */
  readonly done: () => void;
  responded: boolean;
  emitted: boolean;
}

/** Creates the pipeline of `specs` and adds the hooks that run it to `fastify`. */
async function installPipeline(fastify: FastifyInstance, specs: readonly TransformSpec[], options: TransformPluginOptions): Promise<void> {
  const logger = options.env?.logger ?? pinoLogger(fastify.log);
  const clock = options.env?.clock ?? systemClock;
  const controller = new AbortController();
  const pipeline = await createPipeline(
    specs,
    (_spec, instanceId) => ({
      ...createTransformEnv({
        instanceId,
        logger,
        clock,
        http: options.env?.http ?? ((input, init) => fetch(input, init)),
        signal: controller.signal,
      }),
      ...options.env,
    }),
    { clock, logger },
  ).catch((err: unknown) => {
    controller.abort();
    throw err;
  });
  fastify.addHook('onClose', async () => {
    await pipeline.close();
    controller.abort();
  });

  const emit = (state: RequestState, status: number): void => {
    if (state.emitted) return;
    state.emitted = true;
    options.onAudit?.(state.audit.finish(status, clock.now()));
  };
  const states = new WeakMap<FastifyRequest, RequestState>();
  fastify.addHook('preHandler', async (request, reply) => {
    const destination = options.destination?.(request) ?? hostDestination(request);
    const body = bodySource(request);
    const proxyRequest = createProxyRequest({
      method: request.raw.method ?? 'GET',
      scheme: destination.scheme,
      host: destination.host,
      port: destination.port,
      ...splitUrl(request.raw.url ?? '/'),
      headers: requestHeaders(request),
      clientAddress: request.ip,
      mode: 'reverse',
      bodyStream: body.stream,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    });
    const audit = new AuditBuilder(proxyRequest);
    const { host, port } = proxyRequest;
    const done = pipeline.enter();
    let decision: Decision;
    try {
      decision = await pipeline.runRequest(proxyRequest, audit);
    } catch (err) {
      done();
      throw err;
    }
    const readError = proxyRequest.body.readError;
    if (decision.action === 'continue' && readError !== undefined) {
      // A transform read the body, failed and carried on: the stream is spent, never forward it.
      audit.rejected('engine', readError.reason);
      decision = reject(readError.status, readError.reason);
    } else if (decision.action === 'continue' && (proxyRequest.host !== host || proxyRequest.port !== port)) {
      // The route of the server around the plugin cannot follow a re-targeted request.
      audit.failed('retarget_unsupported', 'engine');
      decision = reject(502, 'retarget_unsupported');
    }
    if (decision.action !== 'continue') {
      done();
      options.onAudit?.(audit.finish(decision.status, clock.now()));
      return sendDecision(reply, decision);
    }
    applyChanges(request, proxyRequest, body.fed, options.bodyAs ?? 'stream');
    const state: RequestState = { request: proxyRequest, audit, done, responded: false, emitted: false };
    states.set(request, state);
    // The client may leave before the response is over; `onResponse` then never runs.
    reply.raw.once('close', () => {
      done();
      if (state.emitted) return;
      if (!reply.raw.writableFinished && audit.action === 'allow') audit.failed('client_closed');
      emit(state, reply.raw.headersSent ? reply.statusCode : 499);
    });
    return undefined;
  });
  if (pipeline.hasResponseHooks) {
    const maxResponseBodyBytes = options.maxResponseBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    fastify.addHook('onSend', async (request, reply, payload) => {
      const state = states.get(request);
      if (state === undefined || state.responded) return payload;
      state.responded = true;
      return runResponse(pipeline, state, reply, payload, maxResponseBodyBytes);
    });
  }
  fastify.addHook('onResponse', async (request, reply) => {
    const state = states.get(request);
    if (state === undefined) return;
    states.delete(request);
    state.done();
    emit(state, reply.statusCode);
  });
}

/**
 * Runs the response hooks on the reply about to be sent and returns the payload to send in its
 * place; status and headers are written to `reply`.
 */
async function runResponse(pipeline: Pipeline, state: RequestState, reply: FastifyReply, payload: unknown, maxResponseBodyBytes: number): Promise<unknown> {
  const headers = replyHeaders(reply);
  const stream = payloadStream(payload);
  const response: ProxyResponse = {
    status: reply.statusCode,
    headers,
    body: createMessageBody({ headers, stream, limit: maxResponseBodyBytes, limitName: 'maxResponseBodyBytes', untilClose: true }),
  };
  let decision = await pipeline.runResponse(state.request, response, state.audit);
  const readError = response.body.readError;
  if (decision.action === 'continue' && readError !== undefined) {
    state.audit.failed(readError.reason, 'engine');
    decision = reject(502, readError.reason);
  }
  if (decision.action !== 'continue') {
    if (payload instanceof Readable) discard(payload);
    for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
    const answer = decisionReply(decision);
    reply.code(answer.status);
    for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
    return answer.body;
  }
  reply.code(response.status);
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
  for (const name of new Set(response.headers.names().map((n) => n.toLowerCase()))) {
    const values = response.headers.getAll(name);
    reply.header(name, values.length === 1 ? values[0] : values);
  }
  if (response.body.buffered) {
    if (payload instanceof Readable && !payload.readableEnded) discard(payload);
    return response.body.bytes;
  }
  const replacement = response.body.replacementStream;
  return replacement ?? payload;
}

/** Drops a payload stream that will not be sent (an upstream body cancelled with an error nobody awaits). */
function discard(stream: Readable): void {
  stream.on('error', () => undefined);
  stream.destroy();
}

/** The reply's headers as a header list. */
function replyHeaders(reply: FastifyReply): HeaderList {
  const list = new HeaderList();
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (Array.isArray(value)) for (const v of value) list.append(name, String(v));
    else if (value !== undefined) list.append(name, String(value));
  }
  return list;
}

/** The payload of `onSend` as a stream the response body reads lazily; null when there is none. */
function payloadStream(payload: unknown): Readable | null {
  if (payload === null || payload === undefined) return null;
  if (payload instanceof Readable) return payload;
  if (typeof payload === 'string' || Buffer.isBuffer(payload)) return Readable.from([Buffer.from(payload)]);
  if (payload instanceof Uint8Array) return Readable.from([Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)]);
  return null;
}

/**
 * Sends a reject or respond decision as the reply. A reject gets a short body: its `message`
 * (of its `contentType`, plain text by default), or `request refused by the proxy: <reason>`;
 * never a stack or a secret.
 */
export function sendDecision(reply: FastifyReply, decision: Exclude<Decision, { action: 'continue' }>): FastifyReply {
  const answer = decisionReply(decision);
  reply.code(answer.status);
  for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
  return reply.send(answer.body);
}

/** The status, headers and body a reject or respond decision is answered with. */
function decisionReply(decision: Exclude<Decision, { action: 'continue' }>): { status: number; headers: Readonly<Record<string, string>>; body: string | Buffer } {
  if (decision.action === 'reject') {
    return {
      status: decision.status,
      headers: { 'content-type': decision.contentType ?? 'text/plain; charset=utf-8' },
      body: decision.message ?? `request refused by the proxy: ${decision.reason}\n`,
    };
  }
  const body = decision.body;
  return {
    status: decision.status,
    headers: decision.headers ?? {},
    body: body === undefined ? '' : typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
  };
}

/** The destination named by the Host header (scheme `http`, port 80 unless given). */
function hostDestination(request: FastifyRequest): { scheme: 'http'; host: string; port: number } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(request.host);
  return { scheme: 'http', host: m?.[1] ?? request.host, port: m?.[2] === undefined ? 80 : Number(m[2]) };
}

function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** The request's header fields, casing preserved unless an earlier hook replaced `request.headers`. */
function requestHeaders(request: FastifyRequest): HeaderList {
  if (request.headers === request.raw.headers) return HeaderList.fromRaw(request.raw.rawHeaders);
  const list = new HeaderList();
  for (const [name, value] of Object.entries(request.headers)) {
    if (typeof value === 'string') list.append(name, value);
    else if (Array.isArray(value)) for (const v of value) list.append(name, v);
  }
  return list;
}

/**
 * The body stream the transform reads: the unread request (or `request.body` when a parser
 * left it a stream), else the parsed body as bytes; `fed` holds those bytes.
 */
function bodySource(request: FastifyRequest): { stream: Readable | null; fed?: Buffer } {
  const body: unknown = request.body;
  if (body === undefined || body === null) return { stream: request.raw.readableEnded ? null : request.raw };
  if (body instanceof Readable) return { stream: body };
  const fed = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  return { stream: Readable.from([fed]), fed };
}

/**
 * Writes the method, URL, headers and body the transform left back into the Fastify request.
 * `fed` is the parsed body's bytes the transform was given, if it was given a parsed body.
 */
function applyChanges(request: FastifyRequest, proxyRequest: ProxyRequest, fed: Buffer | undefined, bodyAs: 'stream' | 'buffer'): void {
  const raw = request.raw;
  raw.method = proxyRequest.method;
  raw.url = proxyRequest.query === '' ? proxyRequest.path : `${proxyRequest.path}?${proxyRequest.query}`;
  const headers = toNodeHeaders(proxyRequest.headers);
  raw.headers = headers;
  raw.rawHeaders = proxyRequest.headers.toRaw();
  request.headers = headers;
  const bytes = proxyRequest.body.bytes;
  // A stream that was read is consumed: its bytes stand in for it. A parsed body only
  // changes when the transform replaced it with different bytes.
  if (bytes !== undefined && (fed === undefined || !bytes.equals(fed))) request.body = bodyAs === 'buffer' ? bytes : Readable.from([bytes]);
  else if (proxyRequest.body.replacementStream !== undefined) request.body = proxyRequest.body.replacementStream;
}

/** Node's `IncomingMessage.headers` layout: lowercase names, `set-cookie` an array, repeats joined. */
function toNodeHeaders(list: HeaderList): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of list) {
    const key = name.toLowerCase();
    const prev = out[key];
    if (prev === undefined) out[key] = key === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[key] = `${prev}${key === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out;
}

/** The transform logger over Fastify's pino logger. */
function pinoLogger(log: FastifyBaseLogger): Logger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (obj: object | string, msg?: string): void => {
      if (typeof obj === 'string') log[level](obj);
      else log[level](obj, msg);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (bindings) => pinoLogger(log.child(bindings)),
  };
}
