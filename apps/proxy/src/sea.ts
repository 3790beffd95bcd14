// The entry of the single executable (see tsdown.sea.config.ts and scripts/build-sea.mjs). The
// binary embeds the Node.js it runs on, so there is no version to check. It is bundled into one
// CommonJS script, which cannot await at the top level as cli.ts does; the bundler keeps the
// dynamic import lazy, so a restart for the runtime settings happens before the rest loads.
import { relaunchWithRuntimeFlags } from './runtime-flags.js';

relaunchWithRuntimeFlags();
void import('./proxy-command.js').then(({ runProxyCommand }) => runProxyCommand(process.argv.slice(2)));
