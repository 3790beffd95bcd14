/** What the command line asked for. */
export type Command =
  | { kind: 'run'; configFile: string }
  | { kind: 'validate'; configFile: string }
  | { kind: 'version' }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

export const usage = `Usage:
  proxy --config FILE            run the proxy (also: -config FILE, as iron-proxy accepts)
  proxy validate --config FILE   check a config file and print every problem in it
  proxy --version                print the version
  proxy --help                   print this help
`;

/**
 * Parses the command line. Flags may be written with one or two dashes and with `=` or a
 * separate value (`--config f`, `-config=f`), so iron-proxy command lines work unchanged.
 */
export function parseCommandLine(argv: readonly string[]): Command {
  const args = [...argv];
  let sub: 'run' | 'validate' = 'run';
  if (args[0] === 'validate') {
    sub = 'validate';
    args.shift();
  } else if (args[0] === 'help') {
    return { kind: 'help' };
  } else if (args[0] === 'version') {
    return { kind: 'version' };
  }
  let configFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) return { kind: 'error', message: `unexpected argument "${arg}"` };
    const [, name, inline] = m;
    switch (name) {
      case 'help':
      case 'h':
        return { kind: 'help' };
      case 'version':
      case 'v':
        return { kind: 'version' };
      case 'config':
      case 'c': {
        const value = inline ?? args[++i];
        if (value === undefined || value === '') return { kind: 'error', message: `flag --${name} needs a file path` };
        configFile = value;
        break;
      }
      default:
        return { kind: 'error', message: `unknown flag "${arg}"` };
    }
  }
  if (configFile === undefined) return { kind: 'error', message: 'missing --config FILE' };
  return { kind: sub, configFile };
}
