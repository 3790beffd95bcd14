import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createNoopMeter } from '@opentelemetry/api';
import {
  ErrorCodes,
  parseDuration,
  ProxyError,
  SecretRedactor,
  systemClock,
} from '@proxy/core';
import type {
  Logger,
  SecretHandle,
  SecretResolver,
} from '@proxy/core';
import { DEFAULT_MAX_REQUEST_BODY_BYTES } from '@proxy/config';
import type { ProxyConfig } from '@proxy/config';
import { createEngine } from '@proxy/engine';
import type { ClientLimits, EngineOptions, ListenerAddress, ReverseListenerOptions } from '@proxy/engine';
import type { DnsServer } from '@proxy/dns';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { createAuditCounter } from './audit-metrics.js';
import { configWarnings } from './config-warnings.js';
import { forwardListeners, type ForwardListeners } from './forward-listeners.js';
import type { CommandLineConfig, LoadedProxyConfig } from './config-loader.js';
import { buildGeneration, type Generation, type GenerationServices } from './generation.js';
import { createProcessLog } from './logger.js';
import { registerLogMetrics } from './log-metrics.js';
import type { LogStyle } from './logger.js';
import { ManagementServer } from './management-server.js';
import type { Metrics } from './metrics.js';
import type { SecretsState } from './metrics-server.js';
import type { AuditExport } from './otlp-audit.js';
import { readOtlpAuditSettings } from './otlp-settings.js';
import { loadConfigSnapshot, reloadableSource, Reloader, type ReloadOutcome, type ReloadStatus, type ReloadTrigger } from './reloader.js';

/** Options of {@link startProxy}: the YAML config as a file path, or as text with a display name. */
export type StartProxyOptions = StartProxyCommonOptions &
  ({ readonly configFile: string } | { readonly configText: string; readonly configName: string } | { readonly commandLineConfig: CommandLineConfig });

/** Options of {@link startProxy} that do not depend on where the config comes from. */
export interface StartProxyCommonOptions {
  /** Where log lines and audit records go instead of stdout (e.g. the text format of the aws-outbound-jwt-proxy command line). */
  readonly logDestination?: DestinationStream;
  /** How log lines and audit records are written (default: the config's `log.audit_format`). */
  readonly logStyle?: LogStyle;
  /** Environment the secret sources read: `env` variables, backends' endpoints and credentials (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The config, already read and validated from the same source (it is not read again). */
  readonly snapshot?: { readonly loaded: LoadedProxyConfig; readonly hash: string };
  /** Set when this process is one worker of a cluster (`proxy.workers` > 1). */
  readonly clusterWorker?: ClusterWorkerOptions;
}

/**
 * How a cluster worker's proxy differs from a single process's: the primary serves the metrics
 * endpoint and the management API (the worker keeps its metrics for the primary to collect,
 * and opens neither listener), and has logged the config warnings; every line the worker logs
 * carries `worker: id`.
 */
export interface ClusterWorkerOptions {
  /** The worker's cluster id (1, 2, ...; a replacement gets a new one). */
  readonly id: number;
  /** The primary's listeners (metrics, management), which the upstream guard refuses as the worker's own (508 `forwarding_loop`). */
  readonly ownAddresses: readonly { readonly address: string; readonly port: number }[];
}

/** Where one listener of a running proxy listens (the engine's, plus the DNS server's and the metrics endpoint's). */
export type RunningAddress = ListenerAddress | { readonly kind: 'dns' | 'metrics' | 'management'; readonly address: string; readonly port: number };

