import { execFile } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { createPipeline, createTransformEnv, defineTransform, systemClock } from '@proxy/core';
import { requireCommand } from '@proxy/test-kit';
import type { AuditRecord, Logger, Pipeline, Transform } from '@proxy/core';
import { createEngine, type Engine, type EngineOptions, type ListenerAddress, type ListenerKind } from '../src/index.js';

/** The deny list config applies when `upstream_deny_cidrs` is not set (`DEFAULT_UPSTREAM_DENY_CIDRS` of @proxy/config). */
export const DEFAULT_DENY_CIDRS = [
  '169.254.0.0/16',
  'fe80::/10',
  'fd00:ec2::254/128',
  'fd00:ec2::23/128',
  '100.100.100.200/32',
  '127.0.0.0/8',
  '::1/128',
  '0.0.0.0/8',
  '::/128',
];

/** One line a {@link RecordingLogger} received. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: object;
  readonly msg: string | undefined;
}

/** A core `Logger` that keeps every line, so tests can look at what was logged. */
export class RecordingLogger implements Logger {
  readonly lines: LogLine[];
  readonly #bindings: object;

  constructor(lines: LogLine[] = [], bindings: object = {}) {
    this.lines = lines;
    this.#bindings = bindings;
  }

  debug(obj: object | string, msg?: string): void {
    this.#log('debug', obj, msg);
  }
  info(obj: object | string, msg?: string): void {
    this.#log('info', obj, msg);
  }
  warn(obj: object | string, msg?: string): void {
    this.#log('warn', obj, msg);
  }
  error(obj: object | string, msg?: string): void {
    this.#log('error', obj, msg);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.lines, { ...this.#bindings, ...bindings });
  }

  #log(level: LogLine['level'], obj: object | string, msg: string | undefined): void {
    if (typeof obj === 'string') this.lines.push({ level, fields: this.#bindings, msg: obj });
    else this.lines.push({ level, fields: { ...this.#bindings, ...obj }, msg });
  }
}

/** A running engine with its audit records and log lines. */
export interface TestEngine {
  readonly engine: Engine;
  readonly addresses: ListenerAddress[];
  readonly audits: AuditRecord[];
  readonly logger: RecordingLogger;
  /** Port of the forward, https or tunnel listener, or of reverse listener `index`. */
  port(kind?: ListenerKind, index?: number): number;
  /** Resolves with the next audit record matching `predicate` (or one already emitted). */
  audit(predicate: (record: AuditRecord) => boolean): Promise<AuditRecord>;
  /** Installs a pipeline of inline transforms (in order); returns the previous pipeline. */
  use(...transforms: InlineTransform[]): Promise<Pipeline | undefined>;
  close(graceMs?: number): Promise<void>;
}

/** A transform written inline in a test: its config name and its hooks. */
export interface InlineTransform {
  readonly name: string;
  readonly transform: Transform;
}

/** Options of {@link startEngine}: any engine option; `httpListen: undefined` means no forward listener. */
export type EngineOverrides = { readonly [K in keyof EngineOptions]?: EngineOptions[K] | undefined };

/** Starts an engine on loopback ephemeral ports with an empty pipeline (override any option). */
export async function startEngine(overrides: EngineOverrides = {}): Promise<TestEngine> {
  const audits: AuditRecord[] = [];
  const waiters: { predicate: (r: AuditRecord) => boolean; resolve: (r: AuditRecord) => void }[] = [];
  const logger = new RecordingLogger();
  const options: Record<string, unknown> = {
    logger,
    onAudit: (record: AuditRecord) => {
      audits.push(record);
      for (const w of [...waiters]) {
        if (w.predicate(record)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(record);
        }
      }
    },
    httpListen: '127.0.0.1:0',
    maxRequestBodyBytes: 1024 * 1024,
    maxResponseBodyBytes: 0,
    upstreamResponseHeaderTimeoutMs: 10_000,
    upstreamDenyCidrs: [],
    ...overrides,
  };
  for (const [key, value] of Object.entries(options)) if (value === undefined) delete options[key];
  const engine = createEngine(options as unknown as EngineOptions);
  const shutdown = new AbortController();
  const use = async (...transforms: InlineTransform[]): Promise<Pipeline | undefined> => {
    const pipeline = await createPipeline(
      transforms.map((t, index) => ({
        definition: defineTransform({ name: t.name, schema: { type: 'object' }, create: () => t.transform }),
        config: {},
        index,
      })),
      (_spec, instanceId) => createTransformEnv({ instanceId, logger, http: engine.http, signal: shutdown.signal }),
      { clock: systemClock, logger },
    );
    return engine.setPipeline(pipeline);
  };
  await use();
  const addresses = await engine.listen();
  return {
    engine,
    addresses,
    audits,
    logger,
    port(kind = 'http', index = 0) {
      const found = addresses.find((a) => a.kind === kind && (kind !== 'reverse' || a.index === index));
      if (found === undefined) throw new Error(`no ${kind} listener ${index}`);
      return found.port;
    },
    audit(predicate) {
      const seen = audits.find(predicate);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ predicate, resolve }));
    },
    use,
    async close(graceMs = 0) {
      await engine.close(graceMs);
      shutdown.abort();
    },
  };
}

/** A response as a test client saw it. */
export interface ClientResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: string;
}

/** Options of {@link send}. */
export interface SendOptions {
  readonly method?: string;
  /** Request target: an absolute URI (forward proxying) or a path. */
  readonly target: string;
  readonly headers?: OutgoingHttpHeaders | string[];
  readonly body?: string | Buffer;
}

/**
 * Sends one request with `node:http` (no connection reuse) to a listener on 127.0.0.1. Like
 * curl, an absolute-form request gets the URI's authority as its Host unless headers say otherwise.
 */
export function send(port: number, options: SendOptions): Promise<ClientResponse> {
  let headers = options.headers ?? {};
  const authority = /^[a-z]+:\/\/([^/?#]*)/i.exec(options.target)?.[1];
  if (authority !== undefined && !Array.isArray(headers) && !Object.keys(headers).some((k) => k.toLowerCase() === 'host')) {
    headers = { ...headers, host: authority };
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.target, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Writes raw bytes to a listener and returns everything it answers until it closes. */
export function sendRaw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    socket.write(text);
  });
}

/** Runs curl (never through an environment proxy) and returns its output; skips the test where curl is missing. */
export function curl(args: readonly string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  requireCommand('curl');
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--noproxy', '', ...args], { env: { PATH: process.env.PATH ?? '' }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ stdout, stderr, code });
    });
  });
}

/** The echo upstream's view of the request it received. */
export interface Echoed {
  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly query: string;
  readonly headers: Record<string, string | string[]>;
  readonly rawHeaders: string[];
  readonly body: string;
  readonly bodyBytes: number;
}

/** Parses the echo upstream's JSON answer. */
export function echoed(body: string): Echoed {
  return JSON.parse(body) as Echoed;
}
