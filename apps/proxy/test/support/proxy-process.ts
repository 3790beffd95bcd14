import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireCommand } from '@proxy/test-kit';
import { onTestFinished, TestRunner } from 'vitest';

/** The built CLI the end-to-end tests drive (built by `pnpm test` before the suites run). */
export const cliPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/cli.js');

/** The built `aws-outbound-jwt-proxy` bin. */
export const awsJwtBinPath = resolve(dirname(cliPath), 'aws-outbound-jwt-proxy.js');

/** Fails with a clear message when the app has not been built. */
export function requireBuiltCli(): void {
  for (const file of [cliPath, awsJwtBinPath]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run "pnpm build" (pnpm test builds first)`);
  }
}

/** A JSON log line of the proxy. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** The `listener` field of a "listening" log line. */
export type ListenerKind = 'http' | 'https' | 'tunnel' | 'reverse' | 'dns' | 'metrics' | 'management';

/** A `proxy` process started on a config written to a temporary directory. */
export interface ProxyProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly dir: string;
  /** Port of the n-th listener of a kind, from its "listening" log line. */
  port(kind?: ListenerKind, index?: number): number;
  /** Every byte the process wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines of stdout, then of stderr. */
  lines(): LogLine[];
  /** Audit records (`msg: "request"`) so far. */
  audits(): LogLine[];
  /** Waits for a log line matching `pred`. */
  waitForLine(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Waits for an audit record matching `pred` among those after the first `after` (a count taken earlier from `audits().length`). */
  waitForAudit(pred: (record: LogLine) => boolean, after?: number): Promise<LogLine>;
  /** Sends a signal and waits for exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  /** Environment variables (added to a minimal PATH/HOME environment). */
  readonly env?: Record<string, string>;
  /** Extra files written next to the config, by relative name. */
  readonly files?: Record<string, string>;
  /** Use this directory instead of a fresh temporary one. */
  readonly dir?: string;
  /** The entry script to run instead of the built CLI (an installed or deployed copy of it). */
  readonly script?: string;
  /**
   * Started inside a test, the process is stopped when that test ends. Set this when a later
   * test of the suite uses it; the suite's `afterAll` must then stop it.
   */
  readonly keepAfterTest?: boolean;
}

/** Writes `configYaml` to `<tmp>/proxy.yaml`, starts the CLI on it and waits until it listens. */
export async function startProxyProcess(configYaml: string, options: StartOptions = {}): Promise<ProxyProcess> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'proxy-e2e-')));
  await writeFile(join(dir, 'proxy.yaml'), configYaml);
  return startBuiltProcess([options.script ?? cliPath, '--config', join(dir, 'proxy.yaml')], { ...options, dir }, options.dir === undefined);
}

/**
 * Starts the built CLI with these arguments (no config file is written: pass `--config` or
 * rely on `IRON_*` variables in `options.env`) in a temporary directory, its working
 * directory, and waits until it listens.
 */
export async function startProxyCommand(args: readonly string[], options: StartOptions = {}): Promise<ProxyProcess> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'proxy-e2e-')));
  return startBuiltProcess([cliPath, ...args], { ...options, dir }, options.dir === undefined);
}

/** Starts the built `aws-outbound-jwt-proxy` bin with these flags in a temporary directory and waits until it listens. */
export async function startAwsJwtProcess(flags: readonly string[], options: StartOptions = {}): Promise<ProxyProcess> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'proxy-e2e-')));
  return startBuiltProcess([awsJwtBinPath, ...flags], { ...options, dir }, options.dir === undefined);
}

/**
 * Starts an installed `proxy` executable (e.g. `<prefix>/bin/proxy` after `npm install -g`)
 * with these arguments in `options.dir` and waits until it listens.
 */
export async function startInstalledProxy(bin: string, args: readonly string[], options: StartOptions & { readonly dir: string }): Promise<ProxyProcess> {
  return startBuiltProcess(args, options, false, bin);
}

/** Runs `node <args>` (or `file <args>`) in `options.dir` (removed on stop when `ownsDir`) and waits for its first "listening" line. */
async function startBuiltProcess(
  args: readonly string[],
  options: StartOptions & { readonly dir: string },
  ownsDir: boolean,
  file: string = process.execPath,
): Promise<ProxyProcess> {
  if (file === process.execPath) requireBuiltCli();
  const dir = options.dir;
  for (const [name, content] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), content);
  const child = spawn(file, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of waiters) w();
  });
  let dead = false;
  // 'close' comes after the process exited and its output was read to the end: waiters see it all.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('close', (code, signal) => {
      dead = true;
      for (const w of waiters) w();
      r({ code, signal });
    }),
  );

  // Complete log lines from both streams (`log.audit_format: iron-proxy` writes them on stderr).
  const lines = (): LogLine[] => [...completeJsonLines(out), ...completeJsonLines(err)];

  const audits = (): LogLine[] => lines().filter((l) => l.msg === 'request');

  /** Resolves with the first value `probe` finds, re-probing on every stdout chunk. */
  const waitFor = (probe: () => LogLine | undefined, what: string, timeoutMs = 10_000): Promise<LogLine> =>
    new Promise((resolvePromise, rejectPromise) => {
      const check = (): void => {
        const hit = probe();
        if (hit) {
          cleanup();
          resolvePromise(hit);
        } else if (dead) {
          cleanup();
          rejectPromise(new Error(`proxy exited before the expected ${what}.\nstdout:\n${out}\nstderr:\n${err}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        rejectPromise(new Error(`timed out waiting for a ${what}.\nstdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const waitForLine = (pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine> =>
    waitFor(() => lines().find(pred), 'log line', timeoutMs);

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (!dead) child.kill(signal);
    const result = await exited;
    if (ownsDir) await rm(dir, { recursive: true, force: true });
    return result;
  };

  // A process started inside a test ends with that test, however the test ends: passed, failed,
  // or skipped midway (`requireCommand` when curl is missing). Without this it would outlive the
  // test run, still listening. SIGTERM first; SIGKILL if it is still draining after 5 s.
  if (TestRunner.getCurrentTest() !== undefined && options.keepAfterTest !== true) {
    onTestFinished(async () => {
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await stop('SIGTERM');
      clearTimeout(killer);
    });
  }

  try {
    await waitForLine((l) => l.msg === 'listening');
  } catch (error) {
    // Never listening (or timed out): do not leave it running, whoever started it.
    child.kill('SIGKILL');
    throw error;
  }
  // Every listener logs before the first request can be served; give the rest a moment to print.
  await new Promise((r) => setTimeout(r, 50));

  return {
    child,
    dir,
    port(kind = 'http', index = 0) {
      const listening = lines().filter((l) => l.msg === 'listening' && l.listener === kind);
      const line = listening[index];
      if (!line) throw new Error(`no ${kind} listener #${index} in:\n${out}`);
      return Number(String(line.address).split(':').pop());
    },
    stdout: () => out,
    stderr: () => err,
    lines,
    audits,
    waitForLine,
    waitForAudit: (pred, after = 0) => waitFor(() => audits().slice(after).find(pred), 'audit record'),
    stop,
  };
}

/** Result of a finished command. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (never throws on a non-zero exit). */
export function runCommand(file: string, args: readonly string[], env?: Record<string, string>): Promise<CommandResult> {
  return new Promise((resolvePromise) => {
    execFile(file, args, { env: env ?? process.env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Runs the built `aws-outbound-jwt-proxy` bin with arguments. */
export function runAwsJwtBin(args: readonly string[], env?: Record<string, string>): Promise<CommandResult> {
  requireBuiltCli();
  return runCommand(process.execPath, [awsJwtBinPath, ...args], env);
}

/** Runs the built CLI with arguments. */
export function runCli(args: readonly string[], env?: Record<string, string>): Promise<CommandResult> {
  requireBuiltCli();
  return runCommand(process.execPath, [cliPath, ...args], env);
}

/** Runs curl (`-s` added); the result's stdout is the body unless the args say otherwise. Skips the test where curl is missing. */
export function curl(args: readonly string[]): Promise<CommandResult> {
  requireCommand('curl');
  return runCommand('curl', ['-s', '--max-time', '15', ...args]);
}

/** The JSON objects of `text`'s complete lines (a line still being written is left out). */
function completeJsonLines(text: string): LogLine[] {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}
