import { awsJwtUsage, parseAwsJwtCommandLine } from './aws-jwt-command-line.js';
import { awsJwtConfigYaml } from './aws-jwt-config.js';
import { serveUntilSignal } from './serve.js';
import { startProxy } from './server.js';
import { createTextDestination } from './text-log.js';
import { version } from './version.js';

/** How a command running an aws-outbound-jwt-proxy command line differs from the other. */
export interface AwsJwtCommandOptions {
  /**
   * Exit code of a usage error: 1 for the `aws-outbound-jwt-proxy` bin, as the original exits
   * on any startup error; 2 for `proxy aws-jwt`, as every `proxy` subcommand does.
   */
  readonly usageExitCode: 1 | 2;
}

/** The display name of the generated config in error messages. */
const CONFIG_NAME = '<command line>';

/**
 * Runs an aws-outbound-jwt-proxy command line (the `aws-outbound-jwt-proxy` bin, and
 * `proxy aws-jwt`): turns the flags and environment into the equivalent YAML config and runs it
 * through the same loader and server as `proxy --config`. `--print-config` prints that YAML
 * instead. Resolves with the exit code: `usageExitCode` for a usage error (message on stderr),
 * 1 when startup fails.
 */
export async function runAwsJwtCommand(
  command: string,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  options: AwsJwtCommandOptions,
): Promise<number> {
  const parsed = parseAwsJwtCommandLine(argv, env);
  switch (parsed.kind) {
    case 'error':
      process.stderr.write(`${command}: ${parsed.message}\n\nRun "${command} --help" for the flags.\n`);
      return options.usageExitCode;
    case 'help':
      process.stdout.write(awsJwtUsage(command));
      return 0;
    case 'version':
      process.stdout.write(`${command} ${version}\n`);
      return 0;
    case 'run': {
      const configText = awsJwtConfigYaml(parsed.settings);
      if (parsed.printConfig) {
        process.stdout.write(configText);
        return 0;
      }
      const { logFormat } = parsed.settings;
      const logDestination = logFormat === 'text' ? createTextDestination() : undefined;
      return serveUntilSignal(
        () => startProxy({ configText, configName: CONFIG_NAME, logStyle: 'aws-outbound-jwt-proxy', ...(logDestination === undefined ? {} : { logDestination }) }),
        command,
      );
    }
  }
}
