/** The `aws-outbound-jwt-proxy` command, loaded by `aws-outbound-jwt-proxy.ts` once the runtime flags are settled. */
import { runAwsJwtCommand } from './aws-jwt-command.js';
import { reportStartupError } from './startup-error.js';

const COMMAND = 'aws-outbound-jwt-proxy';

/** Runs `aws-outbound-jwt-proxy` with `argv` (the arguments after the executable) and exits with its code. */
export function runAwsOutboundJwtProxy(argv: readonly string[]): void {
  runAwsJwtCommand(COMMAND, argv, process.env, { usageExitCode: 1 }).then(
    (code) => process.exit(code),
    (err: unknown) => process.exit(reportStartupError(err, COMMAND)),
  );
}
