import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from '@proxy/core';
import { createDnsServer, type DnsInterceptEvent, type DnsServer, type DnsServerOptions } from '../src/index.js';

const run = promisify(execFile);

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

/** One record of dig's answer section. */
export interface DigRecord {
  readonly name: string;
  readonly ttl: number;
  readonly type: string;
  readonly data: string;
}

/** What dig printed, parsed. */
export interface DigResult {
  readonly status: string;
  /** Header flags, e.g. `['qr', 'aa', 'rd', 'ra']`. */
  readonly flags: readonly string[];
  readonly answers: readonly DigRecord[];
  /** The EDNS UDP size of the response's OPT record, when it has one. */
  readonly ednsUdpSize: number | undefined;
  readonly stdout: string;
}

/**
 * Runs `dig @127.0.0.1 -p PORT name type ...extra` asynchronously (the server answers from this
 * process's event loop, so a synchronous spawn would deadlock) and parses its output.
 */
export async function dig(port: number, name: string, type: string, extra: readonly string[] = []): Promise<DigResult> {
  const args = ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=5', '+noall', '+comments', '+answer', ...extra, name, type];
  const { stdout } = await run('dig', args, { encoding: 'utf8' });
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1];
  const flags = /;; flags: ([^;]*);/.exec(stdout)?.[1];
  if (status === undefined || flags === undefined) throw new Error(`unexpected dig output:\n${stdout}`);
  const edns = /; EDNS: version: \d+, flags:[^;]*; udp: (\d+)/.exec(stdout)?.[1];
  const answers = stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith(';'))
    .map((line) => {
      const [recordName = '', ttl = '', , recordType = '', ...data] = line.trim().split(/\s+/);
      return { name: recordName, ttl: Number(ttl), type: recordType, data: data.join(' ') };
    });
  return { status, flags: flags.trim().split(/\s+/), answers, ednsUdpSize: edns === undefined ? undefined : Number(edns), stdout };
}

/** Whether dig is installed (the dig tests are skipped without it). */
export async function hasDig(): Promise<boolean> {
  try {
    await run('dig', ['-v']);
    return true;
  } catch {
    return false;
  }
}
