// pnpm hooks. Only `beforePacking` (pnpm >= 10.28): it shapes the manifest that `pnpm pack` and
// `pnpm publish` (so `changeset publish` and `pnpm release:pack`) put in a tarball.
//
// In the repository, every package's `exports` carries a `@proxy/source` condition pointing at
// its TypeScript sources (vitest and tsc use them); `src/` is not shipped, so the condition is
// dropped from the packed manifest. Dev dependencies (private workspace tooling among them) and
// the build/test scripts mean nothing to an installed package and are dropped too.
// pnpm records this file's checksum in pnpm-lock.yaml: after editing it, run `pnpm install`.
/* global module */
'use strict';

const SOURCE_CONDITION = '@proxy/source';

function withoutSourceCondition(value) {
  if (Array.isArray(value)) return value.map(withoutSourceCondition);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key === SOURCE_CONDITION) continue;
    out[key] = withoutSourceCondition(inner);
  }
  return out;
}

function beforePacking(pkg) {
  if (pkg.exports !== undefined) pkg.exports = withoutSourceCondition(pkg.exports);
  delete pkg.devDependencies;
  delete pkg.scripts;
  const text = JSON.stringify(pkg);
  if (text.includes('workspace:')) throw new Error(`${pkg.name}: a workspace: range is left in the packed manifest`);
  if (text.includes('"./src/')) throw new Error(`${pkg.name}: the packed manifest points into src/, which is not shipped`);
  return pkg;
}

module.exports = { hooks: { beforePacking } };
