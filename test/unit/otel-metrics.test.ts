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
import { ErrorCode, ExchangeFlag, Method } from '../../src/capture/exchange-layout';
import type { EnrichedExchange } from '../../src/enrich/enriched';
import type { RouteInfo } from '../../src/enrich/kong/route-table';
import { HttpMetrics, MAX_SERIES } from '../../src/otel/http-metrics';
import { DURATION_BUCKETS_S, METRICS, SIZE_BUCKETS_BYTES } from '../../src/otel/metric-names';
import { Metrics, NO_SELF_STATS } from '../../src/otel/metrics';
import { clientSpec, serverSpec } from './helpers/frames';
import { enrich } from './helpers/pipeline';

const resource = resourceFromAttributes({ 'service.name': 'kong' });
const scope = { name: 'kong-watcher' };
/** The bucket whose upper bound is 5 ms (finer ones below it resolve a gateway's sub-ms answers). */
const FIVE_MS = DURATION_BUCKETS_S.indexOf(0.005);
const ORDERS: RouteInfo = { index: 1, route: '/orders', routeName: 'orders', serviceName: 'shop', spanNames: [] };

async function collect(m: HttpMetrics): Promise<Map<string, MetricData>> {
  const r = await m.collect();
  return new Map(r.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((x) => [x.descriptor.name, x]));
}

function record(m: HttpMetrics, exchanges: EnrichedExchange[]): void {
  for (const e of exchanges) m.record(e);
}

function countBy(metric: MetricData, pick: (attrs: Record<string, unknown>) => unknown): Map<unknown, number> {
  const out = new Map<unknown, number>();
  for (const p of (metric as HistogramMetricData).dataPoints) {
    const k = pick(p.attributes);
    out.set(k, (out.get(k) ?? 0) + p.value.count);
  }
  return out;
}

test('request duration by status class, cumulative, semconv buckets, the route and its names', async () => {
  const m = new HttpMetrics(resource, scope);
  const statuses = [200, 200, 201, 301, 404, 404, 429, 500, 502, 503];
  const frames = statuses.map((status) =>
    serverSpec({ status, path: `/orders/${Math.random()}`, host: `h${Math.random()}.example.com` }),
  );
  record(m, enrich(frames, { routes: { resolve: () => ORDERS } }));
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
    assert.equal(p.attributes['server.address'], undefined, 'never the Host a client chose');
    assert.equal(p.attributes['server.port'], undefined);
    assert.equal(p.attributes['http.route'], '/orders', 'the route template');
    assert.equal(p.attributes['kong.route.name'], 'orders', 'the route name');
    assert.equal(p.attributes['kong.service.name'], 'shop', 'the service name');
    assert.equal(p.attributes['url.scheme'], 'http');
    assert.equal(p.attributes['kong.response.source'], 'upstream');
    assert.equal(
      p.value.count,
      p.value.buckets.counts.reduce((a, b) => a + b, 0),
      'buckets add up',
    );
    assert.ok(Math.abs(p.value.sum! - p.value.count * 0.0045) < 1e-12, 'sum in seconds');
    assert.equal(p.value.buckets.counts[FIVE_MS], p.value.count, '4.5 ms falls in the (2.5, 5] ms bucket');
  }
  const e500 = d.dataPoints.find((p) => p.attributes['http.response.status_code'] === 500)!;
  assert.equal(e500.attributes['error.type'], '500');
  assert.equal(d.dataPoints.length, 8, 'one series per distinct attribute set, not per path or Host');

  const t = m.totals();
  assert.equal(t.requests, 10);
  assert.equal(t.responses, 10);
  assert.equal(t.status2xx, 3);
  assert.equal(t.status4xx, 3);
  assert.equal(t.status5xx, 3);
  assert.ok(Math.abs(t.avgResponseMs - 4.5) < 1e-9, `avg response time from the exchanges, got ${t.avgResponseMs}`);
});

test('a bucket boundary belongs to the bucket below it; sizes in bytes', async () => {
  const m = new HttpMetrics(resource, scope);
  record(
    m,
    enrich([
      serverSpec({ startNs: 1_000_000, endNs: 6_000_000, requestBodySize: 64, responseBodySize: 65, attempts: 0 }),
      serverSpec({ startNs: 1_000_000, endNs: 6_000_001, requestBodySize: 64, responseBodySize: 65, attempts: 0 }),
    ]),
  );
  const all = await collect(m);
  const d = all.get('http.server.request.duration') as HistogramMetricData;
  assert.deepEqual(
    d.dataPoints[0].value.buckets.counts.slice(FIVE_MS, FIVE_MS + 2),
    [1, 1],
    'exactly 5 ms: the 5 ms bucket; 1 ns more: the next',
  );
  const req = all.get('http.server.request.body.size') as HistogramMetricData;
  assert.deepEqual(req.dataPoints[0].value.buckets.boundaries, SIZE_BUCKETS_BYTES);
  assert.equal(req.dataPoints[0].value.buckets.counts[0], 2, '64 B: first bucket');
  const resp = all.get('http.server.response.body.size') as HistogramMetricData;
  assert.equal(resp.dataPoints[0].value.buckets.counts[1], 2, '65 B: second bucket');
  assert.equal(resp.dataPoints[0].value.min, 65);
  assert.equal(resp.dataPoints[0].value.max, 65);
});

