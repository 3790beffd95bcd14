import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { createProxyRequest, HeaderList, nextRequestId } from '@proxy/core';
import type { AuditRecord, BudgetLease, Pipeline, ProxyRequest } from '@proxy/core';
import type { BodyBudgets, ClientLimits } from './client-limits.js';
import { ExchangeAudit } from './exchange-audit.js';
import { stripHopByHop } from './hop-by-hop.js';
import type { HttpMetrics } from './http-metrics.js';
import { isRefusal, type DedicatedUpstream, type Ingress, type Refusal, type Route } from './ingress.js';
import type { UpstreamFailure } from './upstream-failure.js';

/** Status recorded when the client left before any response was sent (nginx's convention). */
export const STATUS_CLIENT_CLOSED = 499;

/** What the engine needs from itself to run one request. */
export interface ExchangeHost {
  /** The pipeline new requests start on (undefined until the first `setPipeline`). */
  readonly pipeline: Pipeline | undefined;
  readonly maxRequestBodyBytes: number;
  /** What one client may take (timeouts, head size, buffered bytes). */
  readonly limits: ClientLimits;
  /** The memory pools buffered bodies are counted against. */
  readonly budgets: BodyBudgets;
  readonly onAudit: (record: AuditRecord) => void;
  /** The HTTP server and client instruments every exchange records into. */
  readonly metrics: HttpMetrics;
  /** Called when an exchange (a request, or a connection's host-level decision) starts, so that shutdown can wait for it. */
  readonly admit: () => void;
  /** Called once per admitted exchange when it is complete, after its audit record. */
  readonly retire: () => void;
}

/**
 * One request's journey through the engine: its `ProxyRequest` (once its destination is
 * known), its audit record, its metrics and its hold on the pipeline it started with.
 * `complete()` emits the audit record and the request's measurements exactly once and
 * releases the pipeline, whatever path the request took.
 */
export class Exchange {
  /** The request id, also in the audit record and the operational log lines. */
  readonly id: string;
  readonly audit: ExchangeAudit;
  readonly ingress: Ingress;
  /**
   * The destination as the listener worked it out, and the request view; undefined when the
   * engine refused the request outright. The request's `host` and `port` are what is dialled:
   * they differ from the route's only when a transform re-targeted the request.
   */
  readonly route: Route | undefined;
  readonly request: ProxyRequest | undefined;
  readonly pipeline: Pipeline | undefined;
  /** The client's body stream, forwarded as is unless a transform buffered the body. */
  readonly bodyStream: Readable | null;
  /** The memory the request body holds while buffered; given back when the exchange completes. */
  readonly #requestLease: BudgetLease | undefined;
  /** The memory a response transform's buffered body holds, once one reads it. */
  #responseLease: BudgetLease | undefined;
  readonly #host: ExchangeHost;
  readonly #release: () => void;
  readonly #method: string;
  /** `performance.now()` when the request arrived. */
  readonly #startedAt = performance.now();
  /** `performance.now()` when the upstream call was dispatched; undefined until then. */
  #upstreamStartedAt: number | undefined;
  #upstreamRecorded = false;
  #completed = false;

  private constructor(
    id: string,
    host: ExchangeHost,
    ingress: Ingress,
    method: string,
    audit: ExchangeAudit,
    prepared: { route: Route; request: ProxyRequest; pipeline: Pipeline } | undefined,
    bodyStream: Readable | null,
    requestLease?: BudgetLease,
  ) {
    this.id = id;
    this.#requestLease = requestLease;
    this.#host = host;
    this.#method = method;
    this.bodyStream = bodyStream;
    this.ingress = ingress;
    this.audit = audit;
    this.route = prepared?.route;
    this.request = prepared?.request;
    this.pipeline = prepared?.pipeline;
    this.#release = prepared?.pipeline.enter() ?? noop;
    if (this.pipeline?.generation !== undefined) audit.configGeneration(this.pipeline.generation);
    host.metrics.requestStarted();
    host.admit();
  }

