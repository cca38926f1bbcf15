/**
 * The agent's side of the live view: the window over the HTTP metrics' own series (rates,
 * errors, percentiles, per-row counts equal to what collect() exports), the recent slow and
 * failing requests, retries, pods, and the agent's health in the snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { ErrorCode } from '../../src/capture/exchange-layout';
import type { EnricherOptions } from '../../src/enrich/enricher';
import type { RouteInfo } from '../../src/enrich/kong/route-table';
import type { PodInfo } from '../../src/enrich/pods';
import { HttpMetrics, MAX_SERIES } from '../../src/otel/http-metrics';
import { DURATION_BUCKETS_S } from '../../src/otel/metric-names';
import { LiveOutput } from '../../src/output/live';
import { histogramQuantile } from '../../src/output/live/quantile';
import { FAILING_KEPT, SLOWEST_KEPT } from '../../src/output/live/recent';
import type { AgentNow } from '../../src/output/live/snapshot';
import { HISTORY_S, WINDOW_S, type AgentCounters } from '../../src/output/live/window';
import { serverSpec, type ExchangeFrameSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

const route = (index: number, path: string, name: string, service = 'shop'): RouteInfo => ({
  index,
  route: path,
  routeName: name,
  serviceName: service,
  spanNames: [],
});
const ORDERS = route(1, '/orders', 'orders');
const USERS = route(2, '/users', 'users', 'accounts');
const byPath: EnricherOptions['routes'] = {
  resolve: (ex) => (ex.path?.startsWith('/orders') ? ORDERS : ex.path?.startsWith('/users') ? USERS : undefined),
};

/** A LiveOutput over a real HttpMetrics, with every clock in the test's hands. */
function harness(agentNow: Partial<AgentNow> = {}) {
  const metrics = new HttpMetrics(resourceFromAttributes({}), { name: 'test' });
  const t = { ms: 0, relNs: 10e9, toHrTimeCalls: 0 };
  const counters: AgentCounters = {
    eventsReceived: 0,
    eventsLost: 0,
    spansDropped: 0,
    exportFailures: 0,
    cpuMicros: 0,
  };
  const live = new LiveOutput({
    series: metrics,
    clock: {
      nowRelNs: () => t.relNs,
      toHrTime: (relNs) => {
        t.toHrTimeCalls++;
        return fakeClock.toHrTime(relNs);
      },
    },
    counters: () => ({ ...counters }),
    now: () => ({
      scope: 'netns',
      kongProcesses: 3,
      inFlight: 2,
      ringFill: 0.25,
      rssBytes: 100 * 1048576,
      tracesExporter: 'none',
      metricsExporter: 'none',
      ...agentNow,
    }),
    nowMs: () => t.ms,
    wallMs: () => 1_700_000_000_000 + t.ms,
  });
  const feed = (frames: ExchangeFrameSpec[], options: Partial<EnricherOptions> = {}) => {
    for (const e of enrich(frames, { routes: byPath, ...options })) {
      metrics.record(e);
      live.recent.exchange(e);
    }
  };
  /** a second passes: the agent's timer ticks */
  const second = () => {
    t.ms += 1000;
    t.relNs += 1e9;
    live.tick();
  };
  return { metrics, live, t, counters, feed, second };
}

/** A SERVER exchange of `ms` milliseconds, 1 ms of it before the upstream when proxied. */
function req(path: string, status: number, ms: number, over: ExchangeFrameSpec = {}): ExchangeFrameSpec {
  const start = 1_000_000;
  const end = start + Math.round(ms * 1e6);
  return serverSpec({
    path,
    query: undefined,
    status,
    startNs: start,
    endNs: end,
    upstreamStartNs: start + 1e6,
    upstreamEndNs: end,
    responseStartNs: end,
    ...over,
  });
}

