import { AuditBuilder, createProxyRequest, HeaderList, nextRequestId, reject } from '@proxy/core';
import type { Decision, ProxyRequest, RequestMode, TunnelInfo } from '@proxy/core';
import type { ExchangeHost } from './exchange.js';
import { describeUpstreamFailure, type UpstreamFailure } from './upstream-failure.js';

/** A connection known only by where it goes: a tunnel being opened, or TLS passed through unread. */
export interface ConnectionTarget {
  readonly mode: RequestMode;
  /** The destination host in normal form; empty when the client never named one usably. */
  readonly host: string;
  readonly port: number;
  /** The TLS server name the client sent, if any. */
  readonly sni: string | undefined;
  readonly tunnel: TunnelInfo | undefined;
  readonly clientAddress: string;
}

/**
 * The host-level decision on one connection and its audit record: the pipeline runs on a
 * host-only request (method, path and query empty, no headers, no body), so rules that name
 * methods or paths do not match it. Emits at most one audit record.
 */
export class ConnectionExchange {
  readonly id: string;
  readonly request: ProxyRequest;
  readonly audit: AuditBuilder;
  readonly #host: ExchangeHost;
  #settled = false;

  constructor(host: ExchangeHost, target: ConnectionTarget) {
    this.id = nextRequestId();
    this.#host = host;
    this.request = createProxyRequest({
      id: this.id,
      method: '',
      scheme: 'https',
      host: target.host,
      port: target.port,
      path: '',
      query: '',
      headers: HeaderList.from([]),
      clientAddress: target.clientAddress,
      mode: target.mode,
      ...(target.sni === undefined ? {} : { sni: target.sni }),
      ...(target.tunnel === undefined ? {} : { tunnel: target.tunnel }),
      bodyStream: null,
      maxBodyBytes: 0,
    });
    this.audit = new AuditBuilder(this.request);
    // The configuration in force when the connection arrived; `decide()` names the one it ran on.
    const generation = host.pipeline?.generation;
    if (generation !== undefined) this.audit.configGeneration(generation);
    host.admit();
  }

  /**
   * Runs the current pipeline on the host-only request. The hold on the pipeline ends with
   * the decision, so a long-lived connection never delays the close of a replaced pipeline.
   */
  async decide(): Promise<Decision> {
    const pipeline = this.#host.pipeline;
    if (pipeline === undefined) {
      this.audit.rejected('engine', 'no_pipeline');
      return reject(503, 'no_pipeline', 'proxy is not ready');
    }
    const release = pipeline.enter();
    if (pipeline.generation !== undefined) this.audit.configGeneration(pipeline.generation);
    try {
      return this.request.mode === 'tunnel'
        ? await pipeline.runTunnel(this.request, this.audit)
        : await pipeline.runRequest(this.request, this.audit);
    } catch {
      // The runner turns transform failures into decisions; anything else fails closed.
      this.audit.failed('engine_error', 'engine');
      return reject(500, 'engine_error', 'internal proxy error');
    } finally {
      release();
    }
  }

  /** The engine refuses the connection itself: records `reason` and emits the record with `status`. */
  refuse(status: number, reason: string): void {
    this.audit.rejected('engine', reason);
    this.complete(status);
  }

  /** The upstream could not be dialled: records why, emits the record, and returns the failure. */
  failUpstream(err: unknown): UpstreamFailure {
    const failure = describeUpstreamFailure(err);
    if (failure.rejectedBy !== undefined) this.audit.rejected(failure.rejectedBy, failure.reason);
    else this.audit.failed(failure.reason);
    this.complete(failure.status);
    return failure;
  }

  /** Emits the audit record with `status` (once). */
  complete(status: number): void {
    if (this.#settled) return;
    this.#settled = true;
    try {
      this.#host.onAudit(this.audit.finish(status, Date.now()));
    } finally {
      this.#host.retire();
    }
  }

  /** Ends the exchange without a record of its own: the connection's requests carry the decision. */
  dismiss(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#host.retire();
  }
}
