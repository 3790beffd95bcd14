import { ErrorCodes, ProxyError } from '@proxy/core';

/** OTLP transports the audit export speaks. */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;

/** One of {@link OTLP_PROTOCOLS}. */
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** What the audit export is configured with, read from the standard `OTEL_*` variables. */
export interface OtlpAuditSettings {
  /** The collector URL as configured (the logs-specific variable wins), for the startup line. */
  readonly endpoint: string;
  /** The variable `endpoint` came from. */
  readonly endpointVariable: 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT' | 'OTEL_EXPORTER_OTLP_ENDPOINT';
  readonly protocol: OtlpProtocol;
  /** Most records held while the collector is slow or away; later ones are dropped and counted. */
  readonly maxQueueSize: number;
  /** Most records in one export request. */
  readonly maxExportBatchSize: number;
  /** Longest wait before a partial batch is sent, in milliseconds. */
  readonly scheduledDelayMs: number;
}

/** Defaults of the batch processor, as the OpenTelemetry specification gives them. */
const DEFAULTS = { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 1000 };

/**
 * Reads the audit export settings: `undefined` (export off) unless `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`
 * or `OTEL_EXPORTER_OTLP_ENDPOINT` is set, as in iron-proxy. The protocol comes from
 * `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`;
 * the batch bounds from `OTEL_BLRP_MAX_QUEUE_SIZE`, `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE` and
 * `OTEL_BLRP_SCHEDULE_DELAY`. Headers, TLS files, timeout and compression are read by the
 * OpenTelemetry exporter itself from their standard variables. Throws a `ProxyError`
 * (`PROXY_ERR_CONFIG_INVALID`) naming the variable for a value it cannot use.
 */
export function readOtlpAuditSettings(env: Readonly<Record<string, string | undefined>>): OtlpAuditSettings | undefined {
  const logsEndpoint = nonEmpty(env['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT']);
  const endpoint = logsEndpoint ?? nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
  if (endpoint === undefined) return undefined;
  const endpointVariable = logsEndpoint === undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT';
  checkEndpoint(endpoint, endpointVariable);

  const protocolVariable = nonEmpty(env['OTEL_EXPORTER_OTLP_LOGS_PROTOCOL']) === undefined ? 'OTEL_EXPORTER_OTLP_PROTOCOL' : 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL';
  const protocol = nonEmpty(env[protocolVariable]) ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw invalid(`${protocolVariable}: unknown OTLP protocol "${protocol}" (use ${OTLP_PROTOCOLS.join(', ')})`);
  }

  const maxQueueSize = positiveInteger(env, 'OTEL_BLRP_MAX_QUEUE_SIZE', DEFAULTS.maxQueueSize);
  // An unset batch size follows a smaller queue; one set above the queue is a mistake.
  const maxExportBatchSize = positiveInteger(env, 'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', Math.min(DEFAULTS.maxExportBatchSize, maxQueueSize));
  if (maxExportBatchSize > maxQueueSize) {
    throw invalid(`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE (${maxExportBatchSize}) must not exceed OTEL_BLRP_MAX_QUEUE_SIZE (${maxQueueSize})`);
  }
  return {
    endpoint,
    endpointVariable,
    protocol: protocol as OtlpProtocol,
    maxQueueSize,
    maxExportBatchSize,
    scheduledDelayMs: positiveInteger(env, 'OTEL_BLRP_SCHEDULE_DELAY', DEFAULTS.scheduledDelayMs),
  };
}

/** The endpoint with any user and password taken out: what may be logged. */
export function loggableEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  url.username = '';
  url.password = '';
  return url.toString();
}

function checkEndpoint(endpoint: string, variable: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw invalid(`${variable}: not a URL: "${endpoint}" (e.g. http://collector:4318)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`${variable}: the collector URL must start with http:// or https:// (got ${url.protocol})`);
  }
}

function positiveInteger(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    throw invalid(`${name}: must be a positive integer (got "${raw}")`);
  }
  return Number(raw);
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

function invalid(message: string): ProxyError {
  return new ProxyError(ErrorCodes.CONFIG_INVALID, message);
}