test('rates, errors and percentiles over the window, from the series the metrics export', async () => {
  const h = harness();
  h.feed([
    ...Array.from({ length: 10 }, (_, i) => req(`/orders/${i}`, 200, 1 + i / 10)),
    ...Array.from({ length: 5 }, () => req('/users/x', 500, 3)),
    ...Array.from({ length: 2 }, () =>
      req('/users/y', 404, 0.2, { attempts: 0, upstreamStartNs: 0, upstreamEndNs: 0 }),
    ),
    req('/users/z', 0, 5, { error: ErrorCode.ClientClosed }),
    req('/nowhere', 404, 0.1, { attempts: 0, upstreamStartNs: 0, upstreamEndNs: 0 }),
  ]);
  h.second();
  h.feed(Array.from({ length: 10 }, () => req('/orders/more', 200, 2)));
  h.t.ms += 1000;
  const s = h.live.snapshot();

  assert.equal(s.windowSeconds, 2, 'the window spans what the agent has run');
  assert.equal(s.total.requests, 29, 'every SERVER exchange');
  assert.deepEqual(
    [s.total.errors, s.total.status4xx, s.total.status5xx, s.total.noResponse],
    [9, 3, 5, 1],
    'errors: 4xx, 5xx, and no response',
  );
  assert.equal(s.totals.rate, 29 / 2, 'requests per second over the window');
  assert.equal(s.totals.errorRate, 9 / 2);
  assert.equal(s.totals.inFlight, 2, 'in flight, from the assembler');

  const rows = new Map(s.routes.map((r) => [r.route ?? '(none)', r]));
  assert.deepEqual(
    [...rows.entries()].map(([k, r]) => [k, r.total.requests, r.total.errors]).sort(),
    [
      ['(none)', 1, 1],
      ['/orders', 20, 0],
      ['/users', 8, 8],
    ],
    'one row per route, with its counts',
  );
  assert.equal(rows.get('/users')!.routeName, 'users');
  assert.equal(rows.get('/users')!.service, 'accounts');

  // The same buckets Grafana reads: summed over the exported points, then histogram_quantile.
  const collected = await h.metrics.collect();
  const metric = collected.resourceMetrics.scopeMetrics[0].metrics.find(
    (m) => m.descriptor.name === 'http.server.request.duration',
  ) as HistogramMetricData;
  const summed = new Array(DURATION_BUCKETS_S.length + 1).fill(0);
  const perRoute = new Map<string, number>();
  for (const p of metric.dataPoints) {
    p.value.buckets.counts.forEach((c, i) => (summed[i] += c));
    const k = String(p.attributes['http.route'] ?? '(none)');
    perRoute.set(k, (perRoute.get(k) ?? 0) + p.value.count);
  }
  for (const [k, n] of perRoute) assert.equal(rows.get(k)!.total.requests, n, `${k}: the exported count`);
  for (const q of [0.5, 0.95, 0.99] as const) {
    const key = q === 0.5 ? 'p50' : q === 0.95 ? 'p95' : 'p99';
    assert.equal(
      s.totals.duration[key],
      histogramQuantile(q, DURATION_BUCKETS_S, summed),
      `${key} as Grafana computes it`,
    );
  }
  assert.ok(s.totals.duration.p50! > 0.001 && s.totals.duration.p50! < 0.0025, 'sub-5 ms resolution');
  assert.ok(s.totals.kong.p50! > 0 && s.totals.kong.p50! <= 0.001, "Kong's own time: 1 ms before the upstream");
  assert.ok(s.totals.upstream.mean! > 0, 'upstream time');
  assert.ok(s.totals.kongShare! > 0 && s.totals.kongShare! < 1, 'share of the time in Kong');
  assert.equal(rows.get('/users')!.window.upstream.p50 !== null, true, 'proxied /users has upstream time');

  assert.deepEqual(s.history.rate, [19], 'one whole second so far: 19 requests in it');
  assert.deepEqual(s.history.errorRate, [9]);
  assert.equal(s.history.p99.length, 1);
});

