import { dirname } from 'node:path';
import type { Meter } from '@opentelemetry/api';
import { ConfigError, createPipeline, createSecretResolver, ProxyError } from '@proxy/core';
import type { Clock, ConfigIssue, HttpClient, Logger, Pipeline, SecretRedactor, SecretResolver, TransformDefinition, TransformEnv, TransformSpec } from '@proxy/core';
import { findSecretSources, issueAt } from '@proxy/config';
import type { ConfigDocument } from '@proxy/config';
import { mcpPolicy, type McpStageConfig } from '@proxy/mcp';
import type { LoadedProxyConfig } from './config-loader.js';

/** How long a replaced generation's transforms wait for its last request before they are closed anyway. */
export const RETIRE_DRAIN_TIMEOUT_MS = 60_000;

/** What every generation shares: the process's logger, redactor, meters and the engine's guarded HTTP client. */
export interface GenerationServices {
  readonly logger: Logger;
  readonly redactor: SecretRedactor;
  readonly http: HttpClient;
  readonly clock: Clock;
  readonly meter: (name: string) => Meter;
  /** Environment the secret sources read (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * One configuration generation: a loaded config, the secrets it opened (its own resolver) and
 * the pipeline built from it. Numbered 1 for the config the process started with, one more
 * per successful reload; the number is written into each audit record (`config_generation`).
 */
export interface Generation {
  readonly number: number;
  readonly loaded: LoadedProxyConfig;
  /** SHA-256 (hex) of the config text. */
  readonly hash: string;
  readonly pipeline: Pipeline;
  readonly secrets: SecretResolver;
  /**
   * Closes the pipeline once its last request is done (at most `drainTimeoutMs`), then its
   * secrets. Idempotent.
   */
  retire(drainTimeoutMs?: number): Promise<void>;
}

/**
 * Builds a generation: opens a secret resolver of its own, creates every transform (and the MCP
 * policy) in order. With `waitForSecrets`, also waits for the first fetch of every secret it
 * opened (each bounded by the resolver's fetch timeout) and refuses the generation, as a
 * `ConfigError` at each failing source block, when any could not be fetched. A failure closes
 * whatever was created.
 */
export async function buildGeneration(
  loaded: LoadedProxyConfig,
  number: number,
  hash: string,
  services: GenerationServices,
  options: { readonly waitForSecrets: boolean },
): Promise<Generation> {
  const { document, config, registry } = loaded;
  const configDir = dirname(document.file);
  // Aborted when the generation retires: every secret it opened stops refreshing then.
  const lifetime = new AbortController();
  const secrets = createSecretResolver({
    sources: registry.secretSources,
    logger: services.logger.child({ component: 'secrets', generation: number }),
    clock: services.clock,
    http: services.http,
    signal: lifetime.signal,
    redactor: services.redactor,
    baseDir: configDir,
    ...(services.env === undefined ? {} : { env: services.env }),
  });
  const specs: TransformSpec[] = config.transforms.map((entry, index) => ({
    definition: registry.transforms.get(entry.name)!,
    config: entry.config,
    index,
  }));
  // The MCP tool policy runs after every transform, as iron-proxy's interceptor does.
  // Its gateway routes only the requests a server's policy let through.
  if (config.mcp !== undefined && config.mcp.servers.length > 0) {
    const stage: McpStageConfig = config.mcp_gateway === undefined ? config.mcp : { ...config.mcp, gateway: config.mcp_gateway };
    specs.push({ definition: mcpPolicy as TransformDefinition, config: stage, index: specs.length });
  }
  const envFor = (spec: TransformSpec, instanceId: string): TransformEnv => ({
    logger: services.logger.child({ transform: instanceId }),
    secrets,
    redactor: services.redactor,
    meter: services.meter(spec.definition.name),
    http: services.http,
    clock: services.clock,
    signal: lifetime.signal,
    instanceId,
    configDir,
  });
  let pipeline: Pipeline;
  try {
    pipeline = await createPipeline(specs, envFor, { clock: services.clock, logger: services.logger, generation: number });
  } catch (err) {
    lifetime.abort();
    throw locateCreateFailure(document, err);
  }
  if (options.waitForSecrets) {
    await Promise.all(secrets.handles().map((h) => h.ready()));
    const issues = unavailableSecretIssues(loaded, secrets);
    if (issues.length > 0) {
      await pipeline.close();
      lifetime.abort();
      throw new ConfigError(issues);
    }
  }
  let retiring: Promise<void> | undefined;
  return {
    number,
    loaded,
    hash,
    pipeline,
    secrets,
    retire(drainTimeoutMs) {
      retiring ??= pipeline.close(drainTimeoutMs).finally(() => lifetime.abort());
      return retiring;
    },
  };
}

/** An issue at each source block whose secret's first fetch failed (matched by type and label). */
function unavailableSecretIssues(loaded: LoadedProxyConfig, secrets: SecretResolver): ConfigIssue[] {
  const failed = secrets.handles().filter((h) => !h.available);
  if (failed.length === 0) return [];
  const { document, config, registry } = loaded;
  const issues: ConfigIssue[] = [];
  for (const { path, source } of findSecretSources({ transforms: config.transforms }, registry.transforms)) {
    const type = (source as { type?: unknown }).type;
    const definition = registry.secretSources.find((s) => s.type === type);
    if (definition === undefined) continue;
    const label = definition.label(source as never);
    const handle = failed.find((h) => h.type === type && h.label === label);
    if (handle === undefined) continue;
    let why = 'no value';
    try {
      handle.value();
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    issues.push(issueAt(document, path, `secret ${label} (${String(type)}) could not be fetched, so the new configuration is not applied: ${why}`));
  }
  return issues;
}

/** A transform whose `create()` failed becomes a config issue at that transform's entry. */
export function locateCreateFailure(document: ConfigDocument, err: unknown): unknown {
  if (!(err instanceof ProxyError)) return err;
  const index = /^transforms\[(\d+)\]/.exec(err.message)?.[1];
  if (index === undefined) return err;
  return new ConfigError([issueAt(document, ['transforms', Number(index)], err.message)], err.code);
}
