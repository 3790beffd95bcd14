// Resolves the bench's npm dependencies. bench/ is not (yet) a pnpm workspace member, so when
// a normal import fails this falls back to the copy pnpm keeps in the root store
// (node_modules/.pnpm/<name>@<version>/node_modules/<name>), newest version first.

import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const STORE = fileURLToPath(new URL('../../node_modules/.pnpm/', import.meta.url));

/** Imports `name` from bench's node_modules, else from the workspace's pnpm store. */
export async function loadDependency(name) {
  try {
    return await import(name);
  } catch {
    const prefix = `${name.replace('/', '+')}@`;
    const versions = readdirSync(STORE)
      .filter((d) => d.startsWith(prefix) && !d.slice(prefix.length).includes('_'))
      .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
    if (versions.length === 0) throw new Error(`cannot find ${name}: run pnpm install`);
    const dir = join(STORE, versions[0], 'node_modules', name);
    const entry = createRequire(join(dir, 'package.json')).resolve(name);
    return import(pathToFileURL(entry).href);
  }
}
