#!/usr/bin/env node
// The project's test command (`pnpm test`, run by CI through README.md):
//   1. build every package (the end-to-end suites start the built `proxy` binary),
//   2. typecheck and lint (each counted as one test case),
//   3. run every vitest suite of the workspace,
// then print one closing line `N passed, N failed` and exit non-zero on any failure.
// Extra arguments are passed to vitest (e.g. `pnpm test packages/core`); `--no-static`
// skips typecheck and lint for a quicker local loop.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const skipStatic = args.includes('--no-static');
const vitestArgs = args.filter((a) => a !== '--no-static');

let passed = 0;
let failed = 0;

function run(label, command, commandArgs) {
  process.stdout.write(`\n== ${label}: ${command} ${commandArgs.join(' ')}\n`);
  const r = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit', env: process.env });
  return r.status === 0;
}

function finish() {
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  process.exit(failed > 0 ? 1 : 0);
}

if (!run('build', 'pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'])) {
  failed++;
  process.stdout.write('build failed; tests not run\n');
  finish();
}
passed++;

if (!skipStatic) {
  if (run('typecheck', 'pnpm', ['exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only'])) passed++;
  else failed++;
  if (run('lint', 'pnpm', ['exec', 'eslint', '.'])) passed++;
  else failed++;
}

const report = join(root, '.tmp', 'vitest-report.json');
mkdirSync(dirname(report), { recursive: true });
rmSync(report, { force: true });
const ok = run('tests', 'pnpm', ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...vitestArgs]);
try {
  const json = JSON.parse(readFileSync(report, 'utf8'));
  passed += json.numPassedTests ?? 0;
  failed += json.numFailedTests ?? 0;
  // A suite that failed to load has no failed test of its own: count it.
  const brokenSuites = (json.testResults ?? []).filter((s) => s.status === 'failed' && (s.assertionResults ?? []).every((a) => a.status !== 'failed')).length;
  failed += brokenSuites;
  if (!ok && json.numFailedTests === 0 && brokenSuites === 0) failed++;
  if ((json.numTotalTests ?? 0) === 0) {
    process.stdout.write('no test was executed\n');
    failed++;
  }
} catch {
  process.stdout.write('vitest wrote no report\n');
  failed++;
}
finish();
