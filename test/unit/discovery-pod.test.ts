import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { hostnameFromEnviron, parsePodCgroup, readPodMetadata } from '../../src/discovery/pod-metadata';
import { HttpMetrics } from '../../src/otel/http-metrics';
import { createSampler } from '../../src/otel/sampler';
import { buildSpan } from '../../src/otel/spans';
import { clientExchange, fakeClock, serverExchange } from '../fixture/otel-exchanges';

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

test('a node-wide agent puts each Kong pod on its spans and metric series', async () => {
  const pods = new Map([
    [100, { name: 'kong-a', namespace: 'gw', uid: UID }],
    [200, { name: 'kong-b', namespace: 'gw' }],
  ]);
  const deps = {
    clock: fakeClock,
    sampler: createSampler('parentbased_always_on', 1),
    redactQuery: (q: string) => q,
    pods: (pid: number) => pods.get(pid),
  };
  const a = serverExchange({ pid: 100 });
  const span = buildSpan(a, deps)!;
  assert.equal(span.attributes['k8s.pod.name'], 'kong-a');
  assert.equal(span.attributes['k8s.namespace.name'], 'gw');
  assert.equal(span.attributes['k8s.pod.uid'], UID);
  assert.equal(buildSpan(clientExchange(a), deps)!.attributes['k8s.pod.name'], 'kong-a', 'CLIENT spans too');

  const m = new HttpMetrics(resourceFromAttributes({}), { name: 'kong-watcher' }, undefined, (pid) => pods.get(pid));
  for (const pid of [100, 100, 200]) m.onExchange(serverExchange({ pid }));
  const r = await m.collect();
  const duration = r.resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((x) => x.descriptor.name === 'http.server.request.duration') as HistogramMetricData;
  const byPod = Object.fromEntries(duration.dataPoints.map((p) => [p.attributes['k8s.pod.name'], p.value.count]));
  assert.deepEqual(byPod, { 'kong-a': 2, 'kong-b': 1 });
});