test('active requests come from the assembler at collection time', async () => {
  let counts: number[] = new Array(Method.Max * 2).fill(0);
  const m = new HttpMetrics(resource, scope, () => counts);
  assert.equal((await collect(m)).get('http.server.active_requests'), undefined, 'nothing in flight yet: no series');
  counts[Method.Get * 2] = 3;
  counts[Method.Post * 2 + 1] = 1;
  let active = (await collect(m)).get('http.server.active_requests')!;
  assert.equal(active.dataPointType, DataPointType.SUM);
  assert.equal((active as { isMonotonic: boolean }).isMonotonic, false);
  const byAttrs = (metric: MetricData) =>
    Object.fromEntries(
      metric.dataPoints.map((p) => [`${p.attributes['http.request.method']} ${p.attributes['url.scheme']}`, p.value]),
    );
  assert.deepEqual(byAttrs(active), { 'GET http': 3, 'POST https': 1 }, 'by method and scheme');
  counts = new Array(Method.Max * 2).fill(0);
  active = (await collect(m)).get('http.server.active_requests')!;
  assert.deepEqual(byAttrs(active), { 'GET http': 0, 'POST https': 0 }, 'series stay, at 0, once seen');
});

test('client durations, body sizes and the Kong split histograms', async () => {
  const m = new HttpMetrics(resource, scope);
  const server = serverSpec({ requestBodySize: 300, responseBodySize: 5000 });
  const kongOnly = serverSpec({
    status: 401,
    flags: ExchangeFlag.Response | ExchangeFlag.ServerKong | ExchangeFlag.Sampled,
    attempts: 0,
    upstreamStartNs: 0,
    upstreamEndNs: 0,
    kongUpstreamLatencyMs: -1,
  });
  record(m, enrich([server, clientSpec(server, { status: 503 }), kongOnly]));
  const all = await collect(m);
  const client = all.get('http.client.request.duration') as HistogramMetricData;
  assert.equal(client.dataPoints.length, 1);
  assert.equal(client.dataPoints[0].attributes['server.address'], 'upstream.internal', 'upstream from Host');
  assert.equal(client.dataPoints[0].attributes['server.port'], 9000);
  assert.equal(client.dataPoints[0].attributes['error.type'], '503', 'a CLIENT >= 400 is an error');
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
  assert.ok(Math.abs(upstream.dataPoints[0].value.sum! - 0.003) < 1e-12, 'upstream part');
  const proxied = proxy.dataPoints.find((p) => p.attributes['kong.response.source'] === 'upstream')!;
  assert.ok(Math.abs(proxied.value.sum! - 0.001) < 1e-12, 'before the first upstream byte');
  const alone = proxy.dataPoints.find((p) => p.attributes['kong.response.source'] === 'kong')!;
  assert.ok(Math.abs(alone.value.sum! - 0.0045) < 1e-12, 'Kong answered alone: the whole request');
  assert.equal(m.totals().upstreamAttempts, 1);
});

test('failed gRPC calls: one series per grpc-status, named by error.type', async () => {
  const m = new HttpMetrics(resource, scope);
  const specs = [14, 14, 4, 0].map((grpcStatus) => serverSpec({ status: 200, grpcStatus, attempts: 0 }));
  record(m, enrich(specs));
  const duration = (await collect(m)).get('http.server.request.duration')!;
  const byType = countBy(duration, (a) => a['error.type']);
  assert.deepEqual(
    [...byType].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    [
      ['DEADLINE_EXCEEDED', 1],
      ['UNAVAILABLE', 2],
      [undefined, 1],
    ],
  );
});

