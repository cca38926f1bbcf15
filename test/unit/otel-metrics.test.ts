import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  type HistogramMetricData,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { HttpMetrics, MAX_SERIES } from '../../src/otel/http-metrics';
import { Metrics } from '../../src/otel/metrics';
import { METRICS, DURATION_BUCKETS_S } from '../../src/otel/metric-names';
import { clientExchange, serverExchange } from '../fixture/otel-exchanges';

const resource = resourceFromAttributes({ 'service.name': 'kong' });
const scope = { name: 'kong-watcher' };

async function collect(m: HttpMetrics): Promise<Map<string, MetricData>> {
  const r = await m.collect();
  return new Map(r.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((x) => [x.descriptor.name, x]));
}

function countBy(metric: MetricData, pick: (attrs: Record<string, unknown>) => unknown): Map<unknown, number> {
  const out = new Map<unknown, number>();
  for (const p of (metric as HistogramMetricData).dataPoints) {
    const k = pick(p.attributes);
    out.set(k, (out.get(k) ?? 0) + p.value.count);
  }
  return out;
}

test('request duration counts by status class, cumulative, with semconv buckets', async () => {
  const m = new HttpMetrics(resource, scope, () => ({ route: '/orders' }));
  const statuses = [200, 200, 201, 301, 404, 404, 429, 500, 502, 503];
  for (const s of statuses) {
    const ex = serverExchange({ statusCode: s, path: `/orders/${Math.random()}` });
    m.onRequestHead(ex);
    m.onExchange(ex);
  }
  const all = await collect(m);
  const d = all.get('http.server.request.duration')! as HistogramMetricData;
  assert.equal(d.aggregationTemporality, AggregationTemporality.CUMULATIVE);
  assert.equal(d.dataPointType, DataPointType.HISTOGRAM);
  assert.equal(d.descriptor.unit, 's');
  const byClass = countBy(d, (a) => Math.floor((a['http.response.status_code'] as number) / 100));
  assert.deepEqual(
    [...byClass.entries()].sort(),
    [
      [2, 3],
      [3, 1],
      [4, 3],
      [5, 3],
    ],
    'counts by status class',
  );
  assert.deepEqual(d.dataPoints[0].value.buckets.boundaries, DURATION_BUCKETS_S);
  for (const p of d.dataPoints) {
    assert.equal(p.attributes['url.path'], undefined, 'never the raw path');
    assert.equal(p.attributes['http.route'], '/orders', 'the route template');
    assert.equal(
      p.value.count,
      p.value.buckets.counts.reduce((a, b) => a + b, 0),
      'buckets add up',
    );
  }
  const e500 = d.dataPoints.find((p) => p.attributes['http.response.status_code'] === 500)!;
  assert.equal(e500.attributes['error.type'], '500');
  assert.equal(d.dataPoints.length, 8, 'one series per distinct attribute set, not per path');

  const t = m.totals();
  assert.equal(t.requests, 10);
  assert.equal(t.responses, 10);
  assert.equal(t.status4xx, 3);
  assert.equal(t.status5xx, 3);
  assert.equal(t.inFlight, 0);
  assert.ok(Math.abs(t.avgResponseMs - 4.5) < 1e-9, `avg response time from the exchanges, got ${t.avgResponseMs}`);
});

test('active requests: +1 at the head, -1 when finished; never negative without a head', async () => {
  const m = new HttpMetrics(resource, scope);
  const a = serverExchange();
  const b = serverExchange({ method: 'POST' });
  m.onRequestHead(a);
  m.onRequestHead(b);
  m.onRequestHead(a);
  let active = (await collect(m)).get('http.server.active_requests')!;
  assert.equal(active.dataPointType, DataPointType.SUM);
  assert.equal((active as { isMonotonic: boolean }).isMonotonic, false);
  assert.equal(
    active.dataPoints.reduce((s, p) => s + (p.value as number), 0),
    2,
    'two in flight (a counted once)',
  );
  m.onExchange(a);
  m.onExchange(serverExchange());
  active = (await collect(m)).get('http.server.active_requests')!;
  assert.equal(
    active.dataPoints.reduce((s, p) => s + (p.value as number), 0),
    1,
    'finished one; a headless exchange changes nothing',
  );
  assert.equal(m.totals().inFlight, 1);
  assert.equal(m.totals().requests, 3, 'the headless exchange still counts as a request');
});

