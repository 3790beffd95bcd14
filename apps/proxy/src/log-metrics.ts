import type { Meter } from '@opentelemetry/api';
import type { LogBacklog } from './log-destination.js';

/** Instrument name of the dropped-lines counter; the Prometheus exporter writes `proxy_log_dropped_lines_total`. */
export const LOG_DROPPED_LINES_METRIC = 'proxy.log.dropped_lines';

/** Its help text (the cluster primary writes it too, see primary-metrics.ts). */
export const LOG_DROPPED_LINES_HELP = 'Log lines and audit records dropped because the log output fell further behind than log.max_backlog_bytes.';

/**
 * Counts the log lines and audit records the process dropped because its output stalled (see
 * `LogBacklog`), read at each collection. A rise means records are missing from the log: alert
 * on any increase when the log is the audit trail.
 */
export function registerLogMetrics(meter: Meter, backlog: LogBacklog): void {
  const dropped = meter.createObservableCounter(LOG_DROPPED_LINES_METRIC, { description: LOG_DROPPED_LINES_HELP, unit: '{line}' });
  dropped.addCallback((result) => result.observe(backlog.droppedLines));
}
