import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The options of V8's `gc` function (the `gc` extension) that the proxy uses. */
export interface GcOptions {
  /** `minor`: a young-generation collection (scavenge); `major`: a full one. */
  readonly type: 'minor' | 'major';
  readonly execution?: 'sync' | 'async';
  /** `last-resort` (major only): also compacts and releases what V8 keeps for later. */
  readonly flavor?: 'regular' | 'last-resort';
}

/** V8's `gc` function. */
export type GcFunction = (options: GcOptions) => void;

let cached: GcFunction | undefined;

/**
 * V8's `gc` function, without giving the proxy a global `gc`: it is taken from a new context
 * created while `--expose-gc` is set, then the flag is cleared again. When the process already
 * runs with `--expose-gc`, that global function is returned.
 */
export function v8GcFunction(): GcFunction {
  const exposed = (globalThis as { gc?: GcFunction }).gc;
  if (typeof exposed === 'function') return exposed;
  if (cached !== undefined) return cached;
  setFlagsFromString('--expose-gc');
  try {
    cached = runInNewContext('gc') as GcFunction;
    return cached;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
