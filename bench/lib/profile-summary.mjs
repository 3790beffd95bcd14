// Summarises a V8 CPU profile (`node --cpu-prof`, or BENCH_PROFILE=1 runs of the harness):
// self time by package and by function, and inclusive time by function.
//
//   node bench/lib/profile-summary.mjs <file.cpuprofile> [rows]

import { readFileSync } from 'node:fs';

const [file, rowsArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node bench/lib/profile-summary.mjs <file.cpuprofile> [rows]\n');
  process.exit(2);
}
const rows = Number(rowsArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8'));

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map();
for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);

// Time per sampled node: each sample is charged the delta that follows it.
const timeOf = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  timeOf.set(id, (timeOf.get(id) ?? 0) + dt);
  total += dt;
});

/** A short location: `package path:line` for dependencies, the repository path for ours. */
const where = (url) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '')
    .replace(/.*\/(packages|apps)\//, '$1/');
const functionKey = (frame) => `${frame.functionName || '(anonymous)'} ${where(frame.url)}:${frame.lineNumber + 1}`;
const packageKey = (frame) => {
  const url = frame.url;
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const dependency = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dependency) return dependency[1];
  const ours = /\/(packages|apps)\/([^/]+)\//.exec(url);
  return ours ? `${ours[1]}/${ours[2]}` : url;
};

const add = (map, key, t) => map.set(key, (map.get(key) ?? 0) + t);
const selfByPackage = new Map();
const selfByFunction = new Map();
const inclusive = new Map();
for (const [id, t] of timeOf) {
  const frame = nodes.get(id).callFrame;
  add(selfByPackage, packageKey(frame), t);
  add(selfByFunction, functionKey(frame), t);
  // Inclusive: once per distinct function on the stack (recursion counted once).
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parentOf.get(cur)) {
    const key = functionKey(nodes.get(cur).callFrame);
    if (seen.has(key)) continue;
    seen.add(key);
    add(inclusive, key, t);
  }
}

const print = (title, map) => {
  process.stdout.write(`\n== ${title}\n`);
  for (const [key, t] of [...map].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    process.stdout.write(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${key}\n`);
  }
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
print('self time by package', selfByPackage);
print('self time by function', selfByFunction);
print('inclusive time by function', inclusive);
