import { execFile, type ExecFileException } from 'node:child_process';
import type { SecretSourceConfig, SecretSourceDefinition } from '@proxy/core';

/** The `source` block of this backend. */
export interface CommandSourceConfig extends SecretSourceConfig {
  readonly type: '@acme/proxy-source-command';
  /** The program and its arguments, run without a shell: `["pass", "show", "openai"]`. */
  readonly command: readonly string[];
  /** Drop one trailing newline from the output (default `true`: most CLIs print one). */
  readonly trim_newline?: boolean;
}

/** Most a command may print; more is a failure (a secret is not a log). */
const MAX_OUTPUT_BYTES = 65_536;

/**
 * A secret backend whose value is what a command prints: `pass show`, `gcloud secrets versions
 * access`, `vault kv get -field=...`, a script of your own. The command runs in the proxy's
 * environment (the one the proxy gives its sources), from the config file's directory, without
 * a shell. It is killed when the fetch is given up on (the proxy's 30 s timeout, or shutdown).
 * A failure says how the command ended, never what it printed: its output could be the secret.
 */
export const commandSource: SecretSourceDefinition<CommandSourceConfig> = {
  type: '@acme/proxy-source-command',
  properties: {
    command: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
    trim_newline: { type: 'boolean' },
  },
  required: ['command'],
  // Names the secret by the command; arguments are names (an entry, a secret id), not values.
  label: (config) => config.command.join(' '),
  create(config, context) {
    const [program, ...args] = config.command as [string, ...string[]];
    return {
      fetch: (signal) =>
        new Promise<string>((resolve, reject) => {
          execFile(
            program,
            args,
            { cwd: context.baseDir, env: { ...context.env }, signal, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', windowsHide: true },
            (error, stdout) => {
              if (error !== null) return reject(new Error(describe(error, program)));
              const value = config.trim_newline === false ? stdout : stdout.replace(/\r?\n$/, '');
              if (value === '') return reject(new Error(`${program} printed nothing`));
              resolve(value);
            },
          );
        }),
    };
  },
};

/** How the command failed, from its exit status: never its output. */
function describe(error: ExecFileException, program: string): string {
  if (error.name === 'AbortError') return `${program} was stopped`;
  if (error.code === 'ENOENT') return `${program}: command not found`;
  if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return `${program} printed more than ${MAX_OUTPUT_BYTES} bytes`;
  if (typeof error.code === 'number') return `${program} exited with status ${error.code}`;
  if (error.signal) return `${program} was killed by ${error.signal}`;
  return `${program} failed (${String(error.code ?? error.name)})`;
}
