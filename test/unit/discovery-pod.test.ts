import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostnameFromEnviron, parsePodCgroup, readPodMetadata } from '../../src/discovery/pod-metadata';
import { PodTable } from '../../src/enrich/pods';

const UID = '3f2b6c1e-8d4a-4c2b-9e1f-0a1b2c3d4e5f';
const CONTAINER = 'a'.repeat(64);

test('pod UID and container id from cgroup v2 paths, systemd and cgroupfs drivers', () => {
  const systemd = `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${CONTAINER}.scope\n`;
  assert.deepEqual(parsePodCgroup(systemd), { uid: UID, containerId: CONTAINER });
  const cgroupfs = `12:memory:/kubepods/besteffort/pod${UID}/${CONTAINER}\n`;
  assert.deepEqual(parsePodCgroup(cgroupfs), { uid: UID, containerId: CONTAINER });
  assert.equal(parsePodCgroup('0::/system.slice/nginx.service\n'), undefined, 'not in a pod');
  assert.equal(hostnameFromEnviron('PATH=/bin\0HOSTNAME=kong-7d9f-abcde\0KONG_PREFIX=/kong\0'), 'kong-7d9f-abcde');
  assert.equal(hostnameFromEnviron('PATH=/bin\0'), undefined);
});

test('readPodMetadata on a host-mounted procfs', () => {
  const proc = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-pod-'));
  try {
    const dir = path.join(proc, '42');
    fs.mkdirSync(path.join(dir, 'root/var/run/secrets/kubernetes.io/serviceaccount'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'cgroup'), `0::/kubepods/pod${UID}/${CONTAINER}\n`);
    fs.writeFileSync(path.join(dir, 'environ'), 'HOSTNAME=kong-0\0');
    fs.writeFileSync(path.join(dir, 'root/var/run/secrets/kubernetes.io/serviceaccount/namespace'), 'gateway\n');
    assert.deepEqual(readPodMetadata(proc, 42), {
      uid: UID,
      containerId: CONTAINER,
      name: 'kong-0',
      namespace: 'gateway',
    });
    assert.equal(readPodMetadata(proc, 43), undefined, 'no such process');
  } finally {
    fs.rmSync(proc, { recursive: true, force: true });
  }
});

test('the pod table: one entry per pid, a series index per namespace/name, kept a while after exit', () => {
  const pods = new PodTable();
  pods.set(100, { uid: UID, name: 'kong-a', namespace: 'gw' });
  pods.set(101, { uid: UID, name: 'kong-a', namespace: 'gw' });
  pods.set(200, { uid: 'other', name: 'kong-b', namespace: 'gw' });
  pods.set(300, undefined);
  const a = pods.get(100)!;
  assert.deepEqual({ ...a }, { index: 1, name: 'kong-a', namespace: 'gw', uid: UID }, 'labels and index');
  assert.equal(pods.get(101)!.index, 1, 'workers of one pod share its series');
  assert.equal(pods.get(200)!.index, 2, 'another pod, another index');
  assert.equal(pods.get(300), undefined, 'a process outside any pod');

  pods.release(100, 1000);
  assert.equal(pods.get(100), a, 'exchanges reported after the exit still get the pod');
  pods.expire(5000);
  assert.equal(pods.get(100), a, 'kept a few seconds');
  pods.expire(20_000);
  assert.equal(pods.get(100), undefined, 'then forgotten');
  assert.deepEqual(pods.get(101), a, 'the other worker is untouched');

  pods.release(200, 1000);
  pods.set(200, { uid: 'new', name: 'kong-b', namespace: 'gw' });
  pods.expire(20_000);
  assert.equal(pods.get(200)?.uid, 'new', 'a reused pid is not forgotten with the old process');
  assert.equal(pods.get(200)?.index, 2, 'same namespace/name: same series');
});
