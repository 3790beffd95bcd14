import type { Meter } from '@opentelemetry/api';

/** Instrument names of the process gauges (OpenTelemetry `process.*` semantic conventions). */
export const PROCESS_METRIC_NAMES = Object.freeze({
  memoryUsage: 'process.memory.usage',
  cpuTime: 'process.cpu.time',
  uptime: 'process.uptime',
});

/** The help texts of the process instruments (the cluster primary writes them too, see primary-metrics.ts). */
export const PROCESS_METRIC_HELP = Object.freeze({
  memoryUsage: 'Resident set size of the proxy process.',
  cpuTime: 'CPU time the proxy process has used, by mode.',
  uptime: 'Time since the proxy process started.',
});

/**
 * Registers the process-level instruments the V8/event-loop runtime metrics do not cover:
 * resident memory, CPU time by mode and uptime. They are observed at each collection (scrape),
 * so they cost nothing between scrapes.
 */
export function registerProcessMetrics(meter: Meter): void {
  const memory = meter.createObservableGauge(PROCESS_METRIC_NAMES.memoryUsage, {
    description: PROCESS_METRIC_HELP.memoryUsage,
    unit: 'By',
  });
  const cpu = meter.createObservableCounter(PROCESS_METRIC_NAMES.cpuTime, {
    description: PROCESS_METRIC_HELP.cpuTime,
    unit: 's',
  });
  const uptime = meter.createObservableGauge(PROCESS_METRIC_NAMES.uptime, {
    description: PROCESS_METRIC_HELP.uptime,
    unit: 's',
  });
  meter.addBatchObservableCallback(
    (result) => {
      const usage = process.cpuUsage();
      result.observe(memory, process.memoryUsage.rss());
      result.observe(cpu, usage.user / 1e6, { 'cpu.mode': 'user' });
      result.observe(cpu, usage.system / 1e6, { 'cpu.mode': 'system' });
      result.observe(uptime, process.uptime());
    },
    [memory, cpu, uptime],
  );
}
