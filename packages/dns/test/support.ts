import type { Logger } from '@proxy/core';
import { createDnsServer, type DnsInterceptEvent, type DnsServer, type DnsServerOptions } from '../src/index.js';

/** One log call. */
export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string | undefined;
}

/** A logger that keeps every call (children share the parent's list). */
export class RecordingLogger implements Logger {
  readonly entries: LogEntry[];
  readonly #bindings: Record<string, unknown>;

  constructor(entries: LogEntry[] = [], bindings: Record<string, unknown> = {}) {
    this.entries = entries;
    this.#bindings = bindings;
  }

  debug(obj: object | string, msg?: string): void {
    this.#add('debug', obj, msg);
  }
  info(obj: object | string, msg?: string): void {
    this.#add('info', obj, msg);
  }
  warn(obj: object | string, msg?: string): void {
    this.#add('warn', obj, msg);
  }
  error(obj: object | string, msg?: string): void {
    this.#add('error', obj, msg);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.entries, { ...this.#bindings, ...bindings });
  }

  #add(level: LogEntry['level'], obj: object | string, msg: string | undefined): void {
    const fields = typeof obj === 'string' ? { ...this.#bindings } : { ...this.#bindings, ...obj };
    this.entries.push({ level, fields, msg: typeof obj === 'string' ? obj : msg });
  }
}

/** A DNS server under test, listening on 127.0.0.1 (an ephemeral port). */
export interface TestDnsServer {
  readonly server: DnsServer;
  readonly port: number;
  readonly logger: RecordingLogger;
  readonly intercepts: DnsInterceptEvent[];
}

/** Starts a DNS server on 127.0.0.1:0 with `proxyIp` 10.0.0.1 unless overridden. */
export async function startTestServer(overrides: Partial<DnsServerOptions> = {}): Promise<TestDnsServer> {
  const logger = new RecordingLogger();
  const intercepts: DnsInterceptEvent[] = [];
  const server = createDnsServer({
    listen: '127.0.0.1:0',
    proxyIp: '10.0.0.1',
    passthrough: [],
    records: [],
    logger,
    onIntercept: (event) => intercepts.push(event),
    ...overrides,
  });
  const { port } = await server.listen();
  return { server, port, logger, intercepts };
}
