/**
 * The container image and the compose example, as far as this machine can take them: no
 * container engine runs here (`docker` is a client only; podman and crun cannot create
 * containers in this sandbox: cgroups in hybrid mode, no CAP_SYS_RESOURCE for rlimits), so the
 * image itself is not built. What the image is made of is exercised outside it: the build
 * stage's `pnpm deploy` output runs on its own (production dependencies only), serves the
 * compose example's config (paths and ports moved to a temporary folder and loopback), and the
 * image's HEALTHCHECK command, run as written, passes against it and fails when it is gone. The
 * Dockerfile and compose file are checked for what the docs promise (non-root, multi-stage,
 * health check, mounted config and CA, the client's DNS pointing at the proxy).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '@proxy/config';
import { queryDns } from '@proxy/test-kit';
import { curl, runCli, startProxyProcess, type ProxyProcess } from './support/proxy-process.js';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const example = join(repo, 'examples/docker-compose');

/** The data of a YAML file (the config loader's parser, which reports syntax errors with their line). */
const parseYaml = (text: string, name: string): unknown => parseConfigText(text, name).data;

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

describe('the Dockerfile and the compose example', () => {
  it('builds in two stages and runs as an unprivileged user with a health check and a mounted config', async () => {
    const steps = instructions(await readFile(join(repo, 'Dockerfile'), 'utf8'));
    const froms = steps.filter((s) => s.op === 'FROM');
    expect(froms.length).toBe(2);
    const final = steps.slice(steps.lastIndexOf(froms.at(-1)!));
    expect(final.filter((s) => s.op === 'USER').map((s) => s.args)).toEqual(['node']);
    expect(final.find((s) => s.op === 'COPY')?.args).toMatch(/^--from=build /);
    expect(final.find((s) => s.op === 'HEALTHCHECK')?.args).toContain('proxy health --url \\"$PROXY_HEALTH_URL\\"');
    expect(final.find((s) => s.op === 'ENTRYPOINT')?.args).toBe('["proxy"]');
    expect(final.find((s) => s.op === 'CMD')?.args).toBe('["--config", "/etc/proxy/proxy.yaml"]');
    const ignored = await readFile(join(repo, '.dockerignore'), 'utf8');
    expect(ignored).toMatch(/^\*\*\/node_modules$/m);
    expect(ignored).toMatch(/^\.toolchain$/m);
  });

  it('wires the client to the proxy by DNS on one bridge network, sharing the CA and mounting the config where the image reads it', async () => {
    const compose = parseYaml(await readFile(join(example, 'docker-compose.yaml'), 'utf8'), 'docker-compose.yaml') as {
      services: Record<string, { dns?: string[]; volumes?: string[]; networks?: Record<string, { ipv4_address: string }>; depends_on?: Record<string, { condition: string }> }>;
      networks: { demo: { ipam: { config: { subnet: string }[] } } };
    };
    const proxy = compose.services.proxy!;
    const proxyIp = proxy.networks!.demo!.ipv4_address;
    expect(compose.services.client!.dns).toEqual([proxyIp]);
    expect(compose.networks.demo.ipam.config[0]!.subnet).toBe('172.20.0.0/24');
    expect(proxyIp.startsWith('172.20.0.')).toBe(true);
    expect(proxy.volumes).toContain('./proxy.yaml:/etc/proxy/proxy.yaml:ro');
    expect(compose.services.client!.depends_on).toEqual({ proxy: { condition: 'service_healthy' } });
    const config = parseYaml(await readFile(join(example, 'proxy.yaml'), 'utf8'), 'proxy.yaml') as { dns: { proxy_ip: string }; tls: { ca_cert: string } };
    expect(config.dns.proxy_ip).toBe(proxyIp);
    expect(config.tls.ca_cert.startsWith('/certs/')).toBe(true);
  });
});

describe("the image's contents, run outside a container", () => {
  let work: string;
  let deployed: string;
  let bin: string;
  let proxy: ProxyProcess | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'proxy-container-'));
    deployed = join(work, 'opt-proxy');
    // The Dockerfile's build stage, from the workspace lockfile and the store the workspace was
    // installed with (offline: `--legacy` would resolve every range again, needing the registry).
    await run('pnpm', ['--filter', '@proxy/app', 'deploy', '--prod', '--config.inject-workspace-packages=true', '--offline', deployed], { cwd: repo, maxBuffer: 16 * 1024 * 1024 });
    // The run stage's `ln -s /opt/proxy/dist/cli.js /usr/local/bin/proxy`.
    bin = join(work, 'bin');
    await mkdir(bin);
    await symlink(join(deployed, 'dist/cli.js'), join(bin, 'proxy'));
  }, 180_000);

  afterAll(async () => {
    await proxy?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  /** Runs `/bin/sh -c <command>` as the HEALTHCHECK does, with the deployed `proxy` on PATH. */
  const healthCheck = (url: string) =>
    run('/bin/sh', ['-c', 'exec proxy health --url "$PROXY_HEALTH_URL"'], {
      env: { PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`, PROXY_HEALTH_URL: url },
    }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (err: { code: number; stderr: string }) => ({ code: err.code, out: err.stderr }),
    );

  it('holds only production dependencies and runs on its own', async () => {
    const manifest = JSON.parse(await readFile(join(deployed, 'package.json'), 'utf8')) as { name: string };
    expect(manifest.name).toBe('@proxy/app');
    const { stdout } = await run(process.execPath, [join(deployed, 'dist/cli.js'), '--version']);
    expect(stdout).toMatch(/^proxy \d+\.\d+\.\d+/);
    await expect(readFile(join(deployed, 'node_modules/vitest/package.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("serves the compose example's config; the HEALTHCHECK passes, then fails once the proxy is gone", async () => {
    const certs = join(work, 'certs');
    const generated = await runCli(['ca', 'generate', '--out', certs, '--name', 'compose demo CA']);
    expect(generated.code, generated.stderr).toBe(0);
    const config = (await readFile(join(example, 'proxy.yaml'), 'utf8'))
      .replaceAll('/certs/', `${certs}/`)
      .replace(/listen: ":\d+"/g, 'listen: "127.0.0.1:0"');
    proxy = await startProxyProcess(config, { script: join(deployed, 'dist/cli.js'), env: { OPENAI_API_KEY: 'sk-real-openai-key-do-not-share', INTERNAL_TOKEN: 'real-internal-secret-value' } });
    const url = `http://127.0.0.1:${proxy.port('metrics')}/healthz`;
    expect(await healthCheck(url)).toEqual({ code: 0, out: `${url}: 200\n` });
    // Every name resolves to the proxy, as the client's DNS needs.
    const answer = await queryDns({ port: proxy.port('dns'), name: 'example.com', type: 'A' });
    expect(answer.answers.map((a) => a.data)).toEqual(['172.20.0.2']);
    // What the client's blocked request gets; nothing is dialled for it.
    const blocked = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: example.com', `http://127.0.0.1:${proxy.port('http')}/`]);
    expect(blocked.stdout).toBe('403');
    await proxy.waitForAudit((a) => a.host === 'example.com' && a.rejected_by === 'allowlist');
    await proxy.stop();
    proxy = undefined;
    const down = await healthCheck(url);
    expect(down.code).toBe(1);
    expect(down.out).toContain('unreachable');
  });
});
