/**
 * `grpc`: hands each request (and each response) in scope to an external policy server that
 * speaks iron-proxy's `transform.v1.TransformService`, and does what it answers: go on, go on
 * changed (method, URL, headers, body, status; a new `host` re-targets the request, checked
 * again by the allowlist and the upstream guard), or refuse with the server's answer. A call
 * that fails or outlives its deadline fails the request with 502. Secrets the proxy knows are
 * redacted from what the server is sent.
 */
import {
  CONTINUE,
  ConfigError,
  compileRules,
  defineTransform,
  parseDuration,
  reject,
  retarget,
  type Decision,
  type ProxyRequest,
  type Trace,
  type TransformDefinition,
} from '@proxy/core';
import { grpcSchema, type GrpcConfig, type GrpcInput } from './config.js';
import {
  applyModifiedRequest,
  applyModifiedResponse,
  contextOf,
  Redactions,
  requestMessage,
  responseMessage,
  validStatus,
  type Redact,
} from './messages.js';
import type { HttpResponse, TransformRequestResponse, TransformResponseResponse } from './service.js';

export type { GrpcConfig, GrpcInput, GrpcTlsConfig } from './config.js';
export { grpcSchema } from './config.js';
export { canonicalHeaderKey } from './messages.js';
export type {
  HeaderValues,
  HttpRequest,
  HttpResponse,
  TransformAction,
  TransformContext,
  TransformRequestRequest,
  TransformRequestResponse,
  TransformResponseRequest,
  TransformResponseResponse,
  TransformServiceApi,
} from './service.js';

/** The reason of a refusal the policy server asked for. */
export const GRPC_REJECTED = 'grpc_rejected';

/** Writes the server's annotations to the trace. */
function annotate(trace: Trace, annotations: Readonly<Record<string, string>> | undefined): void {
  if (annotations === undefined) return;
  for (const [key, value] of Object.entries(annotations)) trace.annotate(key, value);
}

/** The refusal a REJECT asks for: the server's status (0 → 403), body and content type. */
function rejection(response: HttpResponse | undefined, server: string): Decision {
  const status = response?.status_code === undefined || response.status_code === 0 ? 403 : validStatus(response.status_code, server);
  const body = response?.body;
  if (body === undefined || body.length === 0) return reject(status, GRPC_REJECTED);
  const contentType = Object.entries(response?.headers ?? {}).find(([name]) => name.toLowerCase() === 'content-type')?.[1].values?.[0];
  return reject(status, GRPC_REJECTED, body.toString('utf8'), contentType);
}

/** The `grpc` transform definition. */
export const grpcTransform: TransformDefinition<GrpcConfig, GrpcInput> = defineTransform<GrpcConfig, GrpcInput>({
  name: 'grpc',
  schema: grpcSchema,
  async create(config, env) {
    const scope = config.rules.length === 0 ? undefined : compileRules(config.rules);
    const timeoutMs = parseDuration(config.timeout);
    if (timeoutMs <= 0) throw new ConfigError([{ path: 'timeout', message: 'must be longer than 0' }]);
    const { tls } = config;
    if (!tls.enabled && (tls.ca_cert !== undefined || tls.cert !== undefined || tls.key !== undefined)) {
      env.logger.warn({ server: config.name }, `grpc "${config.name}": tls files are set but tls.enabled is false: the connection is plaintext`);
    }
    // gRPC's runtime is loaded by the first grpc transform built, not by every proxy that lists the transform.
    const { channelCredentials, PolicyChannel } = await import('./channel.js');
    const channel = new PolicyChannel(config.name, config.target, await channelCredentials(tls, env.configDir ?? process.cwd()), timeoutMs);
    // Built connected: a reload swaps in a pipeline whose channel is up. A server not reachable
    // yet does not stop the build; its requests fail closed (502 grpc_error) until it is.
    if (!(await channel.connect(timeoutMs))) {
      env.logger.warn({ server: config.name, target: config.target }, `grpc "${config.name}": policy server not reachable within ${config.timeout}; requests fail (502) until it is`);
    }
    const redact: Redact = (text) => env.redactor.redact(text);
    const inScope = (request: ProxyRequest): boolean => scope === undefined || scope.matches(request);

    return {
      auditName: config.name,
      async onRequest(request, trace) {
        if (!inScope(request)) return CONTINUE;
        const redactions = new Redactions();
        const body = config.send_request_body && request.body.present ? await request.body.read() : undefined;
        const reply = await channel.call<TransformRequestResponse>('TransformRequest', {
          context: contextOf(request),
          request: requestMessage(request, body, redactions, redact),
        });
        annotate(trace, reply.annotations);
        if (reply.action === 'TRANSFORM_ACTION_REJECT') return rejection(reply.response, config.name);
        if (reply.modified_request === undefined) return CONTINUE;
        const destination = applyModifiedRequest(request, reply.modified_request, redactions, config.name);
        return destination === undefined ? CONTINUE : retarget(destination.host, destination.port);
      },
      async onResponse(request, response, trace) {
        if (!inScope(request)) return CONTINUE;
        const redactions = new Redactions();
        const requestBody = config.send_request_body ? request.body.bytes : undefined;
        const body = config.send_response_body && response.body.present ? await response.body.read() : undefined;
        const reply = await channel.call<TransformResponseResponse>('TransformResponse', {
          context: contextOf(request),
          request: requestMessage(request, requestBody, redactions, redact),
          response: responseMessage(response, body, redactions, redact),
        });
        annotate(trace, reply.annotations);
        if (reply.action === 'TRANSFORM_ACTION_REJECT') return rejection(reply.modified_response, config.name);
        if (reply.modified_response !== undefined) applyModifiedResponse(response, reply.modified_response, redactions, config.name);
        return CONTINUE;
      },
      close() {
        channel.close();
      },
    };
  },
});

export default grpcTransform;
