/**
 * `aws_auth`: the workload's AWS SDK signs with placeholder credentials; the proxy reads the
 * region and service from that SigV4 signature (the `Authorization` header, or the `X-Amz-*`
 * parameters of a presigned URL), checks them against `allowed_regions` and
 * `allowed_services`, and signs the request again with the real credentials, replacing every
 * trace of the placeholder one. Failures answer `{"error":"aws_auth","reason":"<reason>"}`
 * and the request is not forwarded.
 */
import { createHash } from 'node:crypto';
import {
  CONTINUE,
  compileRules,
  defineTransform,
  readSignedBody,
  rejectJson,
  type AnnotationValue,
  type Decision,
  type ProxyRequest,
  type Trace,
  type TransformDefinition,
} from '@proxy/core';
import type { AwsCredentialIdentity } from '@smithy/types';
import { awsAuthSchema, type AwsAuthConfig, type AwsAuthInput } from './config.js';
import { parseInboundSignature } from './inbound.js';

export type { AwsAuthConfig, AwsAuthInput, WorkloadIdentityConfig } from './config.js';
export { awsAuthSchema } from './config.js';
export { parseInboundSignature } from './inbound.js';
export type { HeaderSignature, InboundScope, InboundSignature, QuerySignature } from './inbound.js';

/** The config name, also the `error` field of every error body. */
const NAME = 'aws_auth';

/** Every reason this transform refuses a request with (status in the README). */
export const AwsAuthReasons = {
  MISSING_SIGV4: 'missing_sigv4',
  REGION_NOT_ALLOWED: 'region_not_allowed',
  SERVICE_NOT_ALLOWED: 'service_not_allowed',
  CREDENTIAL_UNAVAILABLE: 'credential_unavailable',
  STREAMING_PAYLOAD_NOT_ALLOWED: 'streaming_payload_not_allowed',
  SIGNED_CHUNKS_UNSUPPORTED: 'signed_chunks_unsupported',
  BODY_TRUNCATED: 'body_truncated',
  CHUNKED_BODY_NOT_ALLOWED: 'chunked_body_not_allowed',
  BODY_READ_FAILED: 'body_read_failed',
  BODY_MISSING: 'body_missing',
  SIGNING_FAILED: 'signing_failed',
} as const;

/** The streaming payload the proxy can sign for: aws-chunked without chunk signatures. */
const STREAMING_UNSIGNED = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';

/** Refuses with iron-proxy's error body and the contextual annotations. */
function refuse(trace: Trace, status: number, reason: string, annotations: Readonly<Record<string, AnnotationValue>> = {}): Decision {
  for (const [key, value] of Object.entries(annotations)) trace.annotate(key, value);
  return rejectJson(status, reason, { error: NAME, reason });
}

/** The `aws_auth` transform definition. */
export const awsAuthTransform: TransformDefinition<AwsAuthConfig, AwsAuthInput> = defineTransform<AwsAuthConfig, AwsAuthInput>({
  name: NAME,
  schema: awsAuthSchema,
  async create(config, env) {
    const scope = compileRules(config.rules);
    const regions = new Set(config.allowed_regions);
    const services = new Set(config.allowed_services);
    // The AWS SDK's credential chain and SigV4 signer are loaded by the first aws_auth transform
    // created, not by every proxy whose registry lists the transform.
    const [{ openCredentials }, { resignHeaders, resignQuery, UNSIGNED_PAYLOAD }] = await Promise.all([import('./credentials.js'), import('./resign.js')]);
    const credentials = await openCredentials(config, env);

    /**
     * The payload hash to sign a header signature with, reading the body when it is hashed;
     * or the refusal. With `unsigned_payload`, `UNSIGNED-PAYLOAD`, or the workload's
     * `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (the body is aws-chunked and must stay declared so).
     */
    const payloadHash = async (request: ProxyRequest, trace: Trace): Promise<string | Decision> => {
      const declared = request.headers.get('x-amz-content-sha256') ?? '';
      if (declared.startsWith('STREAMING-') && declared !== STREAMING_UNSIGNED) {
        // Each chunk's signature chains from the placeholder signature: it cannot be re-signed
        // without rewriting the stream.
        return refuse(trace, 400, AwsAuthReasons.SIGNED_CHUNKS_UNSUPPORTED, { payload: declared });
      }
      if (config.unsigned_payload) return declared === STREAMING_UNSIGNED ? STREAMING_UNSIGNED : UNSIGNED_PAYLOAD;
      if (declared === STREAMING_UNSIGNED) return refuse(trace, 400, AwsAuthReasons.STREAMING_PAYLOAD_NOT_ALLOWED, { payload: declared });
      const body = await readSignedBody(request, config.allow_chunked_body);
      if ('refusal' in body) return refuse(trace, body.refusal.status, body.refusal.reason, body.refusal.annotations);
      if (body.chunked) {
        // Forwarded with a Content-Length: the upstream gets exactly the bytes that were hashed.
        request.body.replace(body.bytes);
        env.logger.warn({ host: request.host }, 'aws_auth: signed a chunked request body whose length the client never declared (allow_chunked_body)');
      }
      return createHash('sha256').update(body.bytes).digest('hex');
    };

    return {
      async onRequest(request, trace) {
        // TLS passed through unread has no headers to re-sign: the placeholder signature goes
        // out as it is, and AWS refuses it.
        if (request.mode === 'sni-only') return CONTINUE;
        if (!scope.matches(request)) return CONTINUE;

        const inbound = parseInboundSignature(request.headers, request.query);
        if (inbound === undefined) return refuse(trace, 400, AwsAuthReasons.MISSING_SIGV4);
        trace.annotate('service', inbound.service);
        trace.annotate('region', inbound.region);
        if (regions.size > 0 && !regions.has(inbound.region)) return refuse(trace, 403, AwsAuthReasons.REGION_NOT_ALLOWED);
        if (services.size > 0 && !services.has(inbound.service)) return refuse(trace, 403, AwsAuthReasons.SERVICE_NOT_ALLOWED);

        let real: AwsCredentialIdentity;
        try {
          real = await credentials.get();
        } catch (err) {
          // The message names the failing field or provider and says why; never a value.
          const error = err instanceof Error ? err.message : String(err);
          return refuse(trace, 502, AwsAuthReasons.CREDENTIAL_UNAVAILABLE, { credential: credentials.kind, error });
        }

        let hash = '';
        if (inbound.kind === 'header') {
          const payload = await payloadHash(request, trace);
          if (typeof payload !== 'string') return payload;
          hash = payload;
        }

        let injected: string[];
        try {
          injected =
            inbound.kind === 'header'
              ? (await resignHeaders(request, inbound, real, hash, new Date(env.clock.now()))).map((name) => `header:${name}`)
              : (await resignQuery(request, inbound, real)).map((name) => `query:${name}`);
        } catch (err) {
          env.logger.error({ error_class: err instanceof Error ? err.name : typeof err, service: inbound.service }, 'aws_auth: signing failed');
          return refuse(trace, 500, AwsAuthReasons.SIGNING_FAILED);
        }
        trace.annotate('injected', injected);
        return CONTINUE;
      },
      close() {
        credentials.close();
      },
    };
  },
});

export default awsAuthTransform;
