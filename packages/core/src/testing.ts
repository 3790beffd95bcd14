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
import { Readable } from 'node:stream';
import { AuditBuilder, type AuditRecord } from './audit.js';
import { ConfigError, ErrorCodes, ProxyError, type ConfigIssue } from './errors.js';
import { HeaderList } from './headers.js';
import { createPipeline } from './pipeline.js';
import { createMessageBody, createProxyRequest, type ProxyRequest, type ProxyResponse, type RequestMode, type TunnelInfo } from './request.js';
import { createSchemaValidator, toConfigIssues } from './schema.js';
import { createTransformEnv, systemClock } from './transform-env.js';
import type { Decision, HttpClient, Logger, TransformDefinition, TransformEnv } from './transform.js';

/** Header fields as a record (`{ name: value | [values] }`) or as `[name, value]` pairs. */
export type TestHeaders = Record<string, string | readonly string[]> | readonly (readonly [string, string])[];

/** A request to run a transform on; everything has a default (`GET http://example.com/`). */
export interface TestRequestInit {
  readonly method?: string;
  readonly scheme?: 'http' | 'https';
  readonly host?: string;
  /** Default: 80 for http, 443 for https. */
  readonly port?: number;
  readonly path?: string;
  /** Raw query string without the leading `?`. */
  readonly query?: string;
  /** A `Host` header is added when absent; `Content-Length` too when a body is given. */
  readonly headers?: TestHeaders;
  readonly body?: string | Buffer;
  /** Default: `mitm` for https, `http` for http. */
  readonly mode?: RequestMode;
  /** Default: `127.0.0.1`. */
  readonly clientAddress?: string;
  /** The TLS server name the client sent (default: none). */
  readonly sni?: string;
  /** The tunnel the request travelled in (default: none). */
  readonly tunnel?: TunnelInfo;
  /** Largest body `body.read()` buffers (default 1 MiB, the proxy's default; 0 = no limit). */
  readonly maxBodyBytes?: number;
  /** `ProxyRequest.maxHeadBytes` (default 64 KiB, as the engine's). */
  readonly maxHeadBytes?: number;
}

/** An upstream response to run response hooks on. */
export interface TestResponseInit {
  /** Default: 200. */
  readonly status?: number;
  readonly headers?: TestHeaders;
  readonly body?: string | Buffer;
}

/** One log call the transform made (through its logger or a child of it). */
export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  /** The bindings of the logger it was made on, merged with the call's object. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly msg: string | undefined;
}

/** What {@link runTransform} returns. */
export interface TransformRunResult {
  /** The request decision. */
  readonly decision: Decision;
  /** The request after the transform ran (headers, path, query, body as it would be forwarded). */
  readonly request: ProxyRequest;
  /** The audit record, as the proxy would log it. `status_code` is 0 when no response was given. */
  readonly audit: AuditRecord;
  /** The body that would be forwarded: the replaced or read bytes, else the original body. */
  readonly forwardedBody: Buffer;
  /** The response after the response hooks ran, when `options.response` was given and the request continued. */
  readonly response?: ProxyResponse;
  /** The response decision, when response hooks ran. */
  readonly responseDecision?: Decision;
  /** Every log call the transform made; assert that no secret value is among them. */
  readonly logs: readonly LogEntry[];
}

/** Options of {@link runTransform}. */
export interface RunTransformOptions {
  /** Environment variables the `env` secret source reads (default: none). */
  readonly env?: Readonly<Record<string, string>>;
  /** Overrides of the transform environment. Without `http`, any HTTP call the transform makes fails. */
  readonly transformEnv?: Partial<TransformEnv>;
  /** An upstream response: when given and the request continues, the response hooks run on it. */
  readonly response?: TestResponseInit;
}

/** Largest request body buffered by default: the proxy's `max_request_body_bytes` default. */
const DEFAULT_MAX_BODY_BYTES = 1_048_576;

/** Builds a request for tests. */
export function testRequest(init: TestRequestInit = {}): ProxyRequest {
  const scheme = init.scheme ?? 'http';
  const host = init.host ?? 'example.com';
  const port = init.port ?? (scheme === 'https' ? 443 : 80);
  const headers = HeaderList.from(init.headers ?? {});
  if (!headers.has('host')) {
    const name = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    headers.append('Host', port === (scheme === 'https' ? 443 : 80) ? name : `${name}:${port}`);
  }
  return createProxyRequest({
    method: init.method ?? 'GET',
    scheme,
    host,
    port,
    path: init.path ?? '/',
    query: init.query ?? '',
    headers,
    clientAddress: init.clientAddress ?? '127.0.0.1',
    sni: init.sni,
    tunnel: init.tunnel,
    mode: init.mode ?? (scheme === 'https' ? 'mitm' : 'http'),
    bodyStream: bodyStream(headers, init.body),
    maxBodyBytes: init.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    ...(init.maxHeadBytes === undefined ? {} : { maxHeadBytes: init.maxHeadBytes }),
  });
}

/** Builds an upstream response for tests. */
export function testResponse(init: TestResponseInit = {}): ProxyResponse {
  const headers = HeaderList.from(init.headers ?? {});
  return {
    status: init.status ?? 200,
    headers,
    body: createMessageBody({ headers, stream: bodyStream(headers, init.body), limit: 0, limitName: 'proxy.max_response_body_bytes', untilClose: true }),
  };
}

