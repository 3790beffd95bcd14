#!/usr/bin/env node
// The `aws-outbound-jwt-proxy` executable. It checks the Node.js version first; everything else
// is imported dynamically after that check (static imports would load, and fail on old Node,
// before it), and the runtime flags are settled before anything heavy is loaded.
import { checkNodeVersion } from './node-version.js';

if (checkNodeVersion('aws-outbound-jwt-proxy')) {
  const { relaunchWithRuntimeFlags } = await import('./runtime-flags.js');
  relaunchWithRuntimeFlags();
  const { runAwsOutboundJwtProxy } = await import('./aws-outbound-jwt-proxy-command.js');
  runAwsOutboundJwtProxy(process.argv.slice(2));
}
