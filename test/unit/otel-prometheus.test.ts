/**
 * OTEL_METRICS_EXPORTER=prometheus: /metrics from @opentelemetry/exporter-prometheus, with the
 * names and labels the collector's prometheus exporter would write (the end-to-end test scrapes
 * it with a real Prometheus; this checks the text itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { METRICS } from '../../src/otel/metric-names';
import { prometheusName } from '../../src/otel/prometheus-names';
import { createTelemetry } from '../../src/otel/telemetry';
import { clientSpec, serverSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** name{labels} value lines, labels parsed. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const keys: string[] = [];
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      keys.push(l[1]);
      labels[l[1]] = l[2];
    }
    assert.equal(new Set(keys).size, keys.length, `no label twice: ${line}`);
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

test('/metrics: the collector names, resource attributes as labels, the data point winning a clash', async () => {
  const port = await freePort();
  const telemetry = createTelemetry(
    {
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
      OTEL_SERVICE_NAME: 'edge',
      K8S_POD_NAME: 'kong-watcher-node-a',
      K8S_NAMESPACE_NAME: 'kong',
    },
    fakeClock,
    quiet,
  );
  try {
    // A node-wide agent labels each Kong's pod on its series: that label wins over the resource's.
    const pods = new Map([[100, { index: 1, name: 'kong-a', namespace: 'gw', uid: 'u' }]]);
    const server = serverSpec({ pid: 100, status: 503 });
    for (const e of enrich([server, clientSpec(server, { pid: 100, status: 503 })], { pods })) telemetry.exchange(e);
    let text = '';
    for (let i = 0; i < 50 && !text.includes('http_server'); i++) {
      text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      if (!text.includes('http_server')) await new Promise((r) => setTimeout(r, 50));
    }
    const all = samples(text);
    const names = new Set(all.map((s) => s.name));
    // Every metric that has data here: not in-flight requests (no capture to read them from).
    for (const m of METRICS.filter((x) => x.name !== 'http.server.active_requests')) {
      const name = prometheusName(m);
      const want = m.kind === 'histogram' ? `${name}_count` : name;
      assert.ok(names.has(want), `${m.name} served as ${want}`);
    }
    const count = all.find((s) => s.name === 'http_server_request_duration_seconds_count')!;
    assert.equal(count.value, 1);
    assert.equal(count.labels.http_response_status_code, '503');
    assert.equal(count.labels.service_name, 'edge', 'resource attributes are labels');
    assert.equal(count.labels.k8s_pod_name, 'kong-a', "the data point's own pod, not the agent's");
    assert.equal(count.labels.k8s_namespace_name, 'gw');
    assert.equal(count.labels.otel_scope_name, 'kong-watcher');
    const buckets = all.filter((s) => s.name === 'http_server_request_duration_seconds_bucket');
    assert.equal(buckets.at(-1)?.labels.le, '+Inf');
    const cpu = all.find((s) => s.name === 'process_cpu_time_seconds_total');
    assert.equal(cpu?.labels.k8s_pod_name, 'kong-watcher-node-a', "the agent's own figures carry its pod");
  } finally {
    await telemetry.shutdown(1000);
  }
});

test('a port already taken: said, and the agent runs on', async () => {
  const port = await freePort();
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', () => resolve()));
  const warnings: string[] = [];
  const telemetry = createTelemetry(
    {
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
    },
    fakeClock,
    { ...quiet, warn: (m: string) => void warnings.push(m) },
  );
  try {
    const deadline = Date.now() + 2000;
    while (warnings.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.match(warnings.join('\n'), /prometheus exporter could not start/);
    for (const e of enrich([serverSpec()])) telemetry.exchange(e);
    assert.equal(telemetry.totals().requests, 1, 'metrics still aggregate');
  } finally {
    await telemetry.shutdown(1000);
    blocker.close();
  }
});
