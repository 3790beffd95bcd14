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
 * stubs itself, and closes the transform when Fastify closes.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditRecord } from './audit.js';
import type { Decision, TransformDefinition, TransformEnv } from './transform.js';

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
}

/** Turns a transform definition into a Fastify plugin whose options are the transform's config. */
export function transformPlugin<Config>(
  definition: TransformDefinition<Config>,
  options: TransformPluginOptions = {},
): FastifyPluginAsync<Config & Record<never, never>> {
  void definition;
  void options;
  throw new Error('TODO(core): transformPlugin');
}

/** Sends a reject or respond decision as the reply (plain-text body for rejects). */
export function sendDecision(reply: FastifyReply, decision: Exclude<Decision, { action: 'continue' }>): FastifyReply {
  void reply;
  void decision;
  throw new Error('TODO(core): sendDecision');
}
