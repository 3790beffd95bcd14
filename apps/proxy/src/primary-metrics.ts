/**
 * The cluster primary's own process figures for the merged `/metrics` (`proxy.workers` > 1).
 * The primary does not load OpenTelemetry's SDK (it serves no requests), so it writes the
 * three process families as Prometheus text itself, under the names, help texts and labels
 * the workers' exporter gives them: merged, its resident memory and uptime are gauges with
 * `worker="primary"`, and its CPU time adds to the cluster's `process_cpu_time_seconds_total`.
 * So do the log lines it dropped to `proxy_log_dropped_lines_total`: the primary writes every
 * worker's lines, so a stalled output drops most of them there.
 */
import { LOG_DROPPED_LINES_HELP } from './log-metrics.js';
import { PROCESS_METRIC_HELP } from './process-metrics.js';

/** The `otel_scope_name` label every family of the app's meter carries. */
const SCOPE = 'otel_scope_name="@proxy/app"';

/**
 * The primary's memory, CPU time and uptime, and the log lines its own output dropped
 * (`droppedLogLines`, which the merge adds to the workers' counts), in the workers' exposition format.
 */
export function primaryProcessExposition(droppedLogLines: number): string {
  const cpu = process.cpuUsage();
  return [
    `# HELP process_memory_usage_bytes ${PROCESS_METRIC_HELP.memoryUsage}`,
    '# TYPE process_memory_usage_bytes gauge',
    `process_memory_usage_bytes{${SCOPE}} ${process.memoryUsage.rss()}`,
    `# HELP process_cpu_time_seconds_total ${PROCESS_METRIC_HELP.cpuTime}`,
    '# TYPE process_cpu_time_seconds_total counter',
    `process_cpu_time_seconds_total{cpu_mode="user",${SCOPE}} ${cpu.user / 1e6}`,
    `process_cpu_time_seconds_total{cpu_mode="system",${SCOPE}} ${cpu.system / 1e6}`,
    `# HELP process_uptime_seconds ${PROCESS_METRIC_HELP.uptime}`,
    '# TYPE process_uptime_seconds gauge',
    `process_uptime_seconds{${SCOPE}} ${process.uptime()}`,
    `# HELP proxy_log_dropped_lines_total ${LOG_DROPPED_LINES_HELP}`,
    '# TYPE proxy_log_dropped_lines_total counter',
    `proxy_log_dropped_lines_total{${SCOPE}} ${droppedLogLines}`,
    '',
  ].join('\n');
}
