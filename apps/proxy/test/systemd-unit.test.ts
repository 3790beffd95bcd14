/**
 * deploy/proxy.service: its hardening is checked by reading it, and by systemd's own
 * `systemd-analyze verify` and `systemd-analyze security --offline` when systemd-analyze is
 * installed (CI installs Debian's `systemd` for them; elsewhere those tests are skipped). Neither
 * needs a running systemd.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const UNIT = join(root, 'deploy/proxy.service');
const INSTALLED_EXEC_START = '/usr/local/bin/proxy --config /etc/proxy/proxy.yaml';
const ANALYZE = spawnSync('sh', ['-c', 'command -v systemd-analyze || ls /usr/bin/systemd-analyze'], { encoding: 'utf8' }).stdout.trim().split('\n')[0] ?? '';
const NO_ANALYZE = 'systemd-analyze is not installed (Debian package "systemd"; .ci/run installs it)';

/** The unit's directives as `Key` -> values (a key set twice has two), comments left out. */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m !== null) found.set(m[1]!, [...(found.get(m[1]!) ?? []), m[2]!]);
  }
  return found;
}

let text: string;
let dir: string;
let checkedCopy: string;
beforeAll(async () => {
  text = await readFile(UNIT, 'utf8');
  dir = await mkdtemp(join(tmpdir(), 'proxy-unit-'));
  // `verify` refuses a unit whose ExecStart binary does not exist, and /usr/local/bin/proxy
  // exists only where the app is installed: the copy runs this Node with the built CLI's path
  // instead (only the executable, Node, has to exist). Every other line is checked as written.
  checkedCopy = join(dir, 'proxy.service');
  await writeFile(checkedCopy, text.replace(`ExecStart=${INSTALLED_EXEC_START}`, `ExecStart=${process.execPath} ${join(root, 'apps/proxy/dist/cli.js')} --config /etc/proxy/proxy.yaml`));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('deploy/proxy.service', () => {
  it('runs the installed proxy on /etc/proxy/proxy.yaml, reloads with SIGHUP, restarts on failure', () => {
    const d = directives(text);
    expect(d.get('ExecStart')).toEqual([INSTALLED_EXEC_START]);
    expect(d.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(d.get('Restart')).toEqual(['on-failure']);
    expect(d.get('ConfigurationDirectory')).toEqual(['proxy']);
    expect(d.get('StateDirectory')).toEqual(['proxy']);
    expect(Number(d.get('LimitNOFILE')?.[0])).toBeGreaterThanOrEqual(65536);
  });

  it('may bind low ports and nothing more, in a hardened sandbox', () => {
    const d = directives(text);
    expect(d.get('DynamicUser')).toEqual(['yes']);
    expect(d.get('AmbientCapabilities')).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(d.get('CapabilityBoundingSet')).toEqual(['CAP_NET_BIND_SERVICE']);
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups']) {
      expect(d.get(key), key).toEqual(['yes']);
    }
    expect(d.get('ProtectSystem')).toEqual(['strict']);
    expect(d.get('RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX']);
    expect(d.get('SystemCallFilter')).toEqual(['@system-service']);
  });

  it('leaves MemoryDenyWriteExecute unset, and says why (V8 JIT)', () => {
    expect(directives(text).has('MemoryDenyWriteExecute')).toBe(false);
    expect(text).toMatch(/^# MemoryDenyWriteExecute= must NOT be set: V8's JIT/m);
  });

  it('passes systemd-analyze verify without a warning', (ctx) => {
    if (ANALYZE === '') return ctx.skip(NO_ANALYZE);
    const r = spawnSync(ANALYZE, ['verify', checkedCopy], { encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    expect(r.status, output).toBe(0);
    // verify exits 0 on unknown keys and unparsable values, only warning about them.
    expect(output.split('\n').filter((l) => l.includes('proxy.service')), output).toEqual([]);
  });

  it('rates OK in systemd-analyze security', (ctx) => {
    if (ANALYZE === '') return ctx.skip(NO_ANALYZE);
    const r = spawnSync(ANALYZE, ['security', '--offline=true', '--no-pager', checkedCopy], { encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    // --offline (systemd 250+) analyses the file itself; older versions ask a running systemd.
    if (r.status !== 0 && !/Overall exposure level/.test(output)) return ctx.skip(`systemd-analyze security --offline is unavailable here: ${output.trim().split('\n')[0] ?? ''}`);
    const m = /Overall exposure level for proxy\.service: ([\d.]+) (\w+)/.exec(output);
    expect(m, output).not.toBeNull();
    expect(m![2], output).toBe('OK');
    expect(Number(m![1])).toBeLessThanOrEqual(2.5);
  });
});
