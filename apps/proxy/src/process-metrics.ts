import type { Meter } from '@opentelemetry/api';

/** Instrument names of the process gauges (OpenTelemetry `process.*` semantic conventions). */
export const PROCESS_METRIC_NAMES = Object.freeze({
  memoryUsage: 'process.memory.usage',
  cpuTime: 'process.cpu.time',
  uptime: 'process.uptime',
});

/**
 * Registers the process-level instruments the V8/event-loop runtime metrics do not cover:
 * resident memory, CPU time by mode and uptime. They are observed at each collection (scrape),
 * so they cost nothing between scrapes.
 */
export function registerProcessMetrics(meter: Meter): void {
  const memory = meter.createObservableGauge(PROCESS_METRIC_NAMES.memoryUsage, {
    description: 'Resident set size of the proxy process.',
    unit: 'By',
  });
  const cpu = meter.createObservableCounter(PROCESS_METRIC_NAMES.cpuTime, {
    description: 'CPU time the proxy process has used, by mode.',
    unit: 's',
  });
  const uptime = meter.createObservableGauge(PROCESS_METRIC_NAMES.uptime, {
    description: 'Time since the proxy process started.',
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
