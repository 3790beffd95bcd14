import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { ConfigError, ProxyError } from '@proxy/core';
import type { Logger } from '@proxy/core';
import { parseListenAddress, type ListenAddress } from '@proxy/engine/config';
import { HEALTH_PATH } from './metrics-server.js';
import type { ReloadOutcome, ReloadStatus } from './reloader.js';

/** `GET`/`HEAD /healthz`, the one request answered without the key. */
function isHealthCheck(method: string, url: string): boolean {
  return (method === 'GET' || method === 'HEAD') && url.split('?')[0] === HEALTH_PATH;
}

/** What the management API acts on. */
export interface ManagementActions {
  reload(): Promise<ReloadOutcome>;
  status(): ReloadStatus | Promise<ReloadStatus>;
}

/** Options of {@link ManagementServer}. */
export interface ManagementServerOptions {
  /** `management.listen`. */
  readonly listen: string;
  /** The bearer key clients must present (never logged). */
  readonly apiKey: string;
  readonly logger: Logger;
}

/**
 * The management API on its own Fastify instance, apart from the proxy's listeners:
 * `POST /v1/reload` and `GET /v1/status`, plus `GET /healthz` (200 `ok`, no key needed, as on
 * the metrics listener). Every other request is authenticated first (a bearer key
 * compared in constant time on SHA-256 digests), so an unauthenticated client learns nothing
 * about methods or paths: 401 comes before 405 and 404.
 */
export class ManagementServer {
  readonly #address: ListenAddress;
  readonly #app: FastifyInstance;

  /** Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) for a bad listen address. */
  constructor(options: ManagementServerOptions, actions: ManagementActions) {
    this.#address = parseListenAddress(options.listen, 'management.listen');
    const expected = digest(options.apiKey);
    const app = Fastify({ logger: false, bodyLimit: 1024 });
    // Request bodies mean nothing here: any content type is accepted and ignored.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, payload, done) => {
      payload.resume();
      payload.once('end', () => done(null));
    });
    app.addHook('onRequest', async (req, reply) => {
      // Liveness needs no key, like the metrics listener's: it tells only that the process serves.
      if (isHealthCheck(req.method, req.url)) return undefined;
      const header = req.headers.authorization ?? '';
      const token = /^Bearer (.+)$/i.exec(header)?.[1] ?? '';
      // Returning the sent reply ends the request here: no handler, no method check.
      if (!timingSafeEqual(digest(token), expected)) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' });
      return undefined;
    });
    app.get(HEALTH_PATH, async (_req, reply) => reply.code(200).type('text/plain; charset=utf-8').send('ok\n'));
    app.all('/v1/reload', async (req, reply) => {
      if (req.method !== 'POST') return methodNotAllowed(reply, 'POST');
      try {
        const outcome = await actions.reload();
        return await reply.code(200).send({ status: 'ok', config_generation: outcome.generation, ...(outcome.ignored.length === 0 ? {} : { ignored: outcome.ignored }) });
      } catch (err) {
        if (err instanceof ConfigError) {
          return reply.code(422).send({
            error: err.message,
            errors: err.issues.map((i) => ({ file: i.file, line: i.line, column: i.column, field: i.path, message: i.message })),
          });
        }
        if (err instanceof ProxyError) return reply.code(422).send({ error: err.message });
        options.logger.error({ error_class: err instanceof Error ? err.name : typeof err }, 'configuration reload failed unexpectedly');
        return reply.code(500).send({ error: 'internal error' });
      }
    });
    app.all('/v1/status', async (req, reply) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(reply, 'GET, HEAD');
      return reply.code(200).send(await actions.status());
    });
    app.setNotFoundHandler(async (_req, reply) => reply.code(404).send({ error: 'not found' }));
    this.#app = app;
  }

  /** Opens the listener; resolves with the bound address. */
  async listen(): Promise<{ address: string; port: number }> {
    await this.#app.ready();
    const server = this.#app.server;
    // Node's own listen: without a host (`:9092`) it binds every interface, IPv6 included where available.
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#address.host, port: this.#address.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new Error('management listener has no TCP address');
    return { address: bound.address, port: bound.port };
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    return this.#app.close();
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function methodNotAllowed(reply: FastifyReply, allow: string): FastifyReply {
  return reply.code(405).header('allow', allow).send({ error: 'method not allowed' });
}
