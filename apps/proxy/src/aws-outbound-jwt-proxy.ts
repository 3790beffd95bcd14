#!/usr/bin/env node
// The `aws-outbound-jwt-proxy` executable: settles the runtime flags before anything heavy is loaded.
import { relaunchWithRuntimeFlags } from './runtime-flags.js';

relaunchWithRuntimeFlags();
const { runAwsOutboundJwtProxy } = await import('./aws-outbound-jwt-proxy-command.js');
runAwsOutboundJwtProxy(process.argv.slice(2));
