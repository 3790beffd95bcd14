import type { AuditBuilder, TraceRecorder } from './audit.js';
import { ErrorCodes, ProxyError } from './errors.js';
import { isIpLiteral } from './cidr.js';
import type { ProxyRequest, ProxyResponse } from './request.js';
import type { SecretHandle, SecretResolver } from './secrets.js';
import { normalizeHost } from './rules.js';
import {
  CONTINUE,
  reject,
  type Clock,
  type Awaitable,
  type Decision,
  type RetargetDecision,
  type Logger,
  type Transform,
  type TransformDefinition,
  type TransformEnv,
} from './transform.js';

/** One created transform in a pipeline. */
export interface PipelineEntry {
  /**
   * What the audit record shows: the instance's `auditName`, else the config name
   * (`allowlist`, `@acme/transform-foo`).
   */
  readonly name: string;
  /** The definition's `decidesDestinations`: its `onRequest` runs again on a re-targeted request. */
  readonly decidesDestinations?: boolean;
  /** The definition's `routesByConfig`: its re-targets are honoured after other transforms ran. */
  readonly routesByConfig?: boolean;
  /** Position-qualified id, e.g. `secrets#1`. */
  readonly instanceId: string;
  readonly transform: Transform;
  /** The secrets this instance opened whose first fetch its hooks wait for (see `waitsForSecrets`). */
  readonly secrets?: readonly SecretHandle[];
}

/** One hook of one transform, bound once when the pipeline is built. */
interface Stage {
  readonly entry: PipelineEntry;
  readonly phase: 'request' | 'tunnel' | 'response';
  readonly call: (request: ProxyRequest, response: ProxyResponse | undefined, trace: TraceRecorder) => HookResult;
}

type HookResult = Awaitable<Decision | RetargetDecision | void>;

/** The stages of one phase: the transforms that have its hook, in pipeline order. */
function stagesOf(entries: readonly PipelineEntry[], phase: Stage['phase']): readonly Stage[] {
  const stages: Stage[] = [];
  for (const entry of entries) {
    const stage = stageOf(entry, phase);
    if (stage === undefined) continue;
    const secrets = entry.secrets ?? [];
    stages.push(secrets.length === 0 ? stage : afterSecretsSettle(stage, secrets));
  }
  return Object.freeze(stages);
}

/** The entry's hook for `phase`, bound to its transform; undefined when it has none. */
function stageOf(entry: PipelineEntry, phase: Stage['phase']): Stage | undefined {
  const t = entry.transform;
  if (phase === 'request' && t.onRequest !== undefined) {
    const hook = t.onRequest;
    return { entry, phase, call: (request, _response, trace) => hook.call(t, request, trace) };
  }
  if (phase === 'tunnel' && t.onTunnel !== undefined) {
    const hook = t.onTunnel;
    return { entry, phase, call: (request, _response, trace) => hook.call(t, request, trace) };
  }
  if (phase === 'response' && t.onResponse !== undefined) {
    const hook = t.onResponse;
    return { entry, phase, call: (request, response, trace) => hook.call(t, request, response!, trace) };
  }
  return undefined;
}

/**
 * Wraps a stage so that its hook runs once every secret in `handles` has had its first fetch
 * settled. Costs one flag check per call after that.
 */
function afterSecretsSettle(stage: Stage, handles: readonly SecretHandle[]): Stage {
  let settled = false;
  const call: Stage['call'] = (request, response, trace) => {
    if (settled || handles.every((h) => !h.pending)) {
      settled = true;
      return stage.call(request, response, trace);
    }
    return Promise.all(handles.map((h) => h.ready())).then(() => stage.call(request, response, trace));
  };
  return { ...stage, call };
}

function isPromiseLike(value: HookResult): value is Promise<Decision | RetargetDecision | void> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** What the pipeline needs besides its transforms. */
export interface PipelineOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The configuration generation the pipeline was built from (audit `config_generation`); none by default. */
  readonly generation?: number;
}

/**
 * An ordered, immutable list of transform instances. Request hooks run in order and the
 * first reject or respond short-circuits; a hook that throws fails the request closed.
 * A pipeline counts the requests running on it so that a reload can retire it: `close()`
 * waits until the last of them is done, then closes the transforms in reverse order.
 */
export class Pipeline {
  readonly entries: readonly PipelineEntry[];
  /** The configuration generation it was built from, when the builder gave one. */
  readonly generation: number | undefined;
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
    this.generation = options.generation;
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