test('errors, responses and requests without an answer in the totals', () => {
  const m = new HttpMetrics(resource, scope);
  record(
    m,
    enrich([
      serverSpec({ status: 0, error: ErrorCode.ClientClosed, attempts: 0 }),
      serverSpec({ status: 200, error: ErrorCode.AgentStopped, attempts: 0 }),
      serverSpec({ status: 204, attempts: 0 }),
    ]),
  );
  const t = m.totals();
  assert.equal(t.requests, 3);
  assert.equal(t.responses, 2);
  assert.equal(t.noResponse, 1);
  assert.equal(t.errors, 2, 'error codes');
});

test('attribute sets are bounded: beyond MAX_SERIES they fold into an overflow series', async () => {
  const m = new HttpMetrics(resource, scope);
  let i = 0;
  const routes = {
    resolve: (): RouteInfo => ({ index: ++i, route: `/r${i}`, routeName: `r${i}`, spanNames: [] }),
  };
  const frames = [];
  for (let n = 0; n < MAX_SERIES + 500; n++) frames.push(serverSpec({ attempts: 0 }));
  record(m, enrich(frames, { routes }));
  record(m, enrich([serverSpec()], { routes: { resolve: () => ({ ...ORDERS, index: -1 }) } }));
  const d = (await collect(m)).get('http.server.request.duration') as HistogramMetricData;
  assert.equal(d.dataPoints.length, MAX_SERIES + 1, 'bounded');
  const overflow = d.dataPoints.find((p) => p.attributes['otel.metric.overflow'] === true)!;
  assert.equal(overflow.value.count, 501, 'nothing lost: the rest, and an overflowing route index, counted there');
  assert.equal(m.totals().requests, MAX_SERIES + 501, 'totals count everything');
});

test('a node-wide agent puts each Kong pod on its metric series', async () => {
  const pods = new Map([
    [100, { index: 1, name: 'kong-a', namespace: 'gw', uid: 'u-a' }],
    [200, { index: 2, name: 'kong-b', namespace: 'gw' }],
  ]);
  const m = new HttpMetrics(resource, scope);
  const a = serverSpec({ pid: 100 });
  record(m, enrich([a, clientSpec(a), serverSpec({ pid: 100 }), serverSpec({ pid: 200 })], { pods }));
  const all = await collect(m);
  const duration = all.get('http.server.request.duration') as HistogramMetricData;
  const byPod = Object.fromEntries(duration.dataPoints.map((p) => [p.attributes['k8s.pod.name'], p.value.count]));
  assert.deepEqual(byPod, { 'kong-a': 2, 'kong-b': 1 });
  assert.equal(duration.dataPoints[0].attributes['k8s.namespace.name'], 'gw');
  assert.equal(duration.dataPoints[0].attributes['k8s.pod.uid'], undefined, 'the uid would only split series');
  const client = all.get('http.client.request.duration') as HistogramMetricData;
  assert.equal(client.dataPoints[0].attributes['k8s.pod.name'], 'kong-a', 'CLIENT series too');
});

test('MeterProvider exports HTTP and self metrics with cumulative temporality', async () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const stats = {
    queued: 0,
    exported: 7,
    dropped: 3,
    droppedQueueFull: 2,
    droppedExportFailed: 1,
    droppedShutdown: 0,
    exportFailures: 1,
    exportsInFlight: 0,
  };
  const active = new Array(Method.Max * 2).fill(0);
  active[Method.Get * 2] = 2;
  const m = new Metrics({
    resource,
    exporters: [exporter],
    exportIntervalMs: 60_000,
    exportTimeoutMs: 1000,
    spanStats: () => stats,
    activeRequests: () => active,
    selfStats: () => ({
      ...NO_SELF_STATS,
      eventsReceived: 1000,
      eventsLost: 5,
      ringbufFill: 0.25,
      processesMonitored: 3,
      decodeErrors: 4,
      connections: 12,
      evictedConnections: 6,
      protocolErrors: 8,
      droppedRequests: 9,
      unmatchedAttempts: 11,
    }),
  });
  const server = serverSpec();
  for (const e of enrich([server, clientSpec(server)])) m.http.record(e);
  await m.flush();
  const got = new Map(
    exporter
      .getMetrics()
      .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
      .map((x) => [x.descriptor.name, x]),
  );
  for (const def of METRICS) {
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
  assert.equal(value('kong_watcher.decode.errors'), 4);
  assert.equal(value('kong_watcher.connections'), 12);
  assert.equal(value('kong_watcher.connections.evicted'), 6);
  assert.equal(value('kong_watcher.http.protocol_errors'), 8);
  assert.equal(value('kong_watcher.requests.dropped'), 9);
  assert.equal(value('kong_watcher.upstream.unmatched'), 11);
  assert.equal(value('http.server.active_requests'), 2);
  assert.ok(value('process.memory.usage') > 1e6, 'agent RSS');
  await m.shutdown();
});
