import { v8GcFunction } from './v8-gc.js';

/**
 * Collects what start-up left behind, once the proxy is serving: the garbage of loading the
 * modules, compiling the config schema and building the transforms, and the young generation
 * start-up grew to its cap (16 MiB) and left nearly empty. An idle proxy never collects again,
 * so without this it keeps all of it: about 100 MiB resident instead of about 85
 * (bench/README.md, "Idle RSS"). One last-resort collection takes some 60 ms.
 *
 * The proxy's own context never gets a global `gc` ({@link v8GcFunction}). Nothing happens when
 * `PROXY_RUNTIME_FLAGS=off` (the operator runs V8 as it comes).
 */
export function collectStartupGarbage(): void {
  if (process.env.PROXY_RUNTIME_FLAGS === 'off') return;
  v8GcFunction()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
