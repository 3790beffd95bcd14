import type { ProxyRequest, RequestMode } from './request.js';
import type { AnnotationValue, Trace } from './transform.js';

/** What happened to a request, as a whole. */
export type AuditAction = 'allow' | 'reject' | 'stub' | 'error';

/** What one transform did to a request. */
export type TraceAction = 'allow' | 'reject' | 'stub' | 'error';

/** One transform's entry in `request_transforms` / `response_transforms`. */
export interface TransformTraceEntry {
  name: string;
  action: TraceAction;
  duration_ms: number;
  annotations?: Record<string, AnnotationValue>;
}

/**
 * One audit record per request, the iron-proxy shape plus additive fields. Written as one
 * JSON line; rejections at WARN. Never contains a secret value: `path` is the path as the
 * client sent it, before any transform rewrote it.
 */
export interface AuditRecord {
  request_id: string;
  host: string;
  /**
   * The destination port (an addition to iron-proxy's record, which writes it inside `host`);
   * 0 when the request was refused before it named a usable destination.
   */
  port: number;
  method: string;
  path: string;
  remote_addr: string;
  mode: RequestMode;
  action: AuditAction;
  status_code: number;
  duration_ms: number;
  request_transforms: TransformTraceEntry[];
  response_transforms: TransformTraceEntry[];
  /** Name of the transform (or engine stage, e.g. `upstream_guard`) that refused the request. */
  rejected_by?: string;
  /** Name of the transform that answered the request itself (action `stub`). */
  stubbed_by?: string;
  /** Machine-readable reason of a reject or error (`not_allowlisted`, `upstream_timeout`, ...). */
  reason?: string;
  sni?: string;
  /** The tunnel the request travelled in: its protocol, target and (inside it) the decision that opened it. */
  tunnel?: { target: string; protocol: string; decision?: string };
  /** The upstream address that was dialled, once known. */
  upstream_addr?: string;
  /**
   * Additive: the generation of the configuration whose pipeline the request ran on (1 for the
   * config the process started with, one more per successful reload); absent when the
   * pipeline carries none.
   */
  config_generation?: number;
  /** Top-level groups written by stages through `Trace.group()` (`mcp`, ...). */
  [group: string]: unknown;
}

/** Field names of the record itself: `Trace.group()` may not write them. */
const RECORD_FIELDS = new Set([
  'request_id', 'host', 'port', 'method', 'path', 'remote_addr', 'mode', 'action', 'status_code', 'duration_ms',
  'request_transforms', 'response_transforms', 'rejected_by', 'stubbed_by', 'reason', 'sni', 'tunnel', 'upstream_addr',
  'config_generation', 'level', 'time', 'msg',
]);

/** A trace entry under construction; also the `Trace` handed to the transform. */
export class TraceRecorder implements Trace {
  readonly entry: TransformTraceEntry;
  readonly #started: number;
  readonly #group: (name: string, value: AnnotationValue) => void;

  constructor(name: string, now: number, group: (name: string, value: AnnotationValue) => void = () => undefined) {
    this.entry = { name, action: 'allow', duration_ms: 0 };
    this.#started = now;
    this.#group = group;
  }

  annotate(key: string, value: AnnotationValue): void {
    (this.entry.annotations ??= {})[key] = value;
  }

  group(name: string, value: AnnotationValue): void {
    this.#group(name, value);
  }

  /** Closes the entry with the action taken and the elapsed time. */
  finish(action: TraceAction, now: number): void {
    this.entry.action = action;
    this.entry.duration_ms = Math.max(0, now - this.#started);
  }
}

/**
 * Collects the audit record of one request. Created when the request arrives (snapshotting
 * host, method and path before any transform runs), filled by the pipeline, finished by the
 * engine once the response is sent.
 */
export class AuditBuilder {
  readonly #record: AuditRecord;
  readonly #started: number;

  constructor(request: Pick<ProxyRequest, 'id' | 'host' | 'port' | 'method' | 'path' | 'clientAddress' | 'mode' | 'sni' | 'tunnel' | 'receivedAt'>) {
    this.#started = request.receivedAt;
    this.#record = {
      request_id: request.id,
      host: request.host,
      port: request.port,
      method: request.method,
      path: request.path,
      remote_addr: request.clientAddress,
      mode: request.mode,
      action: 'allow',
      status_code: 0,
      duration_ms: 0,
      request_transforms: [],
      response_transforms: [],
    };
    if (request.sni !== undefined) this.#record.sni = request.sni;
    if (request.tunnel !== undefined) {
      const { target, protocol, decision } = request.tunnel;
      this.#record.tunnel = decision === undefined ? { target, protocol } : { target, protocol, decision };
    }
  }

  /**
   * Writes a top-level group of the record (the last value written under a name wins). Throws
   * for a name of the record's own fields.
   */
  group(name: string, value: AnnotationValue): void {
    if (RECORD_FIELDS.has(name)) throw new Error(`audit group "${name}" would overwrite a field of the record`);
    this.#record[name] = value;
  }

  /** Starts the trace entry of a request-phase transform. */
  requestTrace(name: string, now: number): TraceRecorder {
    const t = new TraceRecorder(name, now, (group, value) => this.group(group, value));
    this.#record.request_transforms.push(t.entry);
    return t;
  }

  /** Starts the trace entry of a response-phase transform. */
  responseTrace(name: string, now: number): TraceRecorder {
    const t = new TraceRecorder(name, now, (group, value) => this.group(group, value));
    this.#record.response_transforms.push(t.entry);
    return t;
  }

  /** Marks the request refused by `by` (a transform name or an engine stage). */
  rejected(by: string, reason: string): void {
    this.#record.action = 'reject';
    this.#record.rejected_by = by;
    this.#record.reason = reason;
  }

  /** Marks the request answered by the proxy itself (`stubbed_by` names the transform). */
  stubbed(by: string, reason?: string): void {
    this.#record.action = 'stub';
    this.#record.stubbed_by = by;
    if (reason !== undefined) this.#record.reason = reason;
  }

  /** Marks the request failed (transform error, upstream failure). */
  failed(reason: string, by?: string): void {
    this.#record.action = 'error';
    this.#record.reason = reason;
    if (by !== undefined) this.#record.rejected_by = by;
  }

  /** Records the generation of the configuration whose pipeline runs the request (`config_generation`). */
  configGeneration(generation: number): void {
    this.#record.config_generation = generation;
  }

  /** Records the upstream address that was dialled. */
  upstream(address: string): void {
    this.#record.upstream_addr = address;
  }

  /** The current action (allow until something says otherwise). */
  get action(): AuditAction {
    return this.#record.action;
  }

  /** Completes the record with the final status and total duration. */
  finish(statusCode: number, now: number): AuditRecord {
    this.#record.status_code = statusCode;
    this.#record.duration_ms = Math.max(0, now - this.#started);
    return this.#record;
  }
}
