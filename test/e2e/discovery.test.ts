/** KongDiscovery against the real gateway fixture on this host's /proc. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KongDiscovery, type KongProcess } from '../../src/discovery';
import { NGINX_BIN, startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';

const UPSTREAM_PORT = 19020;
const PROXY_PORT = 19021;
const TRANSIENT_PORT = 19029;

const sorted = (pids: number[]): number[] => [...pids].sort((a, b) => a - b);

function expected(gw: Gateway): number[] {
  return sorted([gw.masterPid(), ...gw.workerPids()]);
}

async function until(what: string, timeoutMs: number, check: () => boolean): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - started;
}

describe('KongDiscovery on the real gateway', () => {
  let upstream: Upstream;
  let gw: Gateway;
  let discovery: KongDiscovery;
  const added: KongProcess[] = [];
  const removed: number[] = [];

  const known = (): number[] => sorted(discovery.processes().map((p) => p.pid));

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gw = await startGateway({ proxyPort: PROXY_PORT, upstreamPort: UPSTREAM_PORT, workers: 2 });
    // Other gateways may run on this host at the same time: follow only ours.
    discovery = new KongDiscovery({ prefix: gw.prefix, scope: 'netns' });
    discovery.on('add', (p) => added.push(p));
    discovery.on('remove', (pid) => removed.push(pid));
    discovery.start();
  });

  after(async () => {
    discovery?.stop();
    await gw?.stop();
    await upstream?.stop();
  });

  it('finds the master and its workers at start', () => {
    assert.deepEqual(known(), expected(gw), 'initial scan');
    const master = discovery.processes().find((p) => p.role === 'master');
    assert.equal(master?.pid, gw.masterPid(), 'master pid');
    assert.equal(master?.prefix, gw.prefix, 'prefix');
    assert.equal(master?.exePath, fs.realpathSync(NGINX_BIN), 'exe');
    assert.ok(master && fs.existsSync(master.binaryPath), `binary reachable at ${master?.binaryPath}`);
    for (const w of discovery.processes().filter((p) => p.role === 'worker')) {
      assert.equal(w.masterPid, gw.masterPid(), `worker ${w.pid} master`);
    }
  });

  it('is found by the default options too (prefix component "kong")', () => {
    const d = new KongDiscovery();
    d.scan();
    const pids = d.processes().map((p) => p.pid);
    for (const pid of expected(gw)) assert.ok(pids.includes(pid), `default discovery sees ${pid}`);
  });

  it('follows a reload within 1 s', async () => {
    const oldWorkers = gw.workerPids();
    await gw.reload();
    const took = await until('new workers known, old ones removed', 1000, () => known().join() === expected(gw).join());
    for (const pid of oldWorkers) assert.ok(removed.includes(pid), `old worker ${pid} removed`);
    for (const pid of gw.workerPids())
      assert.ok(
        added.some((p) => p.pid === pid),
        `new worker ${pid} added`,
      );
    assert.ok(took <= 1000, `followed in ${took} ms`);
  });

  it('follows a restart within 1 s', async () => {
    const oldMaster = gw.masterPid();
    await gw.restart();
    await until('new master and workers known', 1000, () => known().join() === expected(gw).join());
    assert.ok(removed.includes(oldMaster), 'old master removed');
    assert.equal(discovery.processes()[0].pid, gw.masterPid(), 'new master first');
  });

  it('ignores a transient single-process nginx of the same binary', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-gateway-transient-'));
    // A prefix with a "kong" component, to show the process title is what rules it out.
    const prefix = path.join(dir, 'kong') + '/';
    fs.mkdirSync(path.join(prefix, 'conf'), { recursive: true });
    fs.mkdirSync(path.join(prefix, 'logs'));
    fs.writeFileSync(
      path.join(prefix, 'conf', 'nginx.conf'),
      `master_process off; daemon off; pid logs/nginx.pid; error_log logs/error.log;
       events {} http { access_log off; server { listen 127.0.0.1:${TRANSIENT_PORT}; return 204; } }\n`,
    );
    const d = new KongDiscovery({ scope: 'host', intervalMs: 50 });
    const seen: number[] = [];
    d.on('add', (p) => seen.push(p.pid));
    d.start();
    const child = spawn(NGINX_BIN, ['-p', prefix, '-c', 'conf/nginx.conf'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(child.exitCode, null, 'transient nginx is running');
      assert.equal(seen.includes(child.pid ?? -1), false, 'transient nginx not picked up');
    } finally {
      d.stop();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