  /**
   * Starts the exchange of a request that just arrived: works out its destination through the
   * listener's ingress and builds the request view the pipeline runs on. The result is refused
   * (with its audit record started) when the destination is missing or ambiguous, the path is
   * unsafe, or no pipeline is installed.
   */
  static begin(
    host: ExchangeHost,
    ingress: Ingress,
    req: IncomingMessage,
    target: string,
    bodyStream: Readable | null,
  ): { exchange: Exchange; refusal?: Refusal } {
    const receivedAt = Date.now();
    const id = nextRequestId();
    const clientAddress = clientAddressOf(req.socket);
    const routed = ingress.route(req, target);
    const pipeline = host.pipeline;
    if (isRefusal(routed) || pipeline === undefined) {
      const refusal = isRefusal(routed) ? routed : { status: 503, reason: 'no_pipeline', message: 'proxy is not ready' };
      const audit = new ExchangeAudit({
        id,
        host: isRefusal(routed) ? (routed.host ?? '') : routed.host,
        port: isRefusal(routed) ? 0 : routed.port,
        method: req.method ?? '',
        path: isRefusal(routed) ? pathOf(target) : routed.path,
        clientAddress,
        mode: ingress.mode,
        sni: ingress.sni,
        tunnel: ingress.tunnel,
        receivedAt,
      });
      audit.rejected('engine', refusal.reason);
      // A refused request ran on no pipeline; its record still names the configuration in force.
      if (pipeline?.generation !== undefined) audit.configGeneration(pipeline.generation);
      return { exchange: new Exchange(id, host, ingress, req.method ?? '', audit, undefined, null), refusal };
    }

    const headers = HeaderList.fromRaw(req.rawHeaders);
    const lease = bodyStream === null ? undefined : host.budgets.forRequest(req.socket);
    const request = createProxyRequest({
      id,
      method: req.method ?? 'GET',
      scheme: routed.scheme,
      host: routed.host,
      port: routed.port,
      path: routed.path,
      query: routed.query,
      headers,
      clientAddress,
      mode: ingress.mode,
      sni: ingress.sni,
      tunnel: ingress.tunnel,
      bodyStream,
      maxBodyBytes: host.maxRequestBodyBytes,
      ...(lease === undefined ? {} : { bodyBudget: lease }),
      maxHeadBytes: host.limits.maxHeadBytes,
      receivedAt,
    });
    // The body took its framing (Content-Length, chunked) from the headers as received; the
    // pipeline sees them as they will be forwarded.
    stripHopByHop(headers);
    ingress.rewriteHeaders(headers, routed, clientAddress);
    const exchange = new Exchange(id, host, ingress, request.method, new ExchangeAudit(request), { route: routed, request, pipeline }, bodyStream, lease);
    return { exchange };
  }

  /** The budget a response transform's buffered body is counted against (taken on first use). */
  responseBudget(): BudgetLease {
    this.#responseLease ??= this.#host.budgets.forResponse();
    return this.#responseLease;
  }

  /**
   * The upstream connection the ingress brought (a tunnel's), unless a transform re-targeted
   * the request elsewhere: such a request is dialled anew through the guard.
   */
  get dedicatedUpstream(): DedicatedUpstream | undefined {
    const route = this.route;
    const request = this.request;
    if (route === undefined || request === undefined) return undefined;
    return request.host === route.host && request.port === route.port && request.scheme === route.scheme ? this.ingress.upstream : undefined;
  }

  /** True once the audit record has been emitted. */
  get completed(): boolean {
    return this.#completed;
  }

  /** The upstream call is being dispatched now. */
  upstreamStarted(): void {
    this.#upstreamStartedAt = performance.now();
  }

  /** The upstream's response head arrived. */
  upstreamAnswered(): void {
    this.#recordUpstream(undefined);
  }

  /**
   * The upstream call failed before its response head. A request the guard refused to dial
   * (no `errorType`) is a policy decision, not a failed call, and is not recorded.
   */
  upstreamFailed(failure: UpstreamFailure): void {
    if (failure.errorType !== undefined) this.#recordUpstream(failure.errorType);
  }

  /** Emits the audit record with the final status (once), records the request's metrics and releases the pipeline. */
  complete(statusCode: number): void {
    if (this.#completed) return;
    this.#completed = true;
    this.#release();
    this.#requestLease?.releaseAll();
    this.#responseLease?.releaseAll();
    this.#recordCompletion(statusCode);
    try {
      this.#host.onAudit(this.audit.finish(statusCode, Date.now()));
    } finally {
      this.#host.retire();
    }
  }

  #recordUpstream(errorType: UpstreamFailure['errorType']): void {
    // The destination dialled: the route's, or the one the pipeline re-targeted the request to.
    const target = this.request;
    if (this.#upstreamRecorded || this.#upstreamStartedAt === undefined || target === undefined) return;
    this.#upstreamRecorded = true;
    this.#host.metrics.upstreamCall({
      scheme: target.scheme,
      host: target.host,
      port: target.port,
      seconds: secondsSince(this.#upstreamStartedAt),
      errorType,
      tokenResult: this.audit.tokenResult(),
    });
  }

  /**
   * Records the served request. A request refused because a transform could not obtain the
   * credential for its upstream call (`token_result` other than `ok`) is also recorded as an
   * upstream call that never left, so one histogram shows upstream and credential failures side
   * by side (the aws-outbound-jwt-proxy convention).
   */
  #recordCompletion(statusCode: number): void {
    const seconds = secondsSince(this.#startedAt);
    const route = this.route;
    const tokenResult = this.audit.tokenResult();
    if (this.#upstreamStartedAt === undefined && route !== undefined && tokenResult !== undefined && tokenResult !== 'ok') {
      this.#host.metrics.upstreamCall({ scheme: route.scheme, host: route.host, port: route.port, seconds, tokenResult });
    }
    this.#host.metrics.requestFinished(this.#method, statusCode, seconds);
  }
}

/** Seconds since a `performance.now()` mark. */
function secondsSince(mark: number): number {
  return (performance.now() - mark) / 1000;
}

/** The client's IP; an IPv4-mapped IPv6 address (dual-stack listener) is written as IPv4. */
export function clientAddressOf(socket: { readonly remoteAddress?: string | undefined }): string {
  const address = socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** The path part of a request target, for the audit record of a refused request. */
function pathOf(target: string): string {
  const withoutScheme = target.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  const end = withoutScheme.search(/[?#]/);
  return end < 0 ? withoutScheme : withoutScheme.slice(0, end);
}

function noop(): void {}
