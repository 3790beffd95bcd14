// Every server the harness starts: the nginx origin (load core) and each proxy under test
// (proxy core): ours from apps/proxy/dist/cli.js with a generated YAML config, nginx
// proxy_pass, a bare Fastify + @fastify/http-proxy forwarder, tinyproxy, squid and mitmdump.
// Each start returns { name, child, ports, stop() } once its ports accept connections.

import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MEMORY_SAMPLER } from './memory-profile.mjs';
import { CORES, freePort, startPinned, stop, waitForPorts } from './procs.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PROXY_CLI = join(REPO, 'apps/proxy/dist/cli.js');
const FORWARDER = fileURLToPath(new URL('../peers/fastify-forwarder.mjs', import.meta.url));
const MITM_ADDON = fileURLToPath(new URL('../peers/mitm_addon.py', import.meta.url));

async function started(name, child, ports, logFile, timeoutMs) {
  try {
    await waitForPorts(ports, child, timeoutMs);
  } catch (err) {
    await stop(child);
    throw new Error(`${name} did not start (${err.message}); see ${logFile}`);
  }
  return { name, child, ports, stop: () => stop(child) };
}

/** The origin: nginx with one worker on the load core, serving /1k and /64k, plain and TLS. */
export async function startOrigin(workDir, pki) {
  const root = join(workDir, 'www');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, '1k'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(root, '64k'), Buffer.alloc(65536, 'b'));
  const plain = await freePort();
  const tls = await freePort();
  const conf = join(workDir, 'origin-nginx.conf');
  writeFileSync(
    conf,
    `user root;
worker_processes 1;
daemon off;
pid ${workDir}/origin-nginx.pid;
error_log ${workDir}/origin-nginx.error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type application/octet-stream;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path ${workDir}/ngx-body;
  proxy_temp_path ${workDir}/ngx-proxy;
  fastcgi_temp_path ${workDir}/ngx-fcgi;
  uwsgi_temp_path ${workDir}/ngx-uwsgi;
  scgi_temp_path ${workDir}/ngx-scgi;
  ssl_session_cache off;
  ssl_session_tickets off;
  server { listen 127.0.0.1:${plain}; root ${root}; }
  server {
    listen 127.0.0.1:${tls} ssl;
    ssl_certificate ${pki.certFile};
    ssl_certificate_key ${pki.keyFile};
    root ${root};
  }
}
`,
  );
  const log = join(workDir, 'origin.log');
  const child = startPinned(CORES.load, 'nginx', ['-c', conf, '-p', workDir], { logFile: log });
  const s = await started('origin nginx', child, [plain, tls], log);
  return { ...s, plain, tls };
}

/**
 * Our proxy with `yaml` (a function of the ports it is given) in `dir`, pinned to the proxy
 * core. `portNames` lists the ports to allocate; every one is waited for. `nodeFlags` are Node
 * flags for this proxy alone, after BENCH_NODE_FLAGS.
 */
export async function startOurs(label, workDir, portNames, yaml, env = {}, nodeFlags = []) {
  const ports = {};
  for (const n of portNames) ports[n] = await freePort();
  const file = join(workDir, `ours-${label}.yaml`);
  writeFileSync(file, yaml(ports));
  const log = join(workDir, `ours-${label}.log`);
  // BENCH_PROFILE=1: V8 CPU profiles (written when the proxy stops) for `node --cpu-prof`-style reading.
  const profile = process.env.BENCH_PROFILE === '1' ? ['--cpu-prof', `--cpu-prof-dir=${join(workDir, 'profiles', label)}`] : [];
  // BENCH_NODE_FLAGS: more Node flags for our proxy (e.g. `--trace-gc`, whose lines land in its log).
  const extra = [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''), ...nodeFlags];
  // BENCH_MEMORY_PROFILE=1: samples of what its memory is made of (lib/memory-profile.mjs).
  const memorySamples = process.env.BENCH_MEMORY_PROFILE === '1' ? join(workDir, `memory-${label}.jsonl`) : undefined;
  const sampler = memorySamples === undefined ? [] : ['--import', pathToFileURL(MEMORY_SAMPLER).href];
  const childEnv = memorySamples === undefined ? env : { ...env, BENCH_MEMORY_SAMPLES: memorySamples };
  const child = startPinned(CORES.proxy, process.execPath, [...profile, ...sampler, ...extra, PROXY_CLI, '--config', file], { env: childEnv, logFile: log, cwd: workDir });
  const s = await started(`ours (${label})`, child, Object.values(ports), log);
  return { ...s, port: ports, memorySamples };
}

