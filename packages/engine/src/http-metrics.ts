import type { Attributes, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';

/** How an upstream call failed, as the `error.type` attribute says it. */
export type UpstreamErrorType = 'timeout' | 'connection_refused' | 'unknown';

/** What is known of one upstream call once it answered or failed. */
export interface UpstreamCallOutcome {
  readonly scheme: 'http' | 'https';
  /** The host dialled, in normal form (an IPv6 literal without brackets). */
  readonly host: string;
  readonly port: number;
  readonly seconds: number;
  /** Set only when the call failed. */
  readonly errorType?: UpstreamErrorType | undefined;
  /** What a transform said about the credential it obtained for the call (`token_result` annotation). */
  readonly tokenResult?: string | undefined;
}

/** Instrument names (OpenTelemetry HTTP semantic conventions); a Prometheus exporter maps dots to underscores. */
export const HTTP_METRIC_NAMES = Object.freeze({
  serverRequestDuration: 'http.server.request.duration',
  serverActiveRequests: 'http.server.active_requests',
  clientRequestDuration: 'http.client.request.duration',
});

/** The methods recorded as themselves; any other is `_OTHER` (semantic conventions). */
const STANDARD_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** Histogram buckets in seconds, as the HTTP semantic conventions advise. */
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

const DEFAULT_PORTS: Readonly<Record<UpstreamCallOutcome['scheme'], number>> = { http: 80, https: 443 };

/**
 * The engine's HTTP instruments. No attribute ever carries a path, a query or a header: the
 * server side is labelled by method and status, the client side by the destination.
 */
export class HttpMetrics {
  readonly #serverDuration: Histogram;
  readonly #activeRequests: UpDownCounter;
  readonly #clientDuration: Histogram;

  constructor(meter: Meter) {
    this.#serverDuration = meter.createHistogram(HTTP_METRIC_NAMES.serverRequestDuration, {
      description: 'Duration of HTTP requests the proxy served, from arrival until the response ended.',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
    this.#activeRequests = meter.createUpDownCounter(HTTP_METRIC_NAMES.serverActiveRequests, {
      description: 'HTTP requests the proxy is serving right now.',
      unit: '{request}',
    });
    this.#clientDuration = meter.createHistogram(HTTP_METRIC_NAMES.clientRequestDuration, {
      description: 'Duration of upstream requests, from dispatch until the response head arrived or the call failed.',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
  }

  /** A request arrived: it counts as active until {@link requestFinished}. */
  requestStarted(): void {
    this.#activeRequests.add(1);
  }

  /** The request's response ended (or was abandoned) with `status` after `seconds`. */
  requestFinished(method: string, status: number, seconds: number): void {
    this.#activeRequests.add(-1);
    this.#serverDuration.record(seconds, { 'http.request.method': methodAttribute(method), 'http.response.status_code': status });
  }

  /** Records one upstream call. */
  upstreamCall(outcome: UpstreamCallOutcome): void {
    this.#clientDuration.record(outcome.seconds, upstreamAttributes(outcome));
  }
}

/** The `http.request.method` value of `method`: one of the nine standard methods, else `_OTHER`. */
export function methodAttribute(method: string): string {
  return STANDARD_METHODS.has(method) ? method : '_OTHER';
}

/** The attributes of an upstream call: the port only when it is not the scheme's default, `error.type` only on failure. */
export function upstreamAttributes(outcome: Omit<UpstreamCallOutcome, 'seconds'>): Attributes {
  const attributes: Attributes = { 'server.address': outcome.host };
  if (outcome.port !== DEFAULT_PORTS[outcome.scheme]) attributes['server.port'] = outcome.port;
  if (outcome.errorType !== undefined) attributes['error.type'] = outcome.errorType;
  if (outcome.tokenResult !== undefined) attributes['token.result'] = outcome.tokenResult;
  return attributes;
}
