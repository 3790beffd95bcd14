/**
 * The `proxy` command (loaded by `cli.ts` once the runtime flags are settled): parses the
 * command line and runs the chosen subcommand.
 */
import cluster from 'node:cluster';
import { parseCommandLine, resolveWorkerCount, usage, type WorkerCount } from './command-line.js';
import { configWarnings } from './config-warnings.js';
import { serveUntilSignal } from './serve.js';
import { loadConfigSnapshot } from './reloader.js';
import type * as ServerModule from './server.js';
import { loadProxyConfig, type CommandLineConfig, type LoadedProxyConfig } from './config-loader.js';
import { reportConfigWarnings, reportStartupError } from './startup-error.js';
import { version } from './version.js';

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'aws-jwt') return (await import('./aws-jwt-command.js')).runAwsJwtCommand('proxy aws-jwt', argv.slice(1), process.env, { usageExitCode: 2 });
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
        const loaded = await loadProxyConfig(commandLineConfig(parsed.configFile));
        reportConfigWarnings(configWarnings(loaded));
        process.stdout.write(`${loaded.document.file}: valid (${loaded.config.transforms.length} transforms)\n`);
        return parsed.checkSecrets ? await reportSecrets(loaded) : 0;
      } catch (err) {
        return reportStartupError(err);
      }
    // The setup commands load the X.509 toolkit, which serving a plain config never needs.
    case 'ca-generate':
      return printOrFail(async () => (await import('./setup-commands.js')).generateCa(parsed));
    case 'init':
      return printOrFail(async () => (await import('./setup-commands.js')).initProject(parsed));
    case 'schema':
      return printOrFail(async () => (await import('./schema-command.js')).configSchemaText(parsed.configFile));
    case 'health': {
      const { checkHealth } = await import('./health-command.js');
      const result = await checkHealth(parsed.url);
      (result.code === 0 ? process.stdout : process.stderr).write(`${result.line}\n`);
      return result.code;
    }
    case 'run':
      return runProxy(commandLineConfig(parsed.configFile), parsed.workers);
  }
}

/**
 * Runs the proxy: in this process (`proxy.workers` 1, the default), or as the primary of a
 * cluster of that many worker processes. The config is read and validated here first, so a
 * bad one fails with its located errors before anything is forked. `workers` (the
 * `--workers` flag) overrides the config's; with `--workers 1` the config is read only once.
 */
async function runProxy(config: CommandLineConfig, workers: WorkerCount | undefined): Promise<number> {
  if (cluster.isWorker) return (await import('./cluster-worker.js')).runClusterWorker(config);
  if (workers === 1) return serveUntilSignal(async () => (await serving()).startProxy({ commandLineConfig: config }), 'proxy');
  let snapshot: Awaited<ReturnType<typeof loadConfigSnapshot>>;
  try {
    snapshot = await loadConfigSnapshot(config);
  } catch (err) {
    return reportStartupError(err);
  }
  const count = resolveWorkerCount(workers ?? snapshot.loaded.config.proxy.workers);
  if (count === 1) return serveUntilSignal(async () => (await serving()).startProxy({ commandLineConfig: config, snapshot }), 'proxy');
  return (await import('./cluster-primary.js')).runClusterPrimary({ loaded: snapshot.loaded, workers: count });
}

/**
 * The proxy server module, loaded only by a process that serves: the engine, Fastify and undici
 * are not loaded by `validate` or by the primary of a cluster.
 */
function serving(): Promise<typeof ServerModule> {
  return import('./server.js');
}

/** The command line's config: the `--config` file or S3 object (or none), with this process's `IRON_*` overrides. */
function commandLineConfig(location: string | undefined): CommandLineConfig {
  return { ...(location === undefined ? {} : { location }), env: process.env };
}

/** `validate --check-secrets`: one line per secret source; exit 1 when any is unavailable. */
async function reportSecrets(loaded: LoadedProxyConfig): Promise<number> {
  const { checkSecrets, formatSecretCheck } = await import('./check-secrets.js');
  const checks = await checkSecrets(loaded);
  for (const check of checks) process.stdout.write(`${formatSecretCheck(check)}\n`);
  const missing = checks.filter((c) => !c.available).length;
  process.stdout.write(`${checks.length} secret(s) checked, ${missing} unavailable\n`);
  return missing === 0 ? 0 : 1;
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

/** Runs the `proxy` command with `argv` (the arguments after the executable) and exits with its code. */
export function runProxyCommand(argv: readonly string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => process.exit(reportStartupError(err)),
  );
}