test('the window slides: old requests leave the rates, not the totals; a minute of history', () => {
  const h = harness();
  h.feed(Array.from({ length: 30 }, () => req('/orders/1', 200, 1)));
  for (let i = 0; i < WINDOW_S + 2; i++) h.second();
  let s = h.live.snapshot();
  assert.equal(s.windowSeconds, WINDOW_S, 'at most WINDOW_S seconds');
  assert.equal(s.totals.rate, 0, 'nothing within the window');
  assert.equal(s.totals.duration.p99, null, 'no percentile without requests');
  assert.equal(s.total.requests, 30, 'the totals stay');
  for (let i = 0; i < HISTORY_S + 10; i++) {
    h.feed([req('/orders/1', 200, 1), req('/orders/1', 200, 1)]);
    h.second();
  }
  s = h.live.snapshot();
  assert.equal(s.history.rate.length, HISTORY_S, 'a minute of points');
  assert.ok(
    s.history.rate.every((r) => r === 2),
    `2 requests a second: ${s.history.rate.join(',')}`,
  );
  assert.equal(s.totals.rate, 2);
});

test('slowest of the last minute and the latest failing requests, redacted, few objects', () => {
  const h = harness();
  const durations = [5, 50, 1, 30, 80, 2, 70, 3, 60, 40, 20, 90, 10, 4, 100];
  h.feed(durations.map((ms, i) => req(`/orders/${i}`, 200, ms, { query: 'page=2&token=abc' })));
  let s = h.live.snapshot();
  assert.equal(s.slowest.length, SLOWEST_KEPT);
  assert.deepEqual(
    s.slowest.map((r) => Math.round(r.durationS * 1000)),
    [...durations].sort((a, b) => b - a).slice(0, SLOWEST_KEPT),
    'the slowest, slowest first',
  );
  const top = s.slowest[0];
  assert.equal(top.target, '/orders/14?page=2&token=REDACTED', 'path, and the query redacted');
  assert.match(top.traceId, /^[0-9a-f]{32}$/, 'a trace id to paste into Jaeger');
  assert.equal(top.route, '/orders');
  assert.equal(top.method, 'GET');
  assert.equal(top.time, 1_700_000_000_000 + 101, 'wall clock of its end: 1 ms + 100 ms after the base');
  assert.deepEqual(s.failing, [], 'nothing failed');

  h.feed([req('/users/a', 502, 1), req('/users/b', 404, 1), req('/users/c', 0, 1, { error: ErrorCode.ClientClosed })]);
  s = h.live.snapshot();
  assert.deepEqual(
    s.failing.map((r) => `${r.target} ${r.status} ${r.error ?? ''}`),
    ['/users/c 0 client_closed', '/users/b 404 ', '/users/a 502 502'],
    'latest first, with the error type',
  );

  h.t.relNs += 61e9;
  h.second();
  s = h.live.snapshot();
  assert.equal(s.slowest.length, 0, 'a minute later the slowest are gone');
  assert.equal(s.failing.length, 3, 'failures stay five minutes');
  h.feed([req('/orders/quick', 200, 0.5)]);
  assert.equal(h.live.snapshot().slowest.length, 1, 'the threshold fell with them');
  h.t.relNs += 300e9;
  h.second();
  assert.equal(h.live.snapshot().failing.length, 0, 'then they go too');
});

test('a burst where each request is slower than the last: the slowest is never missed', () => {
  const h = harness();
  h.feed(Array.from({ length: 800 }, (_, i) => req(`/orders/${i}`, 200, 1 + i / 100)));
  const s = h.live.snapshot();
  assert.equal(s.slowest[0].target, '/orders/799', 'the slowest of the burst');
  assert.equal(s.slowest.length, SLOWEST_KEPT);
});

test('a flood of failures costs a compare each: at most 64 described per second, 20 listed', () => {
  const h = harness();
  h.second();
  const before = h.t.toHrTimeCalls;
  h.feed(Array.from({ length: 1000 }, (_, i) => req(`/users/${i}`, 503, 1)));
  const described = h.t.toHrTimeCalls - before;
  assert.ok(described <= 64 + SLOWEST_KEPT, `${described} requests described in one second`);
  assert.equal(h.live.snapshot().failing.length, FAILING_KEPT);
  assert.equal(h.live.snapshot().total.requests, 1000, 'the counts are the metrics: every request');
  h.second();
  h.feed([req('/users/after', 503, 1)]);
  assert.equal(h.live.snapshot().failing[0].target, '/users/after', 'the next second keeps again');
});