/** nginx as a reverse proxy (one worker) adding `header` to every request. */
export async function startNginxReverse(workDir, originPort, header) {
  const port = await freePort();
  const dir = join(workDir, 'nginx-reverse');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `user root;
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 128; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header ${header.name} "${header.value}";
      proxy_buffering off;
    }
  }
}
`,
  );
  const log = join(dir, 'out.log');
  const child = startPinned(CORES.proxy, 'nginx', ['-c', conf, '-p', dir], { logFile: log });
  return { ...(await started('nginx proxy_pass', child, [port], log)), port };
}

/** A bare Fastify + @fastify/http-proxy forwarder (peers/fastify-forwarder.mjs). */
export async function startFastifyForwarder(workDir, originPort) {
  const port = await freePort();
  const log = join(workDir, 'fastify-forwarder.log');
  const child = startPinned(CORES.proxy, process.execPath, [FORWARDER, String(port), `http://127.0.0.1:${originPort}`], { logFile: log });
  return { ...(await started('fastify forwarder', child, [port], log)), port };
}

/** tinyproxy in the foreground, logging only critical lines. */
export async function startTinyproxy(workDir) {
  const port = await freePort();
  const conf = join(workDir, 'tinyproxy.conf');
  writeFileSync(
    conf,
    `User nobody
Group nogroup
Port ${port}
Listen 127.0.0.1
Timeout 600
MaxClients 512
LogLevel Critical
LogFile "${workDir}/tinyproxy.log"
Allow 127.0.0.1
DisableViaHeader Yes
`,
  );
  const log = join(workDir, 'tinyproxy.out');
  const child = startPinned(CORES.proxy, 'tinyproxy', ['-d', '-c', conf], { logFile: log });
  return { ...(await started('tinyproxy', child, [port], log)), port };
}

/** squid (no disk cache, no access log, one process in the foreground). */
export async function startSquid(workDir) {
  const port = await freePort();
  const dir = join(workDir, 'squid');
  mkdirSync(dir, { recursive: true, mode: 0o777 });
  const conf = join(dir, 'squid.conf');
  writeFileSync(
    conf,
    `http_port 127.0.0.1:${port}
http_access allow all
cache deny all
cache_mem 8 MB
access_log none
cache_store_log none
cache_log ${dir}/cache.log
pid_filename ${dir}/squid.pid
coredump_dir ${dir}
netdb_filename none
cache_effective_user proxy
shutdown_lifetime 0 seconds
via off
forwarded_for delete
client_persistent_connections on
server_persistent_connections on
`,
  );
  const log = join(dir, 'out.log');
  const child = startPinned(CORES.proxy, 'squid', ['-N', '-f', conf], { logFile: log });
  return { ...(await started('squid', child, [port], log)), port };
}

/** mitmdump with peers/mitm_addon.py (allowlist + header value replace). */
export async function startMitmdump(workDir, realToken) {
  const port = await freePort();
  const confdir = join(workDir, 'mitmproxy');
  mkdirSync(confdir, { recursive: true });
  const log = join(workDir, 'mitmdump.log');
  const child = startPinned(
    CORES.proxy,
    'mitmdump',
    ['-q', '--listen-host', '127.0.0.1', '-p', String(port), '--set', `confdir=${confdir}`, '--set', 'ssl_insecure=true', '--set', 'flow_detail=0', '-s', MITM_ADDON],
    { logFile: log, env: { BENCH_REAL_TOKEN: realToken } },
  );
  const s = await started('mitmdump', child, [port], log, 40000);
  const ca = join(confdir, 'mitmproxy-ca-cert.pem');
  if (!existsSync(ca)) throw new Error(`mitmdump wrote no CA at ${ca}`);
  return { ...s, port, ca };
}
