import { SeverityNumber, type MeterProvider } from '@opentelemetry/api';
import { parseKeyPairsIntoRecord } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { AuditRecord, SecretRedactor } from '@proxy/core';
import type { Logger as PinoLogger } from 'pino';
import { loggableEndpoint, type OtlpAuditSettings, type OtlpProtocol } from './otlp-settings.js';
import { RetainingExporter } from './retaining-exporter.js';
import { version } from './version.js';

/** The audit records' second destination, beside the JSON lines: an OTLP log exporter. */
export interface AuditExport {
  /**
   * Queues one audit record for export; never blocks and never throws. `finishedAt` is the
   * epoch-millisecond clock read when the record was completed (before its JSON line was
   * written), so the exported timestamp, the request's arrival, is never later than the line's.
   */
  write(record: AuditRecord, finishedAt: number): void;
  /**
   * Sends what is queued (each batch tried once more) and stops, waiting at most
   * {@link SHUTDOWN_FLUSH_MS}; what a dead collector did not take by then is lost, and said so.
   */
  close(): Promise<void>;
}

/** What {@link startOtlpAuditExport} needs besides the settings. */
export interface AuditExportOptions {
  /** The proxy's secret registry: every record is passed through it before it is queued. */
  readonly redactor: SecretRedactor;
  readonly logger: PinoLogger;
  /** Where the batch processor counts processed and dropped records (the `/metrics` provider), when metrics are on. */
  readonly meterProvider?: MeterProvider;
  /** The environment the `OTEL_*` variables were read from, for the values to keep out of logs. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Longest wait for the last export at shutdown. */
export const SHUTDOWN_FLUSH_MS = 5000;

/** `service.name` when `OTEL_SERVICE_NAME` does not say otherwise. */
export const DEFAULT_SERVICE_NAME = 'proxy';

/** The scope the records are emitted under. */
const SCOPE = '@proxy/app/audit';

/** How long the batch processor lets one export run: the retaining exporter decides when to give up, not a timer. */
const NO_EXPORT_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Starts the OTLP audit export: each audit record becomes a log record with body `request`,
 * the time the request arrived, a severity from its action (as the JSON line's level), and the
 * JSON line's fields as attributes (transform traces and groups as nested maps and lists).
 * Records are batched by the SDK's `BatchLogRecordProcessor` in a bounded queue; a batch the
 * collector does not take is kept and retried (see {@link RetainingExporter}); records that
 * find the queue full are dropped and counted in `otel_sdk_processor_log_processed_total`
 * (`error_type="queue_full"`) on `/metrics`. The resource carries `service.name` (from
 * `OTEL_SERVICE_NAME`, default `proxy`), `service.version` and `OTEL_RESOURCE_ATTRIBUTES`.
 */
export async function startOtlpAuditExport(settings: OtlpAuditSettings, options: AuditExportOptions): Promise<AuditExport> {
  const { redactor, logger } = options;
  keepCredentialsOutOfLogs(settings, options);
  const endpoint = loggableEndpoint(settings.endpoint);
  const exporter = new RetainingExporter(await createExporter(settings.protocol), {
    onFailing: (error) =>
      logger.warn(
        { endpoint, protocol: settings.protocol, error: error?.message ?? 'export failed', max_queue_size: settings.maxQueueSize },
        'otel exporter failing: audit records are kept and retried; beyond the queue bound they are dropped',
      ),
    onRecovered: () => logger.info({ endpoint, protocol: settings.protocol }, 'otel exporter recovered'),
  });
  const provider = new LoggerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME, 'service.version': version }))
      .merge(detectResources({ detectors: [envDetector] })),
    processors: [
      new BatchLogRecordProcessor({
        exporter,
        maxQueueSize: settings.maxQueueSize,
        maxExportBatchSize: settings.maxExportBatchSize,
        scheduledDelayMillis: settings.scheduledDelayMs,
        exportTimeoutMillis: NO_EXPORT_TIMEOUT_MS,
        ...(options.meterProvider === undefined ? {} : { selfObsMeterProvider: options.meterProvider }),
      }),
    ],
  });
  const otelLogger = provider.getLogger(SCOPE, version);
  logger.info({ endpoint, protocol: settings.protocol }, 'otel exporter enabled');

  let closing: Promise<void> | undefined;
  return {
    write(record, finishedAt) {
      if (closing !== undefined) return;
      otelLogger.emit({
        timestamp: finishedAt - record.duration_ms,
        ...severityOf(record),
        body: 'request',
        // The JSON line's fields, through the secret redactor as the line itself goes; the JSON
        // round trip also turns the record into plain maps and lists.
        attributes: JSON.parse(redactor.redact(JSON.stringify(record))) as Record<string, never>,
      });
    },
    close() {
      closing ??= (async () => {
        exporter.stopping();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          provider.shutdown().then(() => false),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), SHUTDOWN_FLUSH_MS))),
        ]);
        clearTimeout(timer);
        if (timedOut) logger.warn({ endpoint, waited_ms: SHUTDOWN_FLUSH_MS }, 'otel exporter: the collector did not take the last audit records before shutdown; they are lost');
      })();
      return closing;
    },
  };
}

/** The severity of an audit record, as the JSON line's level: reject WARN, error ERROR, else INFO. */
function severityOf(record: AuditRecord): { severityNumber: SeverityNumber; severityText: string } {
  if (record.action === 'reject') return { severityNumber: SeverityNumber.WARN, severityText: 'warn' };
  if (record.action === 'error') return { severityNumber: SeverityNumber.ERROR, severityText: 'error' };
  return { severityNumber: SeverityNumber.INFO, severityText: 'info' };
}

/** The exporter of a protocol; each reads endpoint, headers, TLS files, timeout and compression from the standard variables. */
async function createExporter(protocol: OtlpProtocol): Promise<LogRecordExporter> {
  switch (protocol) {
    case 'http/protobuf':
      return new (await import('@opentelemetry/exporter-logs-otlp-proto')).OTLPLogExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-logs-otlp-http')).OTLPLogExporter();
    case 'grpc':
      return new (await import('@opentelemetry/exporter-logs-otlp-grpc')).OTLPLogExporter();
  }
}

/**
 * The export's own credentials (header values, typically an ingest token, and a password in
 * the endpoint URL) are registered with the redactor, so no log line can show them.
 */
function keepCredentialsOutOfLogs(settings: OtlpAuditSettings, options: AuditExportOptions): void {
  for (const variable of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_LOGS_HEADERS']) {
    const raw = options.env[variable];
    if (raw === undefined) continue;
    for (const value of Object.values(parseKeyPairsIntoRecord(raw))) options.redactor.add(value, variable);
  }
  const password = new URL(settings.endpoint).password;
  if (password !== '') options.redactor.add(decodeURIComponent(password), settings.endpointVariable);
}
