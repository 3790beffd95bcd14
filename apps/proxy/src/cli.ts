#!/usr/bin/env node
import { ConfigError, ProxyError } from '@proxy/core';
import { parseCommandLine, usage } from './command-line.js';
import { loadProxyConfig, startProxy } from './server.js';
import { generateCa, initProject } from './setup-commands.js';
import { version } from './version.js';

/** How long in-flight requests may run after SIGTERM/SIGINT before the process exits. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (parsed.kind === 'error') {
    process.stderr.write(`proxy: ${parsed.message}\n\n${usage}`);
    return 2;
  }
  switch (parsed.kind) {
    case 'help':
      process.stdout.write(usage);
      return 0;
    case 'version':
      process.stdout.write(`proxy ${version}\n`);
      return 0;
    case 'validate':
      try {
        const { config } = await loadProxyConfig(parsed.configFile);
        process.stdout.write(`${parsed.configFile}: valid (${config.transforms.length} transforms)\n`);
        return 0;
      } catch (err) {
        return reportStartupError(err);
      }
    case 'ca-generate':
      return printOrFail(() => generateCa(parsed));
    case 'init':
      return printOrFail(() => initProject(parsed));
    case 'run':
      return run(parsed.configFile);
  }
}

async function run(configFile: string): Promise<number> {
  let proxy;
  try {
    proxy = await startProxy({ configFile });
  } catch (err) {
    return reportStartupError(err);
  }
  const running = proxy;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      running.logger.info({ signal, grace_ms: SHUTDOWN_GRACE_MS }, 'shutting down: no new connections, finishing in-flight requests');
      running
        .close(SHUTDOWN_GRACE_MS)
        .then(() => {
          running.logger.info('stopped');
          running.logger.flush(() => resolve(0));
        })
        .catch((err: unknown) => {
          running.logger.error({ error_class: err instanceof Error ? err.name : typeof err }, 'error while shutting down');
          running.logger.flush(() => resolve(1));
        });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

/** Runs a one-shot command and prints its report. */
async function printOrFail(command: () => Promise<string>): Promise<number> {
  try {
    process.stdout.write(await command());
    return 0;
  } catch (err) {
    return reportStartupError(err);
  }
}

/** Prints a startup failure for a human: every config issue on its own line. */
function reportStartupError(err: unknown): number {
  if (err instanceof ConfigError) {
    const n = err.issues.length;
    process.stderr.write(`proxy: invalid configuration (${n} ${n === 1 ? 'problem' : 'problems'}) [${err.code}]\n`);
    for (const line of err.message.split('\n')) process.stderr.write(`  ${line}\n`);
    return 1;
  }
  if (err instanceof ProxyError) {
    process.stderr.write(`proxy: ${err.message} [${err.code}]\n`);
    return 1;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE' || e?.code === 'EACCES') {
    process.stderr.write(`proxy: cannot listen: ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`proxy: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(reportStartupError(err)),
);
