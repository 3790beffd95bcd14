import type { AuditBuilder, TraceRecorder } from './audit.js';
import { ErrorCodes, ProxyError } from './errors.js';
import type { ProxyRequest, ProxyResponse } from './request.js';
import {
  CONTINUE,
  reject,
  type Clock,
  type Awaitable,
  type Decision,
  type Logger,
  type Transform,
  type TransformDefinition,
  type TransformEnv,
} from './transform.js';

/** One created transform in a pipeline. */
export interface PipelineEntry {
  /** What the audit record shows: the transform's `traceName`, else the config name (`allowlist`, `@acme/transform-foo`). */
  readonly name: string;
  /** Position-qualified id, e.g. `secrets#1`. */
  readonly instanceId: string;
  readonly transform: Transform;
}

/** One hook of one transform, bound once when the pipeline is built. */
interface Stage {
  readonly entry: PipelineEntry;
  readonly phase: 'request' | 'tunnel' | 'response';
  readonly call: (request: ProxyRequest, response: ProxyResponse | undefined, trace: TraceRecorder) => HookResult;
}

type HookResult = Awaitable<Decision | void>;

/** The stages of one phase: the transforms that have its hook, in pipeline order. */
function stagesOf(entries: readonly PipelineEntry[], phase: Stage['phase']): readonly Stage[] {
  const stages: Stage[] = [];
  for (const entry of entries) {
    const t = entry.transform;
    if (phase === 'request' && t.onRequest !== undefined) {
      const hook = t.onRequest;
      stages.push({ entry, phase, call: (request, _response, trace) => hook.call(t, request, trace) });
    } else if (phase === 'tunnel' && t.onTunnel !== undefined) {
      const hook = t.onTunnel;
      stages.push({ entry, phase, call: (request, _response, trace) => hook.call(t, request, trace) });
    } else if (phase === 'response' && t.onResponse !== undefined) {
      const hook = t.onResponse;
      stages.push({ entry, phase, call: (request, response, trace) => hook.call(t, request, response!, trace) });
    }
  }
  return Object.freeze(stages);
}

function isPromiseLike(value: HookResult): value is Promise<Decision | void> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
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
  readonly #requestStages: readonly Stage[];
  readonly #tunnelStages: readonly Stage[];
  readonly #responseStages: readonly Stage[];
  readonly #clock: Clock;
  readonly #logger: Logger;
  #inFlight = 0;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(entries: readonly PipelineEntry[], options: PipelineOptions) {
    this.entries = Object.freeze([...entries]);
    this.#requestStages = stagesOf(this.entries, 'request');
    this.#tunnelStages = stagesOf(this.entries, 'tunnel');
    this.#responseStages = stagesOf(this.entries, 'response');
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

  /**
   * Runs the request hooks. Returns the decision that ended the run (continue when all
   * passed): synchronously while every hook answers synchronously, else a promise.
   */
  runRequest(request: ProxyRequest, audit: AuditBuilder): Awaitable<Decision> {
    return this.#run(this.#requestStages, 0, request, undefined, audit);
  }

  /**
   * Decides whether a tunnel may open: runs the `onTunnel` hooks in order on the host-only
   * request (mode `tunnel`); the first reject short-circuits.
   */
  runTunnel(request: ProxyRequest, audit: AuditBuilder): Awaitable<Decision> {
    return this.#run(this.#tunnelStages, 0, request, undefined, audit);
  }

  /** Runs the response hooks, in pipeline order. */
  runResponse(request: ProxyRequest, response: ProxyResponse, audit: AuditBuilder): Awaitable<Decision> {
    return this.#run(this.#responseStages, 0, request, response, audit);
  }

  /** True when some transform has an `onRequest` hook (an empty pipeline need not be run). */
  get hasRequestHooks(): boolean {
    return this.#requestStages.length > 0;
  }

  /** True when some transform has an `onResponse` hook (otherwise responses stream straight through). */
  get hasResponseHooks(): boolean {
    return this.#responseStages.length > 0;
  }

  /** Closes every transform (reverse order) once no request is running on this pipeline. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      await closeTransforms(this.entries, this.#logger);
    })();
    return this.#closing;
  }

  /**
   * Runs one phase's hooks in order from `from`. Stays synchronous while hooks answer
   * synchronously; the first hook that returns a promise hands the rest of the run to
   * {@link #resume}. A pipeline of synchronous transforms thus costs no promise at all.
   */
  #run(stages: readonly Stage[], from: number, request: ProxyRequest, response: ProxyResponse | undefined, audit: AuditBuilder): Awaitable<Decision> {
    for (let i = from; i < stages.length; i++) {
      const stage = stages[i]!;
      const now = this.#clock.now();
      const trace = stage.phase === 'response' ? audit.responseTrace(stage.entry.name, now) : audit.requestTrace(stage.entry.name, now);
      let result: HookResult;
      try {
        result = stage.call(request, response, trace);
      } catch (err) {
        return this.#failed(stage.entry, trace, audit, err);
      }
      if (isPromiseLike(result)) return this.#resume(stages, i, trace, result, request, response, audit);
      const decision = this.#settle(stage.entry, trace, audit, result ?? CONTINUE);
      if (decision.action !== 'continue') return decision;
    }
    return CONTINUE;
  }

  /** Waits for the hook at `index`, settles it, and runs the stages after it. */
  async #resume(
    stages: readonly Stage[],
    index: number,
    trace: TraceRecorder,
    pending: Promise<Decision | void>,
    request: ProxyRequest,
    response: ProxyResponse | undefined,
    audit: AuditBuilder,
  ): Promise<Decision> {
    const entry = stages[index]!.entry;
    let outcome: Decision | void;
    try {
      outcome = await pending;
    } catch (err) {
      return this.#failed(entry, trace, audit, err);
    }
    const decision = this.#settle(entry, trace, audit, outcome ?? CONTINUE);
    if (decision.action !== 'continue') return decision;
    return this.#run(stages, index + 1, request, response, audit);
  }

  /** Closes the trace entry of a hook that returned `decision` and records a refusal. */
  #settle(entry: PipelineEntry, trace: TraceRecorder, audit: AuditBuilder, decision: Decision): Decision {
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
      entries.push({ name: transform.traceName ?? spec.definition.name, instanceId, transform });
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
