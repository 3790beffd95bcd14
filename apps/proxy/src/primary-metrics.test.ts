import { describe, expect, it } from 'vitest';
import { mergePrometheusText, parseSample } from './metrics-merge.js';
import { primaryProcessExposition } from './primary-metrics.js';

/** A worker's process families as the OpenTelemetry Prometheus exporter writes them. */
const worker = `# HELP process_memory_usage_bytes Resident set size of the proxy process.
# UNIT process_memory_usage_bytes By
# TYPE process_memory_usage_bytes gauge
process_memory_usage_bytes{otel_scope_name="@proxy/app"} 100000000
# HELP process_cpu_time_seconds_total CPU time the proxy process has used, by mode.
# UNIT process_cpu_time_seconds_total s
# TYPE process_cpu_time_seconds_total counter
process_cpu_time_seconds_total{cpu_mode="user",otel_scope_name="@proxy/app"} 10
process_cpu_time_seconds_total{cpu_mode="system",otel_scope_name="@proxy/app"} 2
# HELP process_uptime_seconds Time since the proxy process started.
# UNIT process_uptime_seconds s
# TYPE process_uptime_seconds gauge
process_uptime_seconds{otel_scope_name="@proxy/app"} 60
# HELP proxy_log_dropped_lines_total Log lines and audit records dropped because the log output fell further behind than log.max_backlog_bytes.
# UNIT proxy_log_dropped_lines_total {line}
# TYPE proxy_log_dropped_lines_total counter
proxy_log_dropped_lines_total{otel_scope_name="@proxy/app"} 5
`;

describe('the primary\'s process figures', () => {
  it('are valid samples of this process: its resident memory, CPU time by mode, uptime and dropped log lines', () => {
    const text = primaryProcessExposition(7);
    const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => parseSample(l));
    expect(samples.every((s) => s !== undefined)).toBe(true);
    const value = (name: string, mode?: string): number =>
      samples.find((s) => s?.name === name && (mode === undefined || s.labels.some(([n, v]) => n === 'cpu_mode' && v === mode)))?.value ?? NaN;
    expect(value('process_memory_usage_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(value('process_cpu_time_seconds_total', 'user')).toBeGreaterThan(0);
    expect(value('process_cpu_time_seconds_total', 'system')).toBeGreaterThanOrEqual(0);
    expect(value('process_uptime_seconds')).toBeCloseTo(process.uptime(), 0);
    expect(value('proxy_log_dropped_lines_total')).toBe(7);
  });

  it('merge into the workers\' families: gauges labelled worker="primary", CPU and dropped lines added to the cluster\'s, one # TYPE each', () => {
    const merged = mergePrometheusText([
      { worker: 1, text: worker },
      { worker: 'primary', text: primaryProcessExposition(7) },
    ]);
    const lines = merged.split('\n');
    expect(lines.filter((l) => l.startsWith('# TYPE '))).toEqual([
      '# TYPE process_memory_usage_bytes gauge',
      '# TYPE process_cpu_time_seconds_total counter',
      '# TYPE process_uptime_seconds gauge',
      '# TYPE proxy_log_dropped_lines_total counter',
    ]);
    expect(lines).toContain('proxy_log_dropped_lines_total{otel_scope_name="@proxy/app"} 12');
    expect(lines).toContain('process_memory_usage_bytes{otel_scope_name="@proxy/app",worker="1"} 100000000');
    expect(merged).toMatch(/^process_memory_usage_bytes\{otel_scope_name="@proxy\/app",worker="primary"\} \d+$/m);
    expect(merged).toMatch(/^process_uptime_seconds\{otel_scope_name="@proxy\/app",worker="primary"\} [\d.]+$/m);
    const user = lines.map((l) => parseSample(l)).find((s) => s?.name === 'process_cpu_time_seconds_total' && s.labels.some(([, v]) => v === 'user'));
    expect(user?.value).toBeGreaterThan(10);
    expect(user?.labels.some(([n]) => n === 'worker')).toBe(false);
  });
});