/** Validates `config` against the definition's schema; returns every issue (empty when valid). */
export function validateTransformConfig(definition: TransformDefinition, config: unknown): ConfigIssue[] {
  return validateConfig(definition, config).issues;
}

/**
 * Validates the config (throwing a `ConfigError` listing every issue), creates the transform,
 * runs it on the request through the pipeline runner, closes it, and reports what happened.
 * Secrets resolve through the real resolver over `options.env`, and the request runs once their
 * first fetches have settled; the meter is a no-op.
 */
export async function runTransform(
  definition: TransformDefinition,
  config: unknown,
  request: TestRequestInit = {},
  options: RunTransformOptions = {},
): Promise<TransformRunResult> {
  const validated = validateConfig(definition, config);
  if (validated.issues.length > 0) throw new ConfigError(validated.issues);
  const logs: LogEntry[] = [];
  const logger = recordingLogger(logs, {});
  const clock = options.transformEnv?.clock ?? systemClock;
  const http = options.transformEnv?.http ?? offlineHttp;
  const controller = new AbortController();
  const envs: TransformEnv[] = [];
  let pipeline;
  try {
    pipeline = await createPipeline(
      [{ definition, config: validated.config, index: 0 }],
      (_spec, instanceId) => {
        const env = { ...createTransformEnv({ instanceId, logger, http, clock, signal: controller.signal, env: options.env ?? {} }), ...options.transformEnv };
        envs.push(env);
        return env;
      },
      { clock, logger },
    );
    // The request runs as on a proxy that has started: every secret's first fetch has settled.
    await Promise.all(envs.flatMap((env) => env.secrets.handles().map((handle) => handle.ready())));
  } catch (err) {
    controller.abort();
    throw err;
  }
  const proxyRequest = testRequest(request);
  const audit = new AuditBuilder(proxyRequest);
  const done = pipeline.enter();
  let decision: Decision;
  let response: ProxyResponse | undefined;
  let responseDecision: Decision | undefined;
  try {
    // A `tunnel` request is a tunnel opening: the proxy runs `onTunnel` hooks on it, not `onRequest`.
    decision = proxyRequest.mode === 'tunnel' ? await pipeline.runTunnel(proxyRequest, audit) : await pipeline.runRequest(proxyRequest, audit);
    if (decision.action === 'continue' && options.response !== undefined) {
      response = testResponse(options.response);
      responseDecision = await pipeline.runResponse(proxyRequest, response, audit);
    }
  } finally {
    done();
    await pipeline.close();
    controller.abort();
  }
  const final = responseDecision !== undefined && responseDecision.action !== 'continue' ? responseDecision : decision;
  const status = final.action === 'continue' ? (response?.status ?? 0) : final.status;
  return {
    decision,
    request: proxyRequest,
    audit: audit.finish(status, clock.now()),
    forwardedBody: proxyRequest.body.bytes ?? toBuffer(request.body),
    ...(response === undefined ? {} : { response }),
    ...(responseDecision === undefined ? {} : { responseDecision }),
    logs,
  };
}

/** Validates a copy of `config` (so defaults land on the copy) and returns it with the issues. */
function validateConfig(definition: TransformDefinition, config: unknown): { config: unknown; issues: ConfigIssue[] } {
  let validate;
  try {
    validate = createSchemaValidator().compile(definition.schema);
  } catch (err) {
    throw new ProxyError(
      ErrorCodes.TRANSFORM_INVALID_EXPORT,
      `the schema of transform ${definition.name} does not compile: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const copy = config === undefined ? undefined : structuredClone(config);
  return validate(copy) ? { config: copy, issues: [] } : { config: copy, issues: toConfigIssues(validate.errors) };
}

/** The HTTP client of a test run without one: a transform under test must not reach the network. */
const offlineHttp: HttpClient = (input) =>
  Promise.reject(
    new ProxyError(
      ErrorCodes.UPSTREAM_UNREACHABLE,
      `runTransform: no HTTP client for ${String(input)}; pass options.transformEnv.http to allow calls`,
      { status: 502, reason: 'upstream_unreachable' },
    ),
  );

/**
 * A logger that appends every call to `logs` (with its bindings merged into `fields`), so a
 * test can assert what was logged, and that no secret was.
 */
export function recordingLogger(logs: LogEntry[], bindings: Readonly<Record<string, unknown>> = {}): Logger {
  const at =
    (level: LogEntry['level']) =>
    (obj: object | string, msg?: string): void => {
      if (typeof obj === 'string') logs.push({ level, fields: bindings, msg: obj });
      else logs.push({ level, fields: { ...bindings, ...obj }, msg });
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => recordingLogger(logs, { ...bindings, ...more }),
  };
}

function toBuffer(body: string | Buffer | undefined): Buffer {
  return body === undefined ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

/** A stream of `body`, with `Content-Length` set when no framing header was given. */
function bodyStream(headers: HeaderList, body: string | Buffer | undefined): Readable | null {
  if (body === undefined) return null;
  const bytes = toBuffer(body);
  if (!headers.has('content-length') && !headers.has('transfer-encoding')) headers.set('Content-Length', String(bytes.length));
  return Readable.from([bytes]);
}
