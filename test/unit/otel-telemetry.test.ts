import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationTemporality, InMemoryMetricExporter } from '@opentelemetry/sdk-metrics';
import { Sampler } from '../../src/enrich/sampler';
import { createTelemetry } from '../../src/otel';
import { spanIdHex, type ExportSpan } from '../../src/otel/span';
import type { SpanSink } from '../../src/otel/span-queue';
import { clientSpec, serverSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

const KEPT = '0123456789abcdef00ffffffffffffff';
const DROPPED = '0123456789abcdef0000000000000001';

function frames() {
  const kept = serverSpec({ traceId: KEPT });
  const dropped = serverSpec({ traceId: DROPPED });
  return [kept, clientSpec(kept), dropped, clientSpec(dropped)];
}

test('every exchange is counted; spans only for the sampled ones, exported through the queue', async () => {
  const exported: ExportSpan[] = [];
  const spanExporter: SpanSink = {
    export: (spans, done) => {
      exported.push(...spans);
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => undefined,
  };
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const telemetry = createTelemetry(
    { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' },
    fakeClock,
    quiet,
    {
      spanExporter,
      metricExporter,
    },
  );
  assert.equal(telemetry.tracing, true, 'a span exporter: tracing is on');
  const sampler = new Sampler(telemetry.config.sampler, telemetry.config.samplerRatio);
  for (const e of enrich(frames(), { sampler })) telemetry.exchange(e);
  assert.equal(telemetry.totals().requests, 2, 'both SERVER exchanges counted');
  assert.equal(telemetry.totals().upstreamAttempts, 2, 'both attempts counted');
  await telemetry.shutdown(2000);
  assert.deepEqual(
    exported.map((s) => spanIdHex(s, s.traceIdAt, 16)),
    [KEPT, KEPT],
    'the sampled trace, SERVER and CLIENT',
  );
  const stats = telemetry.stats();
  assert.equal(stats.spansCreated, 2);
  assert.equal(stats.spansSampledOut, 2, 'the other trace is counted as sampled out');
  assert.equal(stats.spansExported, 2);
  const names = metricExporter
    .getMetrics()
    .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name)));
  assert.ok(names.includes('http.server.request.duration'), 'metrics flushed at shutdown');
});

test('a full queue drops spans before they are built, and counts them', async () => {
  const pending: ((r: ExportResult) => void)[] = [];
  const stuck: SpanSink = { export: (_spans, done) => void pending.push(done), shutdown: async () => undefined };
  const telemetry = createTelemetry(
    { OTEL_BSP_MAX_QUEUE_SIZE: '2', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1', OTEL_BSP_MAX_CONCURRENT_EXPORTS: '1' },
    fakeClock,
    quiet,
    { spanExporter: stuck },
  );
  const exchanges = enrich([...frames(), ...frames()], { sampler: new Sampler('always_on', 1) });
  for (const e of exchanges) telemetry.exchange(e);
  const stats = telemetry.stats();
  assert.equal(stats.spansQueued, 2, 'the queue holds its bound, the batch in flight included');
  assert.equal(stats.spansDropped, exchanges.length - 2, 'one in flight, one waiting, the rest dropped');
  assert.equal(telemetry.totals().requests, 4, 'metrics still count every request');
  for (const done of pending) done({ code: ExportResultCode.SUCCESS });
  await telemetry.shutdown(200);
});

test('no exporter configured: metrics still aggregate for the stats line, no spans', () => {
  const telemetry = createTelemetry({}, fakeClock, quiet);
  assert.equal(telemetry.tracing, false);
  for (const e of enrich(frames(), { sampler: undefined })) telemetry.exchange(e);
  assert.equal(telemetry.totals().requests, 2);
  assert.equal(telemetry.stats().spansCreated, 0);
  assert.equal(telemetry.stats().tracesExporter, 'none');
});
