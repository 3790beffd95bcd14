import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCodes, ProxyError } from '@proxy/core';
import { parseListenAddress, type ListenAddress } from '@proxy/engine/config';

/** Where the metrics endpoint listens and the path it serves the scrape on. */
export interface MetricsServerOptions {
  /** `host:port`, `:port` (every interface) or `[ipv6]:port`. */
  readonly listen: string;
  /** URL path of the Prometheus scrape, starting with `/` (never `/healthz`). */
  readonly path: string;
  /** The setting named in errors about `listen` and `path` (default `metrics`: `metrics.listen`, `metrics.path`). */
  readonly setting?: string;
  /** What keeps the proxy from being ready: the secrets it has no value for (read at each `/readyz`). */
  readonly secretsState?: () => SecretsState | Promise<SecretsState>;
}

/** The secrets without a value, by label. */
export interface SecretsState {
  /** Still on their first fetch. */
  readonly pending: readonly string[];
  /** Whose fetches have all failed so far. */
  readonly unavailable: readonly string[];
}

/** The path that answers 200 while the process serves. */
export const HEALTH_PATH = '/healthz';

/** The path that answers 200 when every secret is available, 503 listing the pending and unavailable ones otherwise. */
export const READY_PATH = '/readyz';

/** Writes the scrape response (the Prometheus exporter's request handler). */
export type ScrapeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The metrics listener: its own `node:http` server, apart from the proxy's listeners, so that
 * scrapes never reach the pipeline. `GET`/`HEAD` on `path` -> the scrape; on `/healthz` -> 200
 * `ok` (liveness); on `/readyz` -> 200 `{"ready":true}`, or 503 with the labels of the secrets
 * still on their first fetch (`secrets_pending`) and of those that could not be fetched
 * (`secrets_unavailable`), each key present only when its list is not empty; any other path -> 404; another method on
 * those paths -> 405.
 */
export class MetricsServer {
  readonly #address: ListenAddress;
  readonly #path: string;
  readonly #server: Server;
  readonly #secretsState: () => SecretsState | Promise<SecretsState>;

  /** Throws a `ProxyError` (`PROXY_ERR_CONFIG_INVALID`) for a bad listen address or path. */
  constructor(options: MetricsServerOptions, scrape: ScrapeHandler) {
    const setting = options.setting ?? 'metrics';
    this.#address = parseListenAddress(options.listen, `${setting}.listen`);
    if (!options.path.startsWith('/') || options.path === HEALTH_PATH || options.path === READY_PATH) {
      throw new ProxyError(ErrorCodes.CONFIG_INVALID, `${setting}.path: "${options.path}" must start with "/" and must not be ${HEALTH_PATH} or ${READY_PATH}`);
    }
    this.#path = options.path;
    this.#secretsState = options.secretsState ?? (() => ({ pending: [], unavailable: [] }));
    this.#server = createServer((req, res) => {
      this.#handle(req, res, scrape).catch(() => {
        if (!res.headersSent) plain(res, 500, 'internal error\n');
        else res.destroy();
      });
    });
  }

  /** Opens the listener; resolves with the bound address. */
  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#address.host, port: this.#address.port }, () => {
        this.#server.off('error', reject);
        const bound = this.#server.address() as AddressInfo;
        resolve({ address: bound.address, port: bound.port });
      });
    });
  }

  /** Stops listening and closes every connection, idle keep-alive scrapers included. */
  close(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    return closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse, scrape: ScrapeHandler): Promise<void> {
    const path = pathOf(req.url);
    if (path !== this.#path && path !== HEALTH_PATH && path !== READY_PATH) return plain(res, 404, 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return plain(res, 405, 'method not allowed\n');
    }
    if (path === HEALTH_PATH) return plain(res, 200, 'ok\n');
    if (path === READY_PATH) {
      const { pending, unavailable } = await this.#secretsState();
      const ready = pending.length === 0 && unavailable.length === 0;
      const body = {
        ready,
        ...(pending.length === 0 ? {} : { secrets_pending: pending }),
        ...(unavailable.length === 0 ? {} : { secrets_unavailable: unavailable }),
      };
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
      return;
    }
    scrape(req, res);
  }
}

/** The path of a request target (origin-form or absolute-form), without its query. */
function pathOf(target: string | undefined): string {
  try {
    return new URL(target ?? '', 'http://metrics.invalid').pathname;
  } catch {
    return '';
  }
}

function plain(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
