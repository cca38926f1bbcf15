/**
 * The built image, run with exactly what the sidecar manifest grants — its capabilities (every
 * other one dropped, not --privileged), its seccomp profile, its read-only root, no privilege
 * escalation, and its host mounts, all read from deploy/kong-sidecar-deployment.yaml — with host
 * PID and network as a pod shares them, against the Kong-shaped gateway: it must answer --help, carry its OCI labels,
 * become ready and print one request line per proxied request.
 * scripts/container-test.sh builds the image and runs this file with IMG set.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { readJsonLines } from '../fixture/json-lines';

const MANIFEST = path.join(__dirname, '..', '..', 'deploy', 'kong-sidecar-deployment.yaml');
const CONTAINER = 'kong-ebpf-monitor';

interface SidecarSpec {
  capabilities: string[];
  /** podman's --security-opt seccomp= for the manifest's seccompProfile */
  seccomp?: string;
  readOnlyRoot: boolean;
  /** podman -v host:container[:ro] for every hostPath mount */
  mounts: string[];
  hostProc: string;
}

/** The agent container of the sidecar manifest, as podman flags. */
function sidecarSpec(): SidecarSpec {
  type Obj = Record<string, any>;
  const docs = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => d.toJSON() as Obj);
  const deployment = docs.find((d) => d?.kind === 'Deployment');
  const pod = deployment?.spec?.template?.spec as Obj;
  const container = (pod.containers as Obj[]).find((c) => c.name === CONTAINER)!;
  const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v]));
  const mounts: string[] = [];
  for (const m of container.volumeMounts as Obj[]) {
    const hostPath = volumes.get(m.name)?.hostPath?.path as string | undefined;
    if (hostPath) mounts.push(`${hostPath}:${m.mountPath}${m.readOnly ? ':ro' : ''}`);
    else mounts.push(`--tmpfs=${m.mountPath}`);
  }
  return {
    capabilities: container.securityContext.capabilities.add as string[],
    seccomp: container.securityContext.seccompProfile?.type === 'Unconfined' ? 'unconfined' : undefined,
    readOnlyRoot: container.securityContext.readOnlyRootFilesystem === true,
    mounts,
    hostProc: (container.env as Obj[]).find((e) => e.name === 'HOST_PROC')?.value ?? '/proc',
  };
}

