#!/usr/bin/env node
import { runAwsJwtCommand } from './aws-jwt-command.js';
import { reportStartupError } from './startup-error.js';

const COMMAND = 'aws-outbound-jwt-proxy';

runAwsJwtCommand(COMMAND, process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(reportStartupError(err, COMMAND)),
);
