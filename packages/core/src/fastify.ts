/**
 * `@proxy/core/fastify`: run any transform inside someone else's Fastify server.
 *
 * ```ts
 * import Fastify from 'fastify';
 * import proxy from '@fastify/http-proxy';
 * import { transformPlugin } from '@proxy/core/fastify';
 * import secrets from '@proxy/transform-secrets';
 *
 * const app = Fastify();
 * await app.register(transformPlugin(secrets), { secrets: [ ... ] });
 * await app.register(proxy, { upstream: 'https://api.example.com' });
 * ```
 *
 * The plugin validates its options against the transform's schema (the same validator the
 * proxy's config loader uses), creates the transform on registration, runs `onRequest` in a
 * `preHandler` hook through the same pipeline runner the proxy uses, applies the changes the
 * transform made (method, path, query, headers) to the Fastify request, answers rejects and
 * stubs itself, and closes the transform when Fastify closes. A request the transform
 * re-targets to another destination is refused (502 `retarget_unsupported`): the server's own
 * route decides where requests go.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AuditBuilder, type AuditRecord } from './audit.js';
import { ConfigError } from './errors.js';
import { HeaderList } from './headers.js';
import { createPipeline } from './pipeline.js';
import { createProxyRequest, type ProxyRequest } from './request.js';
import { createSchemaValidator, toConfigIssues } from './schema.js';
import { createTransformEnv, systemClock } from './transform-env.js';
import { reject, type Decision, type Logger, type TransformDefinition, type TransformEnv } from './transform.js';

/** Adapter options that are not the transform's own config. */
export interface TransformPluginOptions {
  /**
   * The destination the transform's rules see. Defaults to the Host header with scheme
   * `http`; in front of `@fastify/http-proxy` pass the upstream you proxy to.
   */
  readonly destination?: (request: FastifyRequest) => { scheme: 'http' | 'https'; host: string; port: number };
  /** Largest body a transform may buffer (default 1 MiB). */
  readonly maxBodyBytes?: number;
  /** Overrides parts of the transform environment (logger, secrets resolver, clock, ...). */
  readonly env?: Partial<TransformEnv>;
  /** Receives the audit record of every request the transform saw. */
  readonly onAudit?: (record: AuditRecord) => void;
  /**
   * How a body the transform buffered is handed on as `request.body`: `stream` (default) is
   * a Readable of the bytes, which `@fastify/http-proxy` / `@fastify/reply-from` forward
   * unchanged whatever the content type (they JSON-encode a Buffer sent as
   * `application/json`); `buffer` is the Buffer itself, for route handlers.
   */
  readonly bodyAs?: 'stream' | 'buffer';
}

/** Largest body a transform may buffer by default (the proxy's `max_request_body_bytes` default). */
const DEFAULT_MAX_BODY_BYTES = 1_048_576;

/**
 * Turns a transform definition into a Fastify plugin whose options are the transform's config.
 *
 * Registration validates the options (defaults applied; a `ConfigError` lists every issue)
 * and creates the transform once, with a logger from `fastify.log`, a secret resolver over
 * `process.env`, a no-op meter, the system clock, global `fetch` and a signal aborted when
 * Fastify closes (each overridable through `options.env`). The request hook runs in
 * `preHandler`, so a route's own content-type parser (e.g. `@fastify/http-proxy`'s
 * pass-through) has run. A reject or respond decision is answered with {@link sendDecision};
 * otherwise the transform's changes are written back for the rest of the server:
 * - headers replace `request.headers`, `request.raw.headers` and `request.raw.rawHeaders`;
 * - the method replaces `request.raw.method`, path and query replace `request.raw.url`
 *   (the route was already chosen on the original URL);
 * - a body the transform replaced becomes `request.body` (`Content-Length` fixed), as a
 *   stream of its bytes or, with `bodyAs: 'buffer'`, a Buffer; a body it only read does too
 *   when it was a stream (now consumed), while an already parsed body it only read stays as
 *   parsed. `@fastify/reply-from` refuses a body on GET and HEAD.
 * The body the transform reads is the unread request stream (or `request.body` when it is
 * a stream), a Buffer or string body as is, and any other parsed body re-serialized as JSON.
 */
export function transformPlugin<Config>(
  definition: TransformDefinition<Config>,
  options: TransformPluginOptions = {},
): FastifyPluginAsync<Config & Record<never, never>> {
  const plugin: FastifyPluginAsync<Config & Record<never, never>> = async (fastify, rawConfig) => {
    const validate = createSchemaValidator().compile(definition.schema);
    const config = structuredClone(rawConfig) as unknown;
    if (!validate(config)) throw new ConfigError(toConfigIssues(validate.errors));

    const logger = options.env?.logger ?? pinoLogger(fastify.log);
    const clock = options.env?.clock ?? systemClock;
    const controller = new AbortController();
    const pipeline = await createPipeline(
      [{ definition, config, index: 0 }],
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

    const audits = new WeakMap<FastifyRequest, AuditBuilder>();
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
      } finally {
        done();
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
        options.onAudit?.(audit.finish(decision.status, clock.now()));
        return sendDecision(reply, decision);
      }
      applyChanges(request, proxyRequest, body.fed, options.bodyAs ?? 'stream');
      if (options.onAudit !== undefined) audits.set(request, audit);
      return undefined;
    });
    if (options.onAudit !== undefined) {
      const onAudit = options.onAudit;
      fastify.addHook('onResponse', async (request, reply) => {
        const audit = audits.get(request);
        if (audit === undefined) return;
        audits.delete(request);
        onAudit(audit.finish(reply.statusCode, clock.now()));
      });
    }
  };
  return fp(plugin, { name: definition.name, fastify: '5.x' });
}

/**
 * Sends a reject or respond decision as the reply. A reject gets a short body: its `message`
 * (of its `contentType`, plain text by default), or `request refused by the proxy: <reason>`;
 * never a stack or a secret.
 */
export function sendDecision(reply: FastifyReply, decision: Exclude<Decision, { action: 'continue' }>): FastifyReply {
  if (decision.action === 'reject') {
    return reply
      .code(decision.status)
      .header('content-type', decision.contentType ?? 'text/plain; charset=utf-8')
      .send(decision.message ?? `request refused by the proxy: ${decision.reason}\n`);
  }
  reply.code(decision.status);
  for (const [name, value] of Object.entries(decision.headers ?? {})) reply.header(name, value);
  const body = decision.body;
  return reply.send(body === undefined ? '' : typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
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
