import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's `gc` function (the `gc` extension), with the options this module passes. */
type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * Collects what start-up left behind, once the proxy is serving: the garbage of loading the
 * modules, compiling the config schema and building the transforms, and the young generation
 * start-up grew to its cap (16 MiB) and left nearly empty. An idle proxy never collects again,
 * so without this it keeps all of it: about 100 MiB resident instead of about 85
 * (bench/README.md, "Idle RSS"). One last-resort collection takes some 60 ms.
 *
 * V8's `gc` function is taken from a new context created while `--expose-gc` is set, then the
 * flag is cleared again: the proxy's own context never gets a global `gc`. Nothing happens when
 * `PROXY_RUNTIME_FLAGS=off` (the operator runs V8 as it comes).
 */
export function collectStartupGarbage(): void {
  if (process.env.PROXY_RUNTIME_FLAGS === 'off') return;
  gcFunction()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

function gcFunction(): GcFunction {
  const exposed = (globalThis as { gc?: GcFunction }).gc;
  if (typeof exposed === 'function') return exposed;
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as GcFunction;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
