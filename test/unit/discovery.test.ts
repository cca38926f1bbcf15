/** KongDiscovery on a fake procfs tree: the shapes Kong really has, and the traps around it. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { KongDiscovery } from '../../src/discovery';
import type { KongDiscoveryOptions, KongProcess } from '../../src/discovery';

const OWN_NETNS = 4026531840;
const OTHER_NETNS = 4026532999;
const KONG_BIN = '/usr/local/openresty/nginx/sbin/nginx';
const KONG_MASTER = `nginx: master process ${KONG_BIN} -p /usr/local/kong -c nginx.conf`;

interface FakeProc {
  comm: string;
  ppid: number;
  start?: number;
  /** argv entries (NUL-separated on disk) or one title string */
  cmdline: string | string[];
  exe?: string;
  netns?: number;
}

class FakeProcfs {
  readonly root: string;
  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-gateway-procfs-'));
    fs.mkdirSync(path.join(this.root, 'self-ns'));
    fs.symlinkSync(`net:[${OWN_NETNS}]`, path.join(this.root, 'self-ns', 'net'));
  }

  add(pid: number, p: FakeProc): void {
    const dir = path.join(this.root, String(pid));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, 'ns'), { recursive: true });
    const fields = ['S', String(p.ppid), ...Array(17).fill('0'), String(p.start ?? pid * 10), '0', '0'];
    fs.writeFileSync(path.join(dir, 'stat'), `${pid} (${p.comm}) ${fields.join(' ')}\n`);
    fs.writeFileSync(path.join(dir, 'comm'), `${p.comm}\n`);
    const argv = Array.isArray(p.cmdline) ? p.cmdline.join('\0') + '\0' : p.cmdline + '\0\0\0';
    fs.writeFileSync(path.join(dir, 'cmdline'), argv);
    fs.symlinkSync(p.exe ?? KONG_BIN, path.join(dir, 'exe'));
    fs.symlinkSync(`net:[${p.netns ?? OWN_NETNS}]`, path.join(dir, 'ns', 'net'));
  }

  remove(pid: number): void {
    fs.rmSync(path.join(this.root, String(pid)), { recursive: true, force: true });
  }

  setTitle(pid: number, title: string): void {
    fs.writeFileSync(path.join(this.root, String(pid), 'cmdline'), title + '\0');
  }

  options(extra: Partial<KongDiscoveryOptions> = {}): Partial<KongDiscoveryOptions> {
    return { hostProc: this.root, selfNetnsPath: path.join(this.root, 'self-ns', 'net'), ...extra };
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

function kongTree(fake: FakeProcfs): void {
  fake.add(1, { comm: 'tini', ppid: 0, cmdline: ['/sbin/tini', '--'], exe: '/sbin/tini' });
  fake.add(100, { comm: 'nginx', ppid: 1, cmdline: KONG_MASTER });
  fake.add(101, { comm: 'nginx', ppid: 100, cmdline: 'nginx: worker process' });
  fake.add(102, { comm: 'nginx', ppid: 100, cmdline: 'nginx: worker process' });
  // kong health: same binary, temporary prefix, raw argv
  fake.add(200, { comm: 'nginx', ppid: 1, cmdline: [KONG_BIN, '-p', '/tmp/resty_abc/', '-c', 'conf/nginx.conf'] });
  // an unrelated nginx on the same node
  fake.add(300, {
    comm: 'nginx',
    ppid: 1,
    cmdline: 'nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf',
    exe: '/usr/sbin/nginx',
  });
  fake.add(301, { comm: 'nginx', ppid: 300, cmdline: 'nginx: worker process', exe: '/usr/sbin/nginx' });
  fake.add(400, { comm: 'bash', ppid: 1, cmdline: ['bash'], exe: '/usr/bin/bash' });
  // another pod's Kong, in another network namespace
  fake.add(500, { comm: 'nginx', ppid: 1, cmdline: KONG_MASTER, netns: OTHER_NETNS });
  fake.add(501, { comm: 'nginx', ppid: 500, cmdline: 'nginx: worker process', netns: OTHER_NETNS });
}

function record(d: KongDiscovery): { added: KongProcess[]; removed: number[] } {
  const log = { added: [] as KongProcess[], removed: [] as number[] };
  d.on('add', (p) => log.added.push(p));
  d.on('remove', (pid) => log.removed.push(pid));
  return log;
}

const pids = (ps: KongProcess[]): number[] => ps.map((p) => p.pid).sort((a, b) => a - b);

describe('KongDiscovery on a fake procfs', () => {
  let fake: FakeProcfs;
  beforeEach(() => {
    fake = new FakeProcfs();
    kongTree(fake);
  });
  afterEach(() => fake.cleanup());

  it('finds the Kong master and workers in its own netns only', () => {
    const d = new KongDiscovery(fake.options({ scope: 'netns' }));
    const log = record(d);
    d.scan(1000);
    assert.deepEqual(pids(log.added), [100, 101, 102], 'master and workers, no health check, no other nginx');
    assert.equal(log.added[0].role, 'master', 'master reported first');
    const master = log.added[0];
    assert.equal(master.masterPid, 100, 'master is its own master');
    assert.equal(master.prefix, '/usr/local/kong', 'prefix');
    assert.equal(master.exePath, KONG_BIN, 'exe resolved');
    assert.equal(master.binaryPath, `${fake.root}/100/root${KONG_BIN}`, 'binary path through the root link');
    assert.equal(master.netnsInode, OWN_NETNS, 'netns inode');
    assert.equal(master.startTime, 1000, 'start time from stat');
    const worker = log.added.find((p) => p.pid === 101);
    assert.equal(worker?.role, 'worker', 'worker role');
    assert.equal(worker?.masterPid, 100, 'worker master');
    assert.equal(worker?.prefix, '/usr/local/kong', 'worker carries the prefix');
  });

  it('finds every Kong on the node with scope host', () => {
    const d = new KongDiscovery(fake.options({ scope: 'host' }));
    const log = record(d);
    d.scan(1000);
    assert.deepEqual(pids(log.added), [100, 101, 102, 500, 501], 'both Kongs');
  });

  it('limits to one master with an explicit prefix', () => {
    fake.add(600, { comm: 'nginx', ppid: 1, cmdline: `nginx: master process ${KONG_BIN} -p /srv/kong -c nginx.conf` });
    const d = new KongDiscovery(fake.options({ scope: 'host', prefix: '/srv/kong/' }));
    const log = record(d);
    d.scan(1000);
    assert.deepEqual(pids(log.added), [600], 'only the configured prefix');
  });

  it('follows a reload: old workers removed, new ones added, draining ones kept', () => {
    const d = new KongDiscovery(fake.options());
    const log = record(d);
    d.scan(1000);
    fake.setTitle(101, 'nginx: worker process is shutting down');
    fake.remove(102);
    fake.add(103, { comm: 'nginx', ppid: 100, cmdline: 'nginx: worker process' });
    fake.add(104, { comm: 'nginx', ppid: 100, cmdline: 'nginx: worker process' });
    d.scan(1250);
    assert.deepEqual(log.removed, [102], 'exited worker removed');
    assert.deepEqual(pids(log.added), [100, 101, 102, 103, 104], 'new workers added once');
    assert.deepEqual(pids(d.processes()), [100, 101, 103, 104], 'draining worker still known');
  });

  it('follows a restart: new master and workers, old ones removed', () => {
    const d = new KongDiscovery(fake.options());
    const log = record(d);
    d.scan(1000);
    for (const pid of [100, 101, 102]) fake.remove(pid);
    fake.add(700, { comm: 'nginx', ppid: 1, cmdline: KONG_MASTER });
    fake.add(701, { comm: 'nginx', ppid: 700, cmdline: 'nginx: worker process' });
    d.scan(1250);
    assert.deepEqual(log.removed.sort(), [100, 101, 102], 'old processes removed');
    assert.deepEqual(pids(d.processes()), [700, 701], 'new master and worker');
  });

  it('does not mistake a reused pid for the old process', () => {
    const d = new KongDiscovery(fake.options());
    const log = record(d);
    d.scan(1000);
    fake.add(102, { comm: 'sleep', ppid: 400, start: 99999, cmdline: ['sleep', '1'], exe: '/usr/bin/sleep' });
    d.scan(1250);
    assert.deepEqual(log.removed, [102], 'old worker removed');
    assert.deepEqual(pids(d.processes()), [100, 101], 'new process with the same pid is not Kong');
    fake.add(102, { comm: 'nginx', ppid: 100, start: 100000, cmdline: 'nginx: worker process' });
    d.scan(1500);
    assert.deepEqual(pids(d.processes()), [100, 101, 102], 'a new worker on the reused pid is added');
    assert.equal(d.processes().find((p) => p.pid === 102)?.startTime, 100000, 'with its own start time');
  });

  it('waits for a freshly forked worker to take its title', () => {
    const d = new KongDiscovery(fake.options());
    d.scan(1000);
    fake.add(105, { comm: 'nginx', ppid: 100, cmdline: KONG_MASTER });
    d.scan(1250);
    assert.equal(pids(d.processes()).includes(105), false, 'a child with the master title is not a new master');
    fake.setTitle(105, 'nginx: worker process');
    d.scan(1500);
    assert.equal(d.processes().find((p) => p.pid === 105)?.role, 'worker', 'seen as a worker once renamed');
  });

  it('notices a process that execs into the Kong master', () => {
    fake.add(800, { comm: 'docker-entrypoi', ppid: 1, cmdline: ['/bin/sh', '/docker-entrypoint.sh'] });
    const d = new KongDiscovery(fake.options({ sweepMs: 5000 }));
    d.scan(1000);
    fake.add(800, { comm: 'nginx', ppid: 1, start: 8000, cmdline: KONG_MASTER });
    d.scan(1250);
    assert.equal(pids(d.processes()).includes(800), false, 'old processes are not re-read every scan');
    d.scan(1000 + 7600);
    assert.ok(pids(d.processes()).includes(800), 'found by the sweep');
    fake.add(900, { comm: 'sh', ppid: 1, cmdline: ['/bin/sh', '-c', 'kong start'] });
    d.scan(9000);
    fake.add(900, {
      comm: 'nginx',
      ppid: 1,
      start: 9000,
      cmdline: KONG_MASTER.replace('/usr/local/kong', '/kong2/kong'),
    });
    d.scan(9250);
    assert.ok(pids(d.processes()).includes(900), 'young processes are re-read every scan');
  });

  it('checks a pid the kernel reported at once, and forgets an exited one at once', () => {
    fake.add(800, { comm: 'docker-entrypoi', ppid: 1, cmdline: ['/bin/sh', '/docker-entrypoint.sh'] });
    const d = new KongDiscovery(fake.options({ sweepMs: 60_000 }));
    const log = record(d);
    d.scan(1000);
    fake.add(800, { comm: 'nginx', ppid: 1, start: 8000, cmdline: KONG_MASTER.replace('/usr/local/kong', '/k2/kong') });
    fake.add(801, { comm: 'nginx', ppid: 800, cmdline: KONG_MASTER.replace('/usr/local/kong', '/k2/kong') });
    d.check(800, 1100);
    assert.ok(pids(d.processes()).includes(800), 'an exec is looked at now, not at the next sweep');
    d.check(801, 1100);
    assert.equal(pids(d.processes()).includes(801), false, 'a fresh fork with its master title is not a master');
    fake.setTitle(801, 'nginx: worker process');
    d.scan(1250);
    assert.ok(pids(d.processes()).includes(801), 'the forked worker is looked at again by the next scan');
    assert.equal(d.processes().find((p) => p.pid === 801)?.role, 'worker');

    d.exited(101);
    assert.deepEqual(log.removed, [101], 'removed at once');
    d.exited(101);
    d.exited(4000);
    assert.deepEqual(log.removed, [101], 'once, and unknown pids are ignored');
    d.check(99999, 1300);
    assert.doesNotThrow(() => d.check(Number.NaN, 1300), 'a pid that does not exist');
  });

  it('never throws on vanished pids, half-written entries or a missing procfs', () => {
    fs.mkdirSync(path.join(fake.root, '999'));
    fs.writeFileSync(path.join(fake.root, '998'), 'not a dir');
    fs.mkdirSync(path.join(fake.root, '997'));
    fs.writeFileSync(path.join(fake.root, '997', 'stat'), '997 (nginx) S');
    const d = new KongDiscovery(fake.options());
    assert.doesNotThrow(() => d.scan(1000), 'odd entries');
    assert.deepEqual(pids(d.processes()), [100, 101, 102], 'real ones still found');
    const missing = new KongDiscovery({ hostProc: path.join(fake.root, 'nope'), selfNetnsPath: '/nonexistent' });
    const log = record(missing);
    assert.doesNotThrow(() => missing.scan(1000), 'missing procfs');
    assert.deepEqual(log.added, [], 'nothing found');
    fs.rmSync(path.join(fake.root, '100', 'cmdline'));
    const d2 = new KongDiscovery(fake.options());
    assert.doesNotThrow(() => d2.scan(1000), 'unreadable cmdline');
    assert.deepEqual(pids(d2.processes()), [], 'workers need their master');
  });
});
