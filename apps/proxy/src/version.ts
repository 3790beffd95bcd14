import { createRequire } from 'node:module';

/** This app's version, from its package.json (works from `src/` and from the built `dist/`). */
export const version: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
