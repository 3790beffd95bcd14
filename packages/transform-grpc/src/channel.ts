/**
 * The connection to one policy server: a gRPC client made once, at `create()`, with plaintext,
 * TLS or mutual-TLS credentials, whose calls carry a deadline and end in a `ProxyError` (502)
 * on any failure.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { credentials, status as GrpcStatus, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { ConfigError, ErrorCodes, ProxyError } from '@proxy/core';
import type { GrpcTlsConfig } from './config.js';
import { transformService } from './service.js';

/** Reads a PEM file of the `tls` block, relative to the config's directory. */
async function readPem(field: 'ca_cert' | 'cert' | 'key', file: string, configDir: string): Promise<Buffer> {
  const path = resolve(configDir, file);
  try {
    return await readFile(path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new ConfigError([{ path: `tls.${field}`, message: `cannot read ${path} (${why})` }]);
  }
}

/** The channel credentials the `tls` block asks for. */
export async function channelCredentials(tls: GrpcTlsConfig, configDir: string): Promise<ChannelCredentials> {
  if (!tls.enabled) return credentials.createInsecure();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new ConfigError([{ path: tls.cert === undefined ? 'tls.cert' : 'tls.key', message: 'cert and key are set together (mutual TLS)' }]);
  }
  const ca = tls.ca_cert === undefined ? null : await readPem('ca_cert', tls.ca_cert, configDir);
  const cert = tls.cert === undefined ? null : await readPem('cert', tls.cert, configDir);
  const key = tls.key === undefined ? null : await readPem('key', tls.key, configDir);
  try {
    return credentials.createSsl(ca, key, cert);
  } catch (err) {
    // Malformed PEM: grpc-js parses it here, so the config is refused at load.
    throw new ConfigError([{ path: 'tls', message: `invalid certificate or key: ${err instanceof Error ? err.message : String(err)}` }]);
  }
}

/** A unary method of the generated client. */
type Unary = (request: unknown, options: { deadline: Date }, callback: (err: ServiceError | null, response?: unknown) => void) => unknown;

/** One policy server's client. */
export class PolicyChannel {
  readonly #client: Client;
  readonly #server: string;
  readonly #timeoutMs: number;

  /** `server`: the instance name, for errors. Throws a `ConfigError` for a target gRPC cannot parse. */
  constructor(server: string, target: string, creds: ChannelCredentials, timeoutMs: number) {
    this.#server = server;
    this.#timeoutMs = timeoutMs;
    try {
      this.#client = new (transformService().Client)(target, creds);
    } catch (err) {
      throw new ConfigError([{ path: 'target', message: `invalid gRPC target ${JSON.stringify(target)}: ${err instanceof Error ? err.message : String(err)}` }]);
    }
  }

  /**
   * Connects, waiting at most `ms`; true once connected. grpc-js otherwise connects on the first
   * call, so a pipeline built with this awaited has its channel up before it serves (at startup
   * and on reload) and its first request does not pay for the connection.
   */
  connect(ms: number): Promise<boolean> {
    return new Promise((resolvePromise) => {
      this.#client.waitForReady(new Date(Date.now() + ms), (err) => resolvePromise(err === undefined || err === null));
    });
  }

  /** Calls `method`; rejects with a `ProxyError` (502) on a gRPC error or when the deadline passes. */
  call<Reply>(method: 'TransformRequest' | 'TransformResponse', request: unknown): Promise<Reply> {
    const unary = (this.#client as unknown as Record<string, Unary>)[method]!;
    return new Promise((resolvePromise, rejectPromise) => {
      unary.call(this.#client, request, { deadline: new Date(Date.now() + this.#timeoutMs) }, (err, response) => {
        if (err === null && response !== undefined) resolvePromise(response as Reply);
        else rejectPromise(this.#failure(method, err));
      });
    });
  }

  close(): void {
    this.#client.close();
  }

  #failure(method: string, err: ServiceError | null): ProxyError {
    const code = err?.code ?? GrpcStatus.UNKNOWN;
    const name = GrpcStatus[code] ?? String(code);
    const deadline = code === GrpcStatus.DEADLINE_EXCEEDED;
    const detail = deadline ? `no answer within ${this.#timeoutMs} ms` : (err?.details ?? 'no response');
    return new ProxyError(ErrorCodes.TRANSFORM_FAILED, `grpc policy server "${this.#server}" ${method} failed: ${name}: ${detail}`, {
      status: 502,
      reason: deadline ? 'grpc_deadline_exceeded' : 'grpc_error',
      cause: err ?? undefined,
    });
  }
}
