#!/usr/bin/env node
// `pnpm quickstart`: builds the workspace, starts a local echo upstream (127.0.0.1:8081) and a
// demo DNS server (127.0.0.1:8053, api.example.test -> 127.0.0.1), then runs the proxy on
// examples/quickstart.yaml (127.0.0.1:8080) and prints curl lines to try. Ctrl-C stops it all.
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = spawnSync('pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const kit = await import(pathToFileURL(join(root, 'tooling/test-kit/dist/index.js')).href);
const upstream = await kit.startEchoServer({ host: '127.0.0.1', port: 8081 });
const dns = await kit.startDnsServer({
  host: '127.0.0.1',
  port: 8053,
  records: { 'api.example.test': { A: ['127.0.0.1'] }, 'blocked.example.test': { A: ['127.0.0.1'] } },
});

const realSecret = 'demo-real-secret-value';
const proxy = spawn(process.execPath, [join(root, 'apps/proxy/dist/cli.js'), '--config', join(root, 'examples/quickstart.yaml')], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, DEMO_API_KEY: realSecret },
});

const p = 'curl -s -x http://127.0.0.1:8080';
process.stdout.write(`
Quick start is running:
  proxy          http://127.0.0.1:8080   (config: examples/quickstart.yaml; audit lines below)
  echo upstream  http://api.example.test:8081 -> 127.0.0.1:8081 (answers with the request it got)
  demo secret    DEMO_API_KEY=${realSecret} (only the proxy has it)

Try, in another terminal:
  # allowed (200): the upstream echoes the request
  ${p} http://api.example.test:8081/get
  # blocked by the allowlist (403): a host it does not name, and a port it does not name
  ${p} -i http://blocked.example.test:8081/
  ${p} -i http://api.example.test:22/
  # the placeholder is swapped for the real secret in a header, in Basic auth, in the query, in the body
  ${p} -H 'Authorization: Bearer proxy-demo-token' http://api.example.test:8081/headers
  ${p} -u 'user:proxy-demo-token' http://api.example.test:8081/basic
  ${p} 'http://api.example.test:8081/search?key=proxy-demo-token'
  ${p} -d '{"token":"proxy-demo-token"}' http://api.example.test:8081/post

Press Ctrl-C to stop.
`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  proxy.kill('SIGTERM');
  await new Promise((r) => proxy.once('exit', r));
  await upstream.close();
  await dns.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
proxy.on('exit', (code) => {
  if (!stopping) {
    process.stderr.write(`proxy exited with code ${code}\n`);
    void upstream.close().then(() => dns.close()).then(() => process.exit(code ?? 1));
  }
});
