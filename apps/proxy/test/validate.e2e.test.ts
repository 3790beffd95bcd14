import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProxyProcess } from './support/proxy-process.js';

const BAD = `proxy:
  http_listen: "127.0.0.1:0"
  upstream_response_header_timeout: "5 minutes"
  upstream_deny_cidrs: ["10.0.0.0/33"]
transforms:
  - name: allowlist
    config:
      domans: ["api.example.com"]
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: TOKEN }
          inject:
            header: Authorization
            formatter: "Bearer {{ .Valu }}"
`;

const GOOD = `proxy:
  http_listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["api.example.com"]
`;

/** Valid, but open to every host (warn-mode allowlist) and spraying a secret everywhere. */
const RISKY = `proxy:
  http_listen: "127.0.0.1:0"
transforms:
  - name: allowlist
    config:
      domains: ["*"]
      warn: true
  - name: secrets
    config:
      secrets:
        - source: { type: env, var: RISKY_TOKEN }
          inject: { header: Authorization }
`;

/** The warnings the risky file gets, as `line: field path` pairs. */
const expectedWarnings: [number, string, RegExp][] = [
  [2, 'proxy.http_listen', /no transform decides destinations .*an open proxy/],
  [7, 'transforms[0].config.warn', /warn mode and refuses nothing/],
  [11, 'transforms[1].config.secrets[0].rules', /secret RISKY_TOKEN \(env\) has no rules.*sent to every destination the allowlist permits/],
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'proxy-validate-'));
  await writeFile(join(dir, 'bad.yaml'), BAD);
  await writeFile(join(dir, 'good.yaml'), GOOD);
  await writeFile(join(dir, 'risky.yaml'), RISKY);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The problems the bad file holds, as `line: field path` pairs. */
const expectedProblems: [number, string][] = [
  [3, 'proxy.upstream_response_header_timeout'],
  [4, 'proxy.upstream_deny_cidrs[0]'],
  [8, 'transforms[0].config.domans'],
  [15, 'transforms[1].config.secrets[0].inject.formatter'],
];

function expectEveryProblem(stderr: string): void {
  for (const [line, path] of expectedProblems) {
    const hit = stderr.split('\n').find((l) => l.includes(`bad.yaml:${line}:`) && l.includes(path));
    expect(hit, `expected a line naming bad.yaml:${line} and ${path} in:\n${stderr}`).toBeDefined();
  }
}

describe('proxy validate', () => {
  it('reports every problem of a file at once, with file, line and field, and exits non-zero', async () => {
    const r = await runCli(['validate', '--config', join(dir, 'bad.yaml')]);
    expect(r.code).toBe(1);
    expectEveryProblem(r.stderr);
    expect(r.stderr).toMatch(/duration/);
    expect(r.stderr).toMatch(/CIDR/i);
    expect(r.stderr).toMatch(/\.Valu/);
    expect(r.stderr).toContain('PROXY_ERR_CONFIG_INVALID');
  });

  it('accepts a valid file', async () => {
    const r = await runCli(['validate', '-config', join(dir, 'good.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid');
  });

  it('prints warnings located like errors, and still exits 0', async () => {
    const r = await runCli(['validate', '--config', join(dir, 'risky.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('risky.yaml: valid (2 transforms)');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('proxy: configuration warnings (3)');
    expect(lines).toHaveLength(1 + expectedWarnings.length);
    expectedWarnings.forEach(([line, path, message], i) => {
      const printed = lines[i + 1] ?? '';
      expect(printed.startsWith(`  warning: ${join(dir, 'risky.yaml')}:${line}:`), printed).toBe(true);
      expect(printed).toContain(`: ${path}: `);
      expect(printed).toMatch(message);
    });
  });

  it('names an unreadable file', async () => {
    const r = await runCli(['validate', '--config', join(dir, 'missing.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('missing.yaml');
    expect(r.stderr).toContain('PROXY_ERR_CONFIG_READ');
  });
});

describe('proxy --config on a file with warnings', () => {
  it('starts and logs each warning once at WARN, with file, line, path and text', async () => {
    const proxy = await startProxyProcess(RISKY, { env: { RISKY_TOKEN: 'risky-secret-value' } });
    try {
      const logged = proxy.lines().filter((l) => l.msg === 'config warning');
      expect(logged.map((l) => [l.level, l.line, l.path])).toEqual(expectedWarnings.map(([line, path]) => ['warn', line, path]));
      expectedWarnings.forEach(([, , message], i) => {
        expect(logged[i]?.file).toBe(join(proxy.dir, 'proxy.yaml'));
        expect(logged[i]?.warning).toMatch(message);
      });
      expect(proxy.stdout()).not.toContain('risky-secret-value');
    } finally {
      await proxy.stop();
    }
  });
});

describe('proxy --config on a bad file', () => {
  it('refuses to start, reports the same problems and listens on nothing', async () => {
    const r = await runCli(['--config', join(dir, 'bad.yaml')]);
    expect(r.code).toBe(1);
    expectEveryProblem(r.stderr);
    expect(r.stdout).not.toContain('listening');
  });
});

describe('command line', () => {
  it('prints the version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^proxy \d+\.\d+\.\d+/);
  });

  it('rejects an unknown flag with usage and exit code 2', async () => {
    const r = await runCli(['--nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage');
  });
});
