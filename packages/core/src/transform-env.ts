import { createNoopMeter, type Meter } from '@opentelemetry/api';
import { SecretRedactor } from './redactor.js';
import { createSecretResolver, envSource, type SecretResolver, type SecretSourceDefinition } from './secrets.js';
import type { Clock, HttpClient, Logger, TransformEnv } from './transform.js';

/** What {@link createTransformEnv} needs; everything optional has a working default. */
export interface TransformEnvOptions {
  /** This instance's position in the pipeline, e.g. `secrets#1`; bound to the logger as `transform`. */
  readonly instanceId: string;
  readonly logger: Logger;
  readonly http: HttpClient;
  /** Aborted when the transform is being closed; also stops the default resolver's refreshes. */
  readonly signal: AbortSignal;
  /** Default: `Date.now`. */
  readonly clock?: Clock;
  /** Default: a no-op meter. */
  readonly meter?: Meter;
  /** Default: a resolver over `secretSources` reading `env`. */
  readonly secrets?: SecretResolver;
  /** Backends of the default resolver (default `[envSource]`). */
  readonly secretSources?: readonly SecretSourceDefinition[];
  /** Environment of the default resolver's `env` backend (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where secret values are registered for redaction (default: a new one, also given to the default resolver). */
  readonly redactor?: SecretRedactor;
  /** Where relative paths in the config resolve from (default: the working directory). */
  readonly configDir?: string;
}

/** The system clock. */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/** Builds the environment one transform instance is created with. */
export function createTransformEnv(options: TransformEnvOptions): TransformEnv {
  const logger = options.logger.child({ transform: options.instanceId });
  const clock = options.clock ?? systemClock;
  const redactor = options.redactor ?? new SecretRedactor();
  const secrets =
    options.secrets ??
    createSecretResolver({
      sources: options.secretSources ?? [envSource],
      logger,
      clock,
      http: options.http,
      signal: options.signal,
      redactor,
      ...(options.env === undefined ? {} : { env: options.env }),
    });
  return {
    logger,
    secrets,
    redactor,
    meter: options.meter ?? createNoopMeter(),
    http: options.http,
    clock,
    signal: options.signal,
    instanceId: options.instanceId,
    configDir: options.configDir ?? process.cwd(),
  };
}