/** A running proxy. */
export interface RunningProxy {
  readonly addresses: readonly RunningAddress[];
  readonly config: ProxyConfig;
  readonly logger: PinoLogger;
  /** The labels of the secrets whose fetches have all failed so far (empty when every secret is available or pending). */
  unavailableSecrets(): string[];
  /** The labels of the secrets still on their first fetch. */
  pendingSecrets(): string[];
  /** Settles once every secret's first fetch has succeeded or failed (the proxy serves meanwhile). */
  secretsSettled(): Promise<void>;
  /**
   * Re-reads the config file and swaps in a new pipeline (see `Reloader`); rejects with a
   * `ConfigError` listing every problem when the new config cannot be applied.
   */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome>;
  /** The serving configuration: file, hash, generation, last reload. */
  status(): ReloadStatus;
  /** The Prometheus text of this process's metrics, or undefined without a `metrics` section. */
  metricsText(): Promise<string | undefined>;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then releases everything. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts the proxy on a config file: validates everything first (nothing listens on a bad
 * config), opens the secrets (their first fetches go on in the background: startup never waits
 * for a secret backend), creates the transforms, then opens the listeners.
 */
export async function startProxy(options: StartProxyOptions): Promise<RunningProxy> {
  const source =
    'configFile' in options ? options.configFile : 'commandLineConfig' in options ? options.commandLineConfig : { text: options.configText, name: options.configName };
  const { loaded, hash } = options.snapshot ?? (await loadConfigSnapshot(source));
  const worker = options.clusterWorker;
  const { document, config, registry } = loaded;
  // Bound once the secret resolver exists; the metrics listener's /readyz reads it.
  let secretsState = (): SecretsState => ({ pending: [], unavailable: [] });
  // Every secret value fetched is registered here, and every log line passes through it.
  const redactor = new SecretRedactor();
  const { logger, writeAudit, backlog } = createProcessLog(
    config.log.level,
    options.logStyle ?? config.log.audit_format,
    options.logDestination,
    redactor,
    worker === undefined ? undefined : { worker: worker.id },
  );
  if (backlog !== undefined) backlog.maxBytes = config.log.max_backlog_bytes;
  for (const w of worker === undefined ? configWarnings({ document, config, registry }) : []) {
    logger.warn({ file: w.file, line: w.line, column: w.column, path: w.path, warning: w.message }, 'config warning');
  }
  const listeners = forwardListeners(config, document);
  const configDir = document.dir;
  const shutdown = new AbortController();
  const clock = systemClock;
  const coreLogger = logger as unknown as Logger;
  // The `metrics` section (or compat.iron_proxy_defaults) turns on the Prometheus endpoint; without it every meter is a no-op
  // and the OpenTelemetry SDK is not even loaded (it costs memory in every process).
  const metrics: Metrics | undefined =
    listeners.metrics === undefined
      ? undefined
      : (await import('./metrics.js')).createMetrics({ ...listeners.metrics, secretsState: () => secretsState() });
  const countAudit = metrics === undefined ? undefined : createAuditCounter(metrics.meter('@proxy/app'));
  if (metrics !== undefined && backlog !== undefined) registerLogMetrics(metrics.meter('@proxy/app'), backlog);
  const noopMeter = createNoopMeter();
  let auditExport: AuditExport | undefined;
  try {
    auditExport = await startAuditExport(redactor, logger, metrics);
  } catch (err) {
    await metrics?.close();
    throw err;
  }

  const engine = createEngine({
    logger: coreLogger,
    onAudit: (record) => {
      const finishedAt = Date.now();
      writeAudit(record);
      auditExport?.write(record, finishedAt);
      countAudit?.(record);
    },
    ...(metrics === undefined ? {} : { meter: metrics.meter('@proxy/engine') }),
    ...(listeners.http ? { httpListen: config.proxy.http_listen } : {}),
    reverse: await reverseListeners(config, configDir),
    ...(await interception(config, listeners, configDir)),
    maxRequestBodyBytes: requestBodyLimit(config),
    maxResponseBodyBytes: config.proxy.max_response_body_bytes,
    clientLimits: clientLimits(config),
    upstreamResponseHeaderTimeoutMs: parseDuration(config.proxy.upstream_response_header_timeout),
    upstreamDenyCidrs: config.proxy.upstream_deny_cidrs,
    upstreamDeniedAs: config.compat.denied_upstream === 502 ? 'error' : 'reject',
    ...upstreamProxyOption(config),
    ...(config.dns?.upstream_resolver === undefined ? {} : { upstreamResolver: config.dns.upstream_resolver }),
    ...(config.tls.upstream_ca_bundle === undefined
      ? {}
      : { upstreamCa: await readConfiguredFile(resolve(configDir, config.tls.upstream_ca_bundle), 'tls.upstream_ca_bundle') }),
  });

  const services: GenerationServices = {
    logger: coreLogger,
    redactor,
    http: engine.http,
    clock,
    meter: (name) => metrics?.meter(name) ?? noopMeter,
    ...(options.env === undefined ? {} : { env: options.env }),
  };
  let initial: Generation;
  try {
    initial = await buildGeneration(loaded, 1, hash, services, { waitForSecrets: false });
  } catch (err) {
    shutdown.abort();
    await engine.close(0);
    await auditExport?.close();
    await metrics?.close();
    throw err;
  }
  engine.setPipeline(initial.pipeline);
  const reloader = new Reloader({
    source: reloadableSource(source),
    initial,
    // A reload waits for the new generation's secrets: a source that cannot be fetched fails it.
    build: (next, number, nextHash) => buildGeneration(next, number, nextHash, services, { waitForSecrets: true }),
    setPipeline: (pipeline) => engine.setPipeline(pipeline),
    logger,
  });
  const secrets = (): SecretResolver => reloader.current.secrets;
  secretsState = () => secretLabels(secrets());
  const management =
    config.management === undefined || worker !== undefined
      ? undefined
      : new ManagementServer(
          { listen: config.management.listen, apiKey: process.env[config.management.api_key_env] ?? '', logger: coreLogger.child({ component: 'management' }) },
          { reload: () => reloader.reload('api'), status: () => reloader.status() },
        );

  const dnsServer = listeners.dns ? await createDnsService(config, logger, coreLogger) : undefined;
  const addresses: RunningAddress[] = [];
  try {
    addresses.push(...(await engine.listen()));
    for (const own of worker?.ownAddresses ?? []) engine.addOwnAddress(own);
    // The process's other servers are no upstream either: each is registered with the engine
    // once bound, so the guard refuses them as it refuses the engine's own listeners (508
    // forwarding_loop).
    const other = async (kind: 'dns' | 'metrics' | 'management', listen: () => Promise<{ address: string; port: number }>): Promise<void> => {
      const bound = await listen();
      engine.addOwnAddress(bound);
      addresses.push({ kind, ...bound });
    };
    // The DNS server's TCP port (UDP uses the same number; the proxy dials TCP only).
    if (dnsServer !== undefined) await other('dns', () => dnsServer.listen());
    if (metrics !== undefined && worker !== undefined) metrics.start();
    else if (metrics !== undefined) await other('metrics', () => metrics.listen());
    if (management !== undefined) await other('management', () => management.listen());
  } catch (err) {
    shutdown.abort();
    await management?.close();
    await metrics?.close();
    await dnsServer?.close();
    await engine.close(0);
    await initial.retire();
    await auditExport?.close();
    throw err;
  }
  for (const a of addresses) logger.info({ listener: a.kind, address: `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` }, 'listening');
  // Sources are fetched in the background: the proxy serves at once, and requests that need a
  // secret still being fetched wait for it. Once every first fetch has settled, the ones that
  // failed are named.
  const settled = Promise.all(initial.secrets.handles().map((h) => h.ready())).then(() => {
    const missing = secretsState().unavailable;
    if (missing.length > 0 && !shutdown.signal.aborted) {
      logger.warn({ secrets_unavailable: missing }, `serving without ${missing.length} unavailable secret(s): requests that need them get the documented failure; /readyz lists them`);
    }
  });

  let closing: Promise<void> | undefined;
  return {
    addresses,
    config,
    logger,
    unavailableSecrets: () => [...secretsState().unavailable],
    pendingSecrets: () => [...secretsState().pending],
    secretsSettled: () => settled,
    reload: (trigger) => reloader.reload(trigger),
    status: () => reloader.status(),
    metricsText: async () => metrics?.text(),
    close(graceMs = 10_000) {
      closing ??= (async () => {
        await management?.close();
        await dnsServer?.close();
        await engine.close(graceMs);
        shutdown.abort();
        // Every generation's transforms, after the engine: no request runs on them any more.
        await reloader.close();
        // After the engine: every audit record has been written, and the last ones are flushed.
        await auditExport?.close();
        await metrics?.close();
      })();
      return closing;
    },
  };
}

/**
 * The OTLP audit export, when the standard `OTEL_EXPORTER_OTLP_*` variables of the process
 * turn it on (see {@link readOtlpAuditSettings}); the SDK is loaded only then. Its drop and
 * queue counters go to `/metrics` when the `metrics` section is set.
 */
async function startAuditExport(redactor: SecretRedactor, logger: PinoLogger, metrics: Metrics | undefined): Promise<AuditExport | undefined> {
  const settings = readOtlpAuditSettings(process.env);
  if (settings === undefined) return undefined;
  const { startOtlpAuditExport } = await import('./otlp-audit.js');
  return startOtlpAuditExport(settings, {
    redactor,
    logger,
    env: process.env,
    ...(metrics === undefined ? {} : { meterProvider: { getMeter: (name: string) => metrics.meter(name) } }),
  });
}

/** The labels of the open secrets without a value, each once: pending, and unavailable after their first fetch. */
function secretLabels(secrets: SecretResolver): SecretsState {
  const labels = (pick: (h: SecretHandle) => boolean): string[] => [...new Set(secrets.handles().filter(pick).map((h) => h.label))];
  return { pending: labels((h) => h.pending), unavailable: labels((h) => !h.pending && !h.available) };
}

/** `proxy.upstream_proxy` for the engine, when any proxy URL is set. */
function upstreamProxyOption(config: ProxyConfig): Pick<EngineOptions, 'upstreamProxy'> {
  const p = config.proxy.upstream_proxy;
  if (!p?.http_proxy && !p?.https_proxy) return {};
  return {
    upstreamProxy: {
      ...(p.http_proxy ? { httpProxy: p.http_proxy } : {}),
      ...(p.https_proxy ? { httpsProxy: p.https_proxy } : {}),
      ...(p.no_proxy ? { noProxy: p.no_proxy } : {}),
    },
  };
}

/** `proxy.max_request_body_bytes`, where 0 means the default as in iron-proxy: one request can never buffer without bound. */
function requestBodyLimit(config: ProxyConfig): number {
  return config.proxy.max_request_body_bytes || DEFAULT_MAX_REQUEST_BODY_BYTES;
}

/** The `proxy` section's client-side limits, for the engine. */
function clientLimits(config: ProxyConfig): ClientLimits {
  const p = config.proxy;
  return {
    headerTimeoutMs: parseDuration(p.client_header_timeout),
    requestTimeoutMs: parseDuration(p.client_request_timeout),
    bodyIdleTimeoutMs: parseDuration(p.client_body_timeout),
    maxConnections: p.max_connections,
    maxHeadBytes: p.max_request_header_bytes,
    maxBufferedBodyBytes: p.max_buffered_body_bytes,
    // By default one connection may hold two bodies of the larger limit (a pipelined request beside another).
    maxConnectionBufferedBytes: p.max_connection_buffered_bytes ?? 2 * Math.max(requestBodyLimit(config), p.max_response_body_bytes),
  };
}

/**
 * The HTTPS and tunnel listeners (see {@link forwardListeners}) and how TLS is handled on them.
 * In `mitm` mode the CA is loaded and checked here, so a bad CA stops startup with a one-line
 * error naming the file.
 */
async function interception(config: ProxyConfig, listeners: ForwardListeners, configDir: string): Promise<Partial<EngineOptions>> {
  const tunnel = config.proxy.tunnel_listen;
  if (!listeners.https && tunnel === undefined) return {};
  const options: Partial<EngineOptions> = {
    tlsMode: config.tls.mode,
    ...(listeners.https ? { httpsListen: config.proxy.https_listen } : {}),
    ...(tunnel === undefined ? {} : { tunnelListen: tunnel }),
  };
  if (config.tls.mode !== 'mitm') return options;
  if (config.tls.ca_cert === undefined || config.tls.ca_key === undefined) {
    throw new ProxyError(ErrorCodes.CA_READ, 'tls.ca_cert and tls.ca_key are required for TLS interception (tls.mode: mitm); create them with "proxy ca generate"');
  }
  // Loaded only when interception is configured: X.509 handling is the heaviest module.
  const { loadCertificateAuthority, LeafCertificateIssuer } = await import('@proxy/tls');
  const ca = await loadCertificateAuthority({ certFile: resolve(configDir, config.tls.ca_cert), keyFile: resolve(configDir, config.tls.ca_key) });
  return {
    ...options,
    certificates: new LeafCertificateIssuer(ca, { lifetimeHours: config.tls.leaf_cert_expiry_hours, cacheSize: config.tls.cert_cache_size }),
  };
}

/** Reads a file the config names; a failure names the setting and the file. */
async function readConfiguredFile(file: string, setting: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new ProxyError(ErrorCodes.CONFIG_READ, `${setting}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The built-in DNS server (`dns` section, unless `enabled: false`): every intercepted name
 * resolves to `proxy_ip`. Each intercepted name is audited as a `dns_intercept` line: the first
 * query of a name, type and client, then at most once a minute with the count since. The DNS
 * packages (the server and its wire format) are loaded only when it runs.
 */
async function createDnsService(config: ProxyConfig, logger: PinoLogger, coreLogger: Logger): Promise<DnsServer | undefined> {
  const dns = config.dns;
  if (dns === undefined || !dns.enabled || dns.proxy_ip === undefined) return undefined;
  const { createDnsServer } = await import('@proxy/dns');
  return createDnsServer({
    listen: dns.listen,
    proxyIp: dns.proxy_ip,
    ...(dns.proxy_ipv6 === undefined ? {} : { proxyIpv6: dns.proxy_ipv6 }),
    ...(dns.upstream_resolver === undefined ? {} : { upstreamResolver: dns.upstream_resolver }),
    passthrough: dns.passthrough,
    records: dns.records,
    logger: coreLogger.child({ component: 'dns' }),
    onIntercept: (event) => logger.info({ ...event }, 'dns_intercept'),
  });
}

/** Maps `proxy.reverse[]` to engine options; `tls_cert`/`tls_key` files (relative to the config file) are read here. */
async function reverseListeners(config: ProxyConfig, configDir: string): Promise<ReverseListenerOptions[]> {
  const out: ReverseListenerOptions[] = [];
  for (const r of config.proxy.reverse ?? []) {
    out.push({
      listen: r.listen,
      upstreamScheme: r.upstream_scheme,
      hostHeader: r.host_header,
      ...(r.upstream_host === undefined ? {} : { upstreamHost: r.upstream_host }),
      ...(r.upstream_timeout === undefined ? {} : { upstreamTimeoutMs: parseDuration(r.upstream_timeout) }),
      ...(r.tls_cert !== undefined && r.tls_key !== undefined
        ? {
            tls: {
              cert: await readConfiguredFile(resolve(configDir, r.tls_cert), 'proxy.reverse[].tls_cert'),
              key: await readConfiguredFile(resolve(configDir, r.tls_key), 'proxy.reverse[].tls_key'),
            },
          }
        : {}),
    });
  }
  return out;
}