const IMG = process.env.IMG ?? 'kong-watcher:test';
const PROXY_PORT = 19410;
const ADMIN_PORT = 19411;
const UPSTREAM_PORT = 19412;
const HEALTH_PORT = 19413;
const REQUESTS = 40;
const NAME = `kw-ship-agent-${process.pid}`;
const PODMAN = ['--runtime', 'runc', '--cgroup-manager=cgroupfs'];
const RUN = ['run', '--rm', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096'];

interface Line {
  msg?: string;
  [key: string]: unknown;
}

function podman(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('podman', [...PODMAN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean, tail: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${tail()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe(`image ${IMG}`, () => {
  it('prints its usage with --help', () => {
    const r = podman([...RUN, IMG, '--help']);
    assert.equal(r.status, 0, `--help exits 0:\n${r.out}`);
    assert.match(r.out, /Usage: kong-watcher/, 'usage text');
  });

  it('prints the package version with --version', () => {
    const r = podman([...RUN, IMG, '--version']);
    assert.equal(r.status, 0, `--version exits 0:\n${r.out}`);
    assert.equal(r.out.trim(), require('../../package.json').version, 'the version of package.json');
  });

  it('carries the OCI labels', () => {
    const r = podman(['image', 'inspect', '--format', '{{json .Labels}}', IMG]);
    assert.equal(r.status, 0, r.out);
    const labels = JSON.parse(r.out) as Record<string, string>;
    for (const k of ['version', 'revision', 'source', 'title', 'description', 'licenses']) {
      assert.ok(labels[`org.opencontainers.image.${k}`], `label org.opencontainers.image.${k}`);
    }
    if (process.env.VERSION) assert.equal(labels['org.opencontainers.image.version'], process.env.VERSION);
  });

  describe('against the Kong-shaped gateway', () => {
    let upstream: Upstream;
    let gateway: Gateway;
    let agent: ChildProcess;
    const lines: Line[] = [];
    const other: string[] = [];
    const tail = () => [...lines.slice(-10).map((l) => JSON.stringify(l)), ...other.slice(-10)].join('\n');
    const requestLines = () => lines.filter((l) => l.msg === 'HTTP Request');

    before(async () => {
      upstream = await startUpstream({ port: UPSTREAM_PORT });
      gateway = await startGateway({
        proxyPort: PROXY_PORT,
        adminPort: ADMIN_PORT,
        upstreamPort: UPSTREAM_PORT,
        workers: 2,
      });
      const spec = sidecarSpec();
      const env = {
        ENABLE_JSON_LOG: 'true',
        KONG_PREFIX: gateway.prefix,
        HOST_PROC: spec.hostProc,
        HEALTH_PORT: String(HEALTH_PORT),
        HEALTH_ADDRESS: '127.0.0.1',
        STATS_INTERVAL: '1s',
      };
      agent = spawn(
        'podman',
        [
          ...PODMAN,
          ...RUN,
          '--name',
          NAME,
          '--cap-drop=all',
          `--cap-add=${spec.capabilities.join(',')}`,
          '--security-opt=no-new-privileges',
          ...(spec.seccomp ? [`--security-opt=seccomp=${spec.seccomp}`] : []),
          ...(spec.readOnlyRoot ? ['--read-only'] : []),
          ...spec.mounts.flatMap((m) => (m.startsWith('--') ? [m] : ['-v', m])),
          '--network',
          'host',
          '--pid',
          'host',
          ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
          IMG,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      readJsonLines<Line>(
        agent.stdout!,
        (line) => lines.push(line),
        (text) => other.push(text),
      );
      agent.stderr!.setEncoding('utf8').on('data', (chunk: string) => other.push(chunk));
    });

    after(async () => {
      podman(['rm', '-f', '-t', '5', NAME]);
      agent?.kill('SIGKILL');
      await gateway?.stop();
      await upstream?.stop();
    });

    it('becomes ready: BPF attached and Kong found', async () => {
      await waitUntil(
        `/readyz on :${HEALTH_PORT}`,
        60_000,
        async () => {
          if (agent.exitCode !== null) throw new Error(`the container exited with ${agent.exitCode}\n${tail()}`);
          const res = await fetch(`http://127.0.0.1:${HEALTH_PORT}/readyz`).catch(() => undefined);
          return res?.status === 200;
        },
        tail,
      );
      const live = await fetch(`http://127.0.0.1:${HEALTH_PORT}/healthz`);
      assert.equal(live.status, 200, '/healthz answers 200');
    });

    it('prints one request line per proxied request', async () => {
      for (let i = 0; i < REQUESTS; i++) {
        const res = await fetch(`http://127.0.0.1:${PROXY_PORT}/api/items/${i}?n=${i}`);
        await res.arrayBuffer();
        assert.equal(res.status, 200, `request ${i} through the gateway`);
      }
      const ours = () =>
        requestLines().filter((l) => l.direction === 'server' && /^\/api\/items\/\d+/.test(String(l.path)));
      await waitUntil(`${REQUESTS} request lines`, 30_000, () => ours().length >= REQUESTS, tail);
      const seen = ours();
      assert.equal(seen.length, REQUESTS, `exactly one line per request:\n${tail()}`);
      for (const l of seen) {
        assert.equal(l.method, 'GET', `method in ${JSON.stringify(l)}`);
        assert.equal(l.status_code, 200, `status in ${JSON.stringify(l)}`);
      }
      const paths = new Set(seen.map((l) => String(l.path).replace(/\?.*/, '')));
      assert.equal(paths.size, REQUESTS, 'every request path once');
    });

    it('answers `kong-watcher top --once` inside the container, as `kubectl exec` runs it', () => {
      const r = podman(['exec', NAME, 'kong-watcher', 'top', '--once']);
      assert.equal(r.status, 0, `top --once exits 0:\n${r.out}`);
      assert.match(r.out, /Requests/, `the totals are shown:\n${r.out}`);
      assert.match(r.out, /Total\s+[1-9]\d* requests/, `the requests sent are counted:\n${r.out}`);
    });

    it('stops cleanly on SIGTERM', async () => {
      const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
      podman(['kill', '--signal', 'TERM', NAME]);
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
      assert.equal(code, 0, `the agent exits 0 on SIGTERM\n${tail()}`);
    });
  });
});
