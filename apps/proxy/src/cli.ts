#!/usr/bin/env node
// The `proxy` executable. It checks the Node.js version first; everything else is imported
// dynamically after that check (static imports would load, and fail on old Node, before it),
// and the runtime flags are settled before anything heavy is loaded.
import { checkNodeVersion } from './node-version.js';

if (checkNodeVersion('proxy')) {
  const { relaunchWithRuntimeFlags } = await import('./runtime-flags.js');
  relaunchWithRuntimeFlags();
  const { runProxyCommand } = await import('./proxy-command.js');
  runProxyCommand(process.argv.slice(2));
}
