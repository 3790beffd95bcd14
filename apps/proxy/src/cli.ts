#!/usr/bin/env node
// The `proxy` executable: settles the runtime flags before anything heavy is loaded.
import { relaunchWithRuntimeFlags } from './runtime-flags.js';

relaunchWithRuntimeFlags();
const { runProxyCommand } = await import('./proxy-command.js');
runProxyCommand(process.argv.slice(2));