  /** Requests running on this pipeline now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Closes every transform (reverse order) once no request is running on this pipeline.
   * With `drainTimeoutMs`, waits at most that long: the transforms are then closed under the
   * requests still running (a WebSocket or a long stream), which is logged with their count.
   * Idempotent: later calls share the first call's close.
   */
  close(drainTimeoutMs?: number): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        const drained = new Promise<boolean>((resolve) => (this.#drained = () => resolve(true)));
        const bounded =
          drainTimeoutMs === undefined ? drained : Promise.race([drained, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), drainTimeoutMs)))]);
        const done = await bounded;
        clearTimeout(timer);
        this.#drained = undefined;
        if (!done) {
          this.#logger.warn(
            { generation: this.generation, in_flight: this.#inFlight, drain_timeout_ms: drainTimeoutMs },
            `closing a replaced pipeline's transforms under ${this.#inFlight} request(s) still running after ${drainTimeoutMs} ms`,
          );
        }
      }
      await closeTransforms(this.entries, this.#logger);
    })();
    return this.#closing;
  }

  /**
   * Runs one phase's hooks in order from `from`. Stays synchronous while hooks answer
   * synchronously; the first hook that returns a promise hands the rest of the run to
   * {@link #resume}. A pipeline of synchronous transforms thus costs no promise at all.
   * `retargeted` is true once the request was re-targeted (the stages then are the rerun).
   */
  #run(
    stages: readonly Stage[],
    from: number,
    request: ProxyRequest,
    response: ProxyResponse | undefined,
    audit: AuditBuilder,
    retargeted = false,
  ): Awaitable<Decision> {
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
      if (isPromiseLike(result)) return this.#resume(stages, i, trace, result, request, response, audit, retargeted);
      const outcome = result ?? CONTINUE;
      if (outcome.action === 'retarget') return this.#retarget(stages, i, trace, outcome, request, audit, retargeted);
      const decision = this.#settle(stage.entry, trace, audit, outcome);
      if (decision.action !== 'continue') return decision;
    }
    return CONTINUE;
  }

  /** Waits for the hook at `index`, settles it, and runs the stages after it. */
  async #resume(
    stages: readonly Stage[],
    index: number,
    trace: TraceRecorder,
    pending: Promise<Decision | RetargetDecision | void>,
    request: ProxyRequest,
    response: ProxyResponse | undefined,
    audit: AuditBuilder,
    retargeted: boolean,
  ): Promise<Decision> {
    const entry = stages[index]!.entry;
    let outcome: Decision | RetargetDecision | void;
    try {
      outcome = await pending;
    } catch (err) {
      return this.#failed(entry, trace, audit, err);
    }
    outcome ??= CONTINUE;
    if (outcome.action === 'retarget') return this.#retarget(stages, index, trace, outcome, request, audit, retargeted);
    const decision = this.#settle(entry, trace, audit, outcome);
    if (decision.action !== 'continue') return decision;
    return this.#run(stages, index + 1, request, response, audit, retargeted);
  }

  /**
   * Honours the re-target the hook at `index` asked for, when it is safe (see
   * `RetargetDecision`): switches the request's destination, then runs the destination
   * deciders before `index` again and the stages after it. Otherwise fails the request (502).
   */
  #retarget(
    stages: readonly Stage[],
    index: number,
    trace: TraceRecorder,
    decision: RetargetDecision,
    request: ProxyRequest,
    audit: AuditBuilder,
    retargeted: boolean,
  ): Awaitable<Decision> {
    const stage = stages[index]!;
    const refuse = (reason: string, message: string): Decision =>
      this.#failed(stage.entry, trace, audit, new ProxyError(ErrorCodes.RETARGET_REFUSED, message, { status: 502, reason }));
    if (stage.phase !== 'request' || request.mode === 'sni-only' || request.mode === 'tunnel') {
      return refuse('retarget_unsupported', 'cannot re-target a request bound to its destination (TLS passthrough or tunnel opening)');
    }
    const before = stages.slice(0, index);
    const deciders = before.filter((s) => s.entry.decidesDestinations === true);
    if (retargeted || (deciders.length < before.length && stage.entry.routesByConfig !== true)) {
      return refuse('retarget_unsafe', 'cannot re-target a request after a transform other than a destination decider acted on it; place the re-targeting transform first');
    }
    const host = normalizeHost(decision.host);
    if (!isHostName(host) || !Number.isInteger(decision.port) || decision.port < 1 || decision.port > 65_535) {
      return refuse('retarget_invalid', 'the re-target destination is not a valid host and port');
    }
    const target = request as { host: string; port: number; scheme: 'http' | 'https' };
    target.host = host;
    target.port = decision.port;
    if (decision.scheme !== undefined) target.scheme = decision.scheme;
    const defaultPort = request.scheme === 'https' ? 443 : 80;
    const bracketed = host.includes(':') ? `[${host}]` : host;
    request.headers.set('Host', decision.port === defaultPort ? bracketed : `${bracketed}:${decision.port}`);
    trace.annotate('retarget', decision.scheme === undefined ? `${bracketed}:${decision.port}` : `${decision.scheme}://${bracketed}:${decision.port}`);
    this.#settle(stage.entry, trace, audit, CONTINUE);
    // Only the destination deciders run again: the other transforms before it already acted.
    return this.#run([...deciders, ...stages.slice(index + 1)], 0, request, undefined, audit, true);
  }

  /** Closes the trace entry of a hook that returned `decision` and records a refusal. */
  #settle(entry: PipelineEntry, trace: TraceRecorder, audit: AuditBuilder, decision: Decision): Decision {
    const now = this.#clock.now();
    switch (decision.action) {
      case 'continue':
        trace.finish('allow', now);
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
      const env = envFor(spec, instanceId);
      const opened: SecretHandle[] = [];
      const secrets: SecretResolver =
        spec.definition.waitsForSecrets === true
          ? env.secrets
          : {
              handles: () => env.secrets.handles(),
              open: async (source) => {
                const handle = await env.secrets.open(source);
                opened.push(handle);
                return handle;
              },
            };
      const transform = await spec.definition.create(spec.config, { ...env, secrets });
      entries.push({
        name: transform.auditName ?? spec.definition.name,
        instanceId,
        transform,
        secrets: opened,
        ...(spec.definition.decidesDestinations === true ? { decidesDestinations: true } : {}),
        ...(spec.definition.routesByConfig === true ? { routesByConfig: true } : {}),
      });
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

/** A host name (letters, digits, `-`, `_`, dots between labels) or an IP literal, in normal form. */
function isHostName(host: string): boolean {
  return isIpLiteral(host) || /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(host);
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
