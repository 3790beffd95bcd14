// The entry of the single executable (see tsdown.sea.config.ts and scripts/build-sea.mjs). The
// binary embeds the Node.js it runs on, so there is no version to check. It is bundled into one
// CommonJS script, which cannot await at the top level as cli.ts does; the bundler keeps the
// dynamic import lazy, so a restart for the runtime settings happens before the rest loads.
import cluster from 'node:cluster';
import { relaunchWithRuntimeFlags } from './runtime-flags.js';

relaunchWithRuntimeFlags();
// A cluster worker (`proxy.workers` > 1) is started as `binary binary ...arguments`: the primary
// names the binary as the script cluster.fork needs. It is no argument of the proxy's.
const args = process.argv.slice(2);
if (cluster.isWorker && args[0] === process.execPath) args.shift();
void import('./proxy-command.js').then(({ runProxyCommand }) => runProxyCommand(args));
