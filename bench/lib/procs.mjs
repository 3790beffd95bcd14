// Child processes of the harness: pinned start, readiness by TCP connect, peak RSS of a
// process tree from /proc, and a bounded stop.

import { spawn, execFile } from 'node:child_process';
import { readFileSync, readdirSync, openSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** CPU split: load generator, origin and harness on core 0; the proxy under test on core 1. */
export const CORES = { load: '0', proxy: '1' };

/** A free 127.0.0.1 port (bound to 0, then released). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `cmd args` pinned to `core` with `taskset` (which execs, so the pid is the program's).
 * Output goes to `logFile`.
 */
export function startPinned(core, cmd, args, { env, logFile, cwd } = {}) {
  const out = logFile === undefined ? 'ignore' : openSync(logFile, 'a');
  const child = spawn('taskset', ['-c', core, cmd, ...args], {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', out, out],
  });
  child.on('error', () => {});
  return child;
}

/** Resolves once every port accepts a TCP connection; throws after `timeoutMs`. */
export async function waitForPorts(ports, child, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    for (;;) {
      if (child !== undefined && child.exitCode !== null) throw new Error(`exited with code ${child.exitCode} before listening`);
      const ok = await new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`port ${port} not listening after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function childrenOf(pid) {
  const out = [];
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** `pid` and its descendants. */
function treeOf(pid) {
  const out = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop();
    out.push(p);
    stack.push(...childrenOf(p));
  }
  return out;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) used so far by `pid` and its descendants. Differences of this
 * over a run, divided by the requests served, give a cost per request that, unlike req/s,
 * does not depend on whether the load generator's core was the bottleneck.
 */
export function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of treeOf(pid)) {
    try {
      // Fields after the command (which may hold spaces) start at the last ')'.
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(')').pop().trim().split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/** Sum of one `/proc/<pid>/status` field (in KiB) over `pid` and its descendants, in MiB. */
function statusMiB(pid, field) {
  let kib = 0;
  const pattern = new RegExp(`${field}:\\s+(\\d+) kB`);
  for (const p of treeOf(pid)) {
    try {
      const m = pattern.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      // the process ended meanwhile
    }
  }
  return kib / 1024;
}

/** Sum of VmHWM (peak resident set since start, or since {@link resetPeakRss}) over `pid` and its descendants, in MiB. */
export function peakRssMiB(pid) {
  return statusMiB(pid, 'VmHWM');
}

/**
 * Resets the peak resident set (VmHWM) of `pid` and its descendants to what they hold now
 * (`echo 5 > /proc/<pid>/clear_refs`), so that the next {@link peakRssMiB} is the peak of what
 * ran since, not of an earlier case in the same process.
 */
export function resetPeakRss(pid) {
  for (const p of treeOf(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // the process ended meanwhile
    }
  }
}

/** Sum of VmRSS (resident set now) over `pid` and its descendants, in MiB. */
export function rssMiB(pid) {
  return statusMiB(pid, 'VmRSS');
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stop(child, graceMs = 3000) {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Runs a command to completion; resolves with its stdout, throws with its stderr. */
export async function run(cmd, args, options = {}) {
  const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...options });
  return stdout;
}

/** Whether an executable is on PATH. */
export async function have(cmd) {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}