test('retries per row, from attempts after the first', () => {
  const h = harness();
  h.feed([
    req('/orders/1', 200, 1, { attempts: 3 }),
    req('/orders/2', 200, 1, { attempts: 1 }),
    req('/users/1', 502, 1, { attempts: 2 }),
  ]);
  h.t.ms += 1000;
  const s = h.live.snapshot();
  const rows = new Map(s.routes.map((r) => [r.route, r]));
  assert.equal(rows.get('/orders')!.total.retries, 2);
  assert.equal(rows.get('/users')!.total.retries, 1);
  assert.equal(rows.get('/orders')!.window.retryRate, 2, 'per second over the window');
  assert.equal(s.total.retries, 3);
});

test('a node-wide agent: one row per pod and route, the pod on recent requests', () => {
  const h = harness({ scope: 'host' });
  const pods: Record<number, PodInfo> = {
    10: { index: 1, name: 'kong-a', namespace: 'edge' },
    20: { index: 2, name: 'kong-b', namespace: 'edge' },
  };
  const options = { pods: { get: (pid: number) => pods[pid] } };
  h.feed(
    [
      req('/orders/1', 200, 1, { pid: 10 }),
      req('/orders/1', 200, 1, { pid: 10 }),
      req('/orders/1', 500, 1, { pid: 20 }),
    ],
    options,
  );
  const s = h.live.snapshot();
  assert.equal(s.scope, 'host');
  assert.deepEqual(s.routes.map((r) => `${r.namespace}/${r.pod} ${r.route} ${r.total.requests}`).sort(), [
    'edge/kong-a /orders 2',
    'edge/kong-b /orders 1',
  ]);
  assert.equal(s.failing[0].pod, 'kong-b');
  assert.equal(s.failing[0].namespace, 'edge');
});

test('past the series cap: the overflow row counts requests, never guesses errors', () => {
  const h = harness();
  const many: EnricherOptions['routes'] = {
    resolve: (ex) => route(Number(ex.path!.slice(3)) + 10, ex.path!, `r${ex.path}`),
  };
  h.feed(
    Array.from({ length: MAX_SERIES + 50 }, (_, i) => req(`/r/${i}`, 500, 1)),
    { routes: many },
  );
  const s = h.live.snapshot();
  const overflow = s.routes.filter((r) => r.overflow);
  assert.equal(overflow.length, 1, 'one overflow row');
  assert.equal(overflow[0].total.requests, 50);
  assert.equal(overflow[0].total.errors, 0, 'its statuses are not known');
  assert.equal(s.total.requests, MAX_SERIES + 50);
});

test("the agent's health: lost events, spans dropped, export state, CPU and memory", () => {
  const h = harness({ tracesExporter: 'otlp', metricsExporter: 'otlp' });
  h.second();
  assert.equal(h.live.snapshot().agent.export.state, 'ok');
  h.counters.eventsReceived = 5000;
  h.counters.eventsLost = 7;
  h.counters.spansDropped = 3;
  h.counters.cpuMicros = 500_000;
  h.t.ms += 1000;
  const a = h.live.snapshot().agent;
  assert.equal(a.lostEvents, 7);
  assert.equal(a.lostEventsInWindow, 7);
  assert.equal(a.spansDropped, 3);
  assert.equal(a.export.state, 'failing', 'spans dropped within the window');
  assert.equal(a.eventsPerSecond, 2500, 'over the 2 s window');
  assert.equal(a.cpuPercent, 25, '0.5 s of CPU in 2 s');
  assert.equal(a.ringFill, 0.25);
  assert.equal(a.rssBytes, 100 * 1048576);
  assert.equal(a.kongProcesses, 3);
  assert.equal(harness().live.snapshot().agent.export.state, 'off', 'no exporter: off');
});