test('client durations, body sizes and the Kong split histograms', async () => {
  const m = new HttpMetrics(resource, scope);
  const server = serverExchange({ requestBodySize: 300, responseBodySize: 5000 });
  const attempt = clientExchange(server, { statusCode: 503 });
  m.onExchange(attempt);
  m.onExchange(server);
  const kongOnly = serverExchange({ statusCode: 401, responseHeaders: { server: 'kong/3.4.2' } });
  m.onExchange(kongOnly);
  const all = await collect(m);
  const client = all.get('http.client.request.duration') as HistogramMetricData;
  assert.equal(client.dataPoints.length, 1);
  assert.equal(client.dataPoints[0].attributes['server.address'], 'upstream.internal');
  assert.equal(client.dataPoints[0].attributes['error.type'], '503');
  assert.ok(Math.abs(client.dataPoints[0].value.sum! - 0.003) < 1e-12, 'attempt duration in seconds');
  const reqBody = all.get('http.server.request.body.size') as HistogramMetricData;
  assert.equal(reqBody.descriptor.unit, 'By');
  assert.equal(
    reqBody.dataPoints.reduce((s, p) => s + p.value.sum!, 0),
    300,
  );
  const proxy = all.get('kong.latency.proxy') as HistogramMetricData;
  const upstream = all.get('kong.latency.upstream') as HistogramMetricData;
  assert.equal(proxy.dataPoints.length, 2, 'both exchanges have Kong time');
  assert.equal(upstream.dataPoints.length, 1, 'only the proxied one has upstream time');
  assert.ok(Math.abs(upstream.dataPoints[0].value.sum! - 0.003) < 1e-12);
  const sources = new Set(proxy.dataPoints.map((p) => p.attributes['kong.response.source']));
  assert.deepEqual([...sources].sort(), ['kong', 'upstream']);
});

test('attribute sets are bounded: beyond MAX_SERIES they fold into an overflow series', async () => {
  const m = new HttpMetrics(resource, scope);
  for (let i = 0; i < MAX_SERIES + 500; i++) m.onExchange(serverExchange({ host: `h${i}.example.com` }));
  const d = (await collect(m)).get('http.server.request.duration') as HistogramMetricData;
  assert.equal(d.dataPoints.length, MAX_SERIES + 1, 'bounded');
  const overflow = d.dataPoints.find((p) => p.attributes['otel.metric.overflow'] === true)!;
  assert.equal(overflow.value.count, 500, 'nothing lost: the rest is counted in overflow');
});

test('MeterProvider exports HTTP and self metrics with cumulative temporality', async () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const stats = {
    queued: 0,
    exported: 7,
    dropped: 3,
    droppedQueueFull: 2,
    droppedExportFailed: 1,
    exportFailures: 1,
    exportsInFlight: 0,
  };
  const m = new Metrics({
    resource,
    exporter,
    exportIntervalMs: 60_000,
    exportTimeoutMs: 1000,
    spanStats: () => stats,
  });
  m.http.onExchange(serverExchange());
  m.recordAgentStats({ eventsReceived: 1000, eventsLost: 5, ringbufFill: 0.25, processesMonitored: 3 });
  await m.flush();
  const got = new Map(
    exporter
      .getMetrics()
      .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
      .map((x) => [x.descriptor.name, x]),
  );
  for (const def of METRICS) {
    if (def.name === 'kong.latency.upstream' || def.name === 'http.client.request.duration') continue; // no attempt recorded
    if (def.name === 'http.server.active_requests') continue; // no head recorded
    assert.ok(got.has(def.name), `${def.name} exported`);
    assert.equal(got.get(def.name)!.descriptor.unit, def.unit, `${def.name} unit`);
  }
  const value = (name: string) => (got.get(name)!.dataPoints as { value: number }[]).reduce((s, p) => s + p.value, 0);
  assert.equal(value('kong_watcher.events.received'), 1000);
  assert.equal(value('kong_watcher.events.lost'), 5);
  assert.equal(value('kong_watcher.spans.exported'), 7);
  assert.equal(value('kong_watcher.spans.dropped'), 3);
  assert.equal(value('kong_watcher.export.failures'), 1);
  assert.equal(value('kong_watcher.ringbuf.fill'), 0.25);
  assert.equal(value('kong_watcher.processes.monitored'), 3);
  assert.ok(value('process.memory.usage') > 1e6, 'agent RSS');
  await m.shutdown();
});
