import { createRequire } from 'node:module';

/** Set at build time by the single-executable bundle (tsdown.sea.config.ts), which has no package.json beside it. */
declare const __PROXY_VERSION__: string | undefined;

/** This app's version, from its package.json (works from `src/` and from the built `dist/`). */
export const version: string =
  typeof __PROXY_VERSION__ === 'string' ? __PROXY_VERSION__ : (createRequire(import.meta.url)('../package.json') as { version: string }).version;
