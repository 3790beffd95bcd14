import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { RuntimeNodeInstrumentation } from '@opentelemetry/instrumentation-runtime-node';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, type ViewOptions } from '@opentelemetry/sdk-metrics';
import { HTTP_METRIC_NAMES } from '@proxy/engine/config';
import { MetricsServer, type MetricsServerOptions } from './metrics-server.js';
import { PROCESS_METRIC_NAMES, registerProcessMetrics } from './process-metrics.js';
import { version } from './version.js';

/**
 * The Prometheus names of the instruments the proxy defines with a unit. The exporter turns
 * dots into underscores and adds `_total` to counters, but adds no unit suffix; these views
 * add it, so the names match the aws-outbound-jwt-proxy catalogue
 * (`http_server_request_duration_seconds`, ...). Instruments not listed keep the exporter's
 * name (`v8js.memory.heap.used` -> `v8js_memory_heap_used`).
 */
const PROMETHEUS_NAMES: Readonly<Record<string, string>> = {
  [HTTP_METRIC_NAMES.serverRequestDuration]: 'http_server_request_duration_seconds',
  [HTTP_METRIC_NAMES.serverActiveRequests]: 'http_server_active_requests',
  [HTTP_METRIC_NAMES.clientRequestDuration]: 'http_client_request_duration_seconds',
  [PROCESS_METRIC_NAMES.memoryUsage]: 'process_memory_usage_bytes',
  [PROCESS_METRIC_NAMES.cpuTime]: 'process_cpu_time_seconds',
  [PROCESS_METRIC_NAMES.uptime]: 'process_uptime_seconds',
};

/** Meter name of the process gauges. */
const PROCESS_METER = '@proxy/app';

/** The OpenTelemetry metrics of one proxy process, exposed for Prometheus on their own listener. */
export interface Metrics {
  /** A meter named after the component that records into it (`@proxy/engine`, a transform's name). */
  meter(name: string): Meter;
  /** Opens the metrics listener and starts the runtime instruments; resolves with the bound address. */
  listen(): Promise<{ address: string; port: number }>;
  /** Starts the runtime instruments without a listener (a cluster worker: the primary serves the scrape and asks for {@link text}). */
  start(): void;
  /** The Prometheus text a scrape would get now. */
  text(): Promise<string>;
  /** Closes the listener and stops every instrument. Idempotent; safe before `listen()`. */
  close(): Promise<void>;
}

/**
 * Builds the metrics of a proxy process: an OpenTelemetry `MeterProvider` whose only reader is
 * the Prometheus exporter (pull: values are computed when scraped), Node runtime metrics
 * (`@opentelemetry/instrumentation-runtime-node`: event loop delay and utilization, heap, GC),
 * process gauges (RSS, CPU time, uptime), and the {@link MetricsServer} that serves the scrape
 * on `path` and `GET /healthz` on `listen`. Throws a `ProxyError` for a bad address or path;
 * nothing listens until `listen()`.
 */
export function createMetrics(options: MetricsServerOptions): Metrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const server = new MetricsServer(options, (req, res) => exporter.getMetricsRequestHandler(req, res));
  const provider = new MeterProvider({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'proxy', 'service.version': version })),
    readers: [exporter],
    views: Object.entries(PROMETHEUS_NAMES).map(([instrumentName, name]): ViewOptions => ({ instrumentName, name })),
  });
  registerProcessMetrics(provider.getMeter(PROCESS_METER));
  const runtime = new RuntimeNodeInstrumentation({ enabled: false });
  runtime.setMeterProvider(provider);

  // The exporter's own serializer settings (no prefix, no timestamps, target and scope info kept).
  const serializer = new PrometheusSerializer('', false, undefined, false, false);

  let closing: Promise<void> | undefined;
  return {
    meter: (name) => provider.getMeter(name),
    async listen() {
      const bound = await server.listen();
      runtime.enable();
      return bound;
    },
    start: () => runtime.enable(),
    async text() {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics);
    },
    close() {
      closing ??= (async () => {
        runtime.disable();
        await server.close();
        await provider.shutdown();
      })();
      return closing;
    },
  };
}
