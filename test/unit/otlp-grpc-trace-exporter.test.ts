import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { loadTelemetryConfig } from '../../src/otel/config';
import { OtlpGrpcTraceExporter } from '../../src/otel/otlp-grpc-trace-exporter';
import { spanIdHex, type ExportSpan } from '../../src/otel/span';
import { ExchangeSpan } from '../../src/otel/spans';
import { startOtlpReceiver } from '../fixture/otlp-receiver';
import { clientSpec, serverSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

/** Not a benchmark or e2e port: those run beside unit tests in development. */
const PORT = 19431;

/** A SERVER span and its CLIENT span, made from frames as the agent makes them. */
function records(): ExportSpan[] {
  const server = serverSpec();
  return enrich([server, clientSpec(server)]).map((e) => ExchangeSpan.of(e, fakeClock));
}

function exporter(env: Record<string, string> = {}, connections = 2): OtlpGrpcTraceExporter {
  const { config } = loadTelemetryConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${PORT}`, ...env });
  return new OtlpGrpcTraceExporter({
    target: config.traces,
    resourceAttributes: { 'service.name': 'kong-unit' },
    scope: { name: 'kong-watcher', version: '0.1.0' },
    connections,
  });
}

/** The exporter's retry timers do not hold the process open (the agent's other work does); here a timer must. */
const send = (e: OtlpGrpcTraceExporter, spans: ExportSpan[]) =>
  new Promise<ExportResult>((resolve) => {
    const keepAlive = setTimeout(() => undefined, 10_000);
    for (const span of spans) e.add(span);
    e.export(e.take(), (r) => {
      clearTimeout(keepAlive);
      resolve(r);
    });
  });

test('exports reach a real receiver over gRPC, decoded by the official protos', async () => {
  const receiver = await startOtlpReceiver({ port: PORT });
  const e = exporter();
  try {
    const spans = records();
    for (let i = 0; i < 3; i++)
      assert.equal((await send(e, spans)).code, ExportResultCode.SUCCESS, `export ${i} succeeds`);
    const got = await receiver.waitForSpans(6, 5000);
    assert.equal(got.length, 6, 'every span of every request');
    assert.equal(receiver.traceRequests(), 3, 'one request per batch, spread over the connections');
    const server = got.find((s) => s.kind === 2)!;
    assert.equal(server.spanId, spanIdHex(spans[0], spans[0].spanIdAt, 8), 'the SERVER span arrived whole');
    assert.equal(server.resource['service.name'], 'kong-unit');
    assert.deepEqual(server.scope, { name: 'kong-watcher', version: '0.1.0' });
  } finally {
    await e.shutdown();
    await receiver.stop();
  }
});

test('UNAVAILABLE is retried within the timeout; INVALID_ARGUMENT fails at once', async () => {
  const receiver = await startOtlpReceiver({ port: PORT });
  const e = exporter({ OTEL_EXPORTER_OTLP_TIMEOUT: '4000' });
  try {
    receiver.failWith(status.UNAVAILABLE);
    setTimeout(() => receiver.failWith(undefined), 400);
    const retried = await send(e, records());
    assert.equal(retried.code, ExportResultCode.SUCCESS, 'succeeded on a retry once the receiver recovered');
    assert.equal(receiver.spanCount(), 2, 'the batch arrived once');

    receiver.failWith(status.INVALID_ARGUMENT);
    const t0 = Date.now();
    const refused = await send(e, records());
    assert.equal(refused.code, ExportResultCode.FAILED, 'a permanent error fails the batch');
    assert.ok(Date.now() - t0 < 1000, 'without retrying');
  } finally {
    await e.shutdown();
    await receiver.stop();
  }
});

test('nothing listening: fails within the timeout; after shutdown, exports fail at once', async () => {
  const e = exporter({ OTEL_EXPORTER_OTLP_TIMEOUT: '800' }, 1);
  const t0 = Date.now();
  const r = await send(e, records());
  assert.equal(r.code, ExportResultCode.FAILED);
  assert.ok(Date.now() - t0 < 2000, `gave up within the timeout (${Date.now() - t0} ms)`);
  await e.shutdown();
  assert.equal((await send(e, records())).code, ExportResultCode.FAILED, 'a shut-down exporter refuses');
});
