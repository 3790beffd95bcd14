import type { AuditBuilder, TraceRecorder } from './audit.js';
import { ErrorCodes, ProxyError } from './errors.js';
import type { ProxyRequest, ProxyResponse } from './request.js';
import {
  CONTINUE,
  reject,
  type Clock,
  type Decision,
  type Logger,
  type Transform,
  type TransformDefinition,
  type TransformEnv,
} from './transform.js';

/** One created transform in a pipeline. */
export interface PipelineEntry {
  /** The config name (`allowlist`, `@acme/transform-foo`): what the audit record shows. */
  readonly name: string;
  /** Position-qualified id, e.g. `secrets#1`. */
  readonly instanceId: string;
  readonly transform: Transform;
}

/** What the pipeline needs besides its transforms. */
export interface PipelineOptions {
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * An ordered, immutable list of transform instances. Request hooks run in order and the
 * first reject or respond short-circuits; a hook that throws fails the request closed.
 * A pipeline counts the requests running on it so that a reload can retire it: `close()`
 * waits until the last of them is done, then closes the transforms in reverse order.
 */
export class Pipeline {
  readonly entries: readonly PipelineEntry[];
  readonly #clock: Clock;
  readonly #logger: Logger;
  #inFlight = 0;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(entries: readonly PipelineEntry[], options: PipelineOptions) {
    this.entries = Object.freeze([...entries]);
    this.#clock = options.clock;
    this.#logger = options.logger;
  }

  /** Marks a request as running on this pipeline; call the returned function when it is done. */
  enter(): () => void {
    this.#inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#inFlight--;
      if (this.#inFlight === 0) this.#drained?.();
    };
  }

  /** Runs the request hooks. Returns the decision that ended the run (continue when all passed). */
  async runRequest(request: ProxyRequest, audit: AuditBuilder): Promise<Decision> {
    for (const entry of this.entries) {
      const hook = entry.transform.onRequest;
      if (hook === undefined) continue;
      const trace = audit.requestTrace(entry.name, this.#clock.now());
      const decision = await this.#invoke(entry, trace, audit, () => hook.call(entry.transform, request, trace));
      if (decision.action !== 'continue') return decision;
    }
    return CONTINUE;
  }

  /**
   * Decides whether a tunnel may open: runs the `onTunnel` hooks in order on the host-only
   * request (mode `tunnel`); the first reject short-circuits.
   */
  async runTunnel(request: ProxyRequest, audit: AuditBuilder): Promise<Decision> {
    for (const entry of this.entries) {
      const hook = entry.transform.onTunnel;
      if (hook === undefined) continue;
      const trace = audit.requestTrace(entry.name, this.#clock.now());
      const decision = await this.#invoke(entry, trace, audit, () => hook.call(entry.transform, request, trace));
      if (decision.action !== 'continue') return decision;
    }
    return CONTINUE;
  }

  /** Runs the response hooks, in pipeline order. */
  async runResponse(request: ProxyRequest, response: ProxyResponse, audit: AuditBuilder): Promise<Decision> {
    for (const entry of this.entries) {
      const hook = entry.transform.onResponse;
      if (hook === undefined) continue;
      const trace = audit.responseTrace(entry.name, this.#clock.now());
      const decision = await this.#invoke(entry, trace, audit, () => hook.call(entry.transform, request, response, trace));
      if (decision.action !== 'continue') return decision;
    }
    return CONTINUE;
  }

  /** Closes every transform (reverse order) once no request is running on this pipeline. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      await closeTransforms(this.entries, this.#logger);
    })();
    return this.#closing;
  }

  async #invoke(
    entry: PipelineEntry,
    trace: TraceRecorder,
    audit: AuditBuilder,
    call: () => Decision | void | Promise<Decision | void>,
  ): Promise<Decision> {
    let decision: Decision;
    try {
      decision = (await call()) ?? CONTINUE;
    } catch (err) {
      return this.#failed(entry, trace, audit, err);
    }
    const now = this.#clock.now();
    switch (decision.action) {
      case 'continue':
        trace.finish('continue', now);
        break;
      case 'reject':
        trace.annotate('rejected', decision.reason);
        trace.finish('reject', now);
        audit.rejected(entry.name, decision.reason);
        break;
      case 'respond':
        if (decision.reason !== undefined) trace.annotate('stubbed', decision.reason);
        trace.finish('stub', now);
        audit.stubbed(entry.name, decision.reason);
        break;
    }
    return decision;
  }

  #failed(entry: PipelineEntry, trace: TraceRecorder, audit: AuditBuilder, err: unknown): Decision {
    const now = this.#clock.now();
    if (err instanceof ProxyError) {
      trace.annotate(err.status < 500 ? 'rejected' : 'error', err.reason);
      trace.finish(err.status < 500 ? 'reject' : 'error', now);
      if (err.status < 500) audit.rejected(entry.name, err.reason);
      else audit.failed(err.reason, entry.name);
      this.#logger.warn({ transform: entry.instanceId, code: err.code, reason: err.reason }, `transform ${entry.instanceId}: ${err.message}`);
      return reject(err.status, err.reason);
    }
    const kind = err instanceof Error ? err.name : typeof err;
    trace.annotate('error', kind);
    trace.finish('error', now);
    audit.failed('transform_error', entry.name);
    this.#logger.error({ transform: entry.instanceId, code: ErrorCodes.TRANSFORM_FAILED, error_class: kind }, `transform ${entry.instanceId} failed`);
    return reject(502, 'transform_error');
  }
}

/** One transform to create: its definition, its validated config and its position. */
export interface TransformSpec {
  readonly definition: TransformDefinition;
  readonly config: unknown;
  readonly index: number;
}

/**
 * Creates every transform of a pipeline in order. When one `create()` fails, the ones already
 * created are closed and a `ProxyError` (`PROXY_ERR_TRANSFORM_CREATE_FAILED`) names the
 * failing instance (`transforms[2] (secrets)`), with the cause attached.
 */
export async function createPipeline(
  specs: readonly TransformSpec[],
  envFor: (spec: TransformSpec, instanceId: string) => TransformEnv,
  options: PipelineOptions,
): Promise<Pipeline> {
  const entries: PipelineEntry[] = [];
  for (const spec of specs) {
    const instanceId = `${spec.definition.name}#${spec.index}`;
    try {
      const transform = await spec.definition.create(spec.config, envFor(spec, instanceId));
      entries.push({ name: spec.definition.name, instanceId, transform });
    } catch (err) {
      await closeTransforms(entries, options.logger);
      const detail = err instanceof Error ? err.message : String(err);
      throw new ProxyError(ErrorCodes.TRANSFORM_CREATE_FAILED, `transforms[${spec.index}] (${spec.definition.name}): ${detail}`, {
        cause: err,
      });
    }
  }
  return new Pipeline(entries, options);
}

async function closeTransforms(entries: readonly PipelineEntry[], logger: Logger): Promise<void> {
  for (const entry of [...entries].reverse()) {
    try {
      await entry.transform.close?.();
    } catch (err) {
      logger.warn({ transform: entry.instanceId, error_class: err instanceof Error ? err.name : typeof err }, 'transform close failed');
    }
  }
}
