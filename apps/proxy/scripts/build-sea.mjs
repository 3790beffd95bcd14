// Turns dist-sea/proxy.cjs (built by `tsdown -c tsdown.sea.config.ts`) into dist-sea/proxy, a
// single executable: a copy of the running Node.js binary with the script injected as its SEA
// blob (https://nodejs.org/api/single-executable-applications.html). Node 24 has no
// `--build-sea`, so this takes the documented steps: `--experimental-sea-config`, then postject.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inject } from 'postject';

if (process.platform !== 'linux') {
  // macOS needs the blob in a NODE_SEA segment and the binary re-signed, Windows an .exe.
  process.stderr.write(`build-sea: only Linux is supported (this is ${process.platform})\n`);
  process.exit(1);
}

const dir = fileURLToPath(new URL('../dist-sea/', import.meta.url));
const main = `${dir}proxy.cjs`;
const blob = `${dir}proxy.blob`;
const seaConfig = `${dir}sea-config.json`;
const binary = `${dir}proxy`;

writeFileSync(
  seaConfig,
  `${JSON.stringify(
    {
      main,
      output: blob,
      disableExperimentalSEAWarning: true,
      // The code cache compiles the 10 MB script at build time rather than at every start.
      useCodeCache: process.env.PROXY_SEA_CODE_CACHE !== 'off',
    },
    null,
    2,
  )}\n`,
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });

rmSync(binary, { force: true });
copyFileSync(process.execPath, binary);
chmodSync(binary, 0o755);
// The Node.js binary carries a symbol table and debug information (about 18 MB) that only a
// debugger reads; the dynamic symbols native addons link against stay. Left as is where
// `strip` is missing.
try {
  execFileSync('strip', ['--strip-all', binary], { stdio: ['ignore', 'inherit', 'ignore'] });
} catch {
  process.stderr.write('build-sea: strip not available, the binary keeps its debug information\n');
}
await inject(binary, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2' });
rmSync(blob);
process.stdout.write(`build-sea: ${binary} (${(statSync(binary).size / 2 ** 20).toFixed(1)} MiB)\n`);
