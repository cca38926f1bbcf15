/**
 * "span export failing" at the first failed attempt of an outage, not after an export's retries
 * run out; "span export recovered" at the first success after it. For the agent's own gRPC
 * exporter (it sees every attempt) and for the package's OTLP/HTTP exporters (every attempt is a
 * request through the agent's HTTP agent).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { status } from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import { loadTelemetryConfig } from '../../src/otel/config';
import { ExportHealth } from '../../src/otel/export-health';
import { OtlpGrpcTraceExporter } from '../../src/otel/otlp-grpc-trace-exporter';
import { ExchangeSpan } from '../../src/otel/spans';
import { createTelemetry } from '../../src/otel/telemetry';
import { startOtlpReceiver } from '../fixture/otlp-receiver';
import { clientSpec, serverSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

interface Logged {
  at: number;
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

function recorder() {
  const lines: Logged[] = [];
  const push = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push({ at: Date.now(), level, msg, fields });
  return { lines, log: { debug() {}, info: push('info'), warn: push('warn'), error: push('error') } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('one warning per outage at its first failed attempt, one line when it recovers', () => {
  const { lines, log } = recorder();
  let now = 1000;
  const health = new ExportHealth(log, 'span', () => now);
  health.attempt(true);
  health.attempt(true);
  health.attempt(false, new Error('UNAVAILABLE'));
  now = 4000;
  health.attempt(false);
  health.attempt(false);
  health.attempt(true);
  health.attempt(true);
  health.attempt(false, new Error('again'));
  assert.deepEqual(
    lines.map((l) => `${l.level} ${l.msg.split(';')[0]}`),
    [
      'info span export is working',
      'warn span export failing',
      'info span export recovered',
      'warn span export failing',
    ],
  );
  assert.equal(lines[1].fields?.error, 'UNAVAILABLE', 'the first error is said');
  assert.deepEqual(lines[2].fields, { outage_ms: 3000, failed_attempts: 3 }, 'how long, how many attempts');
});

test('gRPC: the warning comes at the first failed attempt, before the export retries to success', async () => {
  const receiver = await startOtlpReceiver();
  const { lines, log } = recorder();
  const health = new ExportHealth(log, 'span');
  const { config } = loadTelemetryConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
    OTEL_EXPORTER_OTLP_TIMEOUT: '8000',
  });
  const exporter = new OtlpGrpcTraceExporter({
    target: config.traces,
    resourceAttributes: { 'service.name': 'kong-unit' },
    scope: { name: 'kong-watcher' },
    onAttempt: health.attempt,
  });
  try {
    receiver.failWith(status.UNAVAILABLE);
    const server = serverSpec();
    for (const e of enrich([server, clientSpec(server)])) exporter.add(ExchangeSpan.of(e, fakeClock));
    const t0 = Date.now();
    const keepAlive = setTimeout(() => undefined, 10_000);
    const result = new Promise<number>((resolve) => exporter.export(exporter.take(), (r) => resolve(r.code)));
    await sleep(1500);
    const warned = lines.find((l) => l.level === 'warn');
    assert.ok(warned, 'warned while the export is still retrying');
    assert.ok(warned.at - t0 < 1000, `at the first attempt (${warned.at - t0} ms)`);
    receiver.failWith(undefined);
    assert.equal(await result, ExportResultCode.SUCCESS, 'a retry got through');
    clearTimeout(keepAlive);
    assert.equal(lines.filter((l) => l.level === 'warn').length, 1, 'one warning for the outage');
    assert.ok(
      lines.some((l) => l.msg === 'span export recovered'),
      'recovery said',
    );
  } finally {
    await exporter.shutdown();
    await receiver.stop();
  }
});

test('OTLP/HTTP: each request is an attempt; the warning does not wait for the retries', async () => {
  const port = await freePort();
  const { lines, log } = recorder();
  const telemetry = createTelemetry(
    {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_TIMEOUT: '8000',
      OTEL_BSP_SCHEDULE_DELAY: '10',
    },
    fakeClock,
    log,
  );
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>> | undefined;
  try {
    const t0 = Date.now();
    const server = serverSpec();
    for (const e of enrich([server, clientSpec(server)], {})) telemetry.exchange(e);
    const deadline = Date.now() + 3000;
    while (!lines.some((l) => l.level === 'warn') && Date.now() < deadline) await sleep(20);
    const warned = lines.find((l) => l.level === 'warn');
    assert.ok(warned, 'warned');
    assert.match(warned.msg, /^span export failing/);
    assert.match(String(warned.fields?.error), /ECONNREFUSED/);
    assert.ok(
      warned.at - t0 < 1000,
      `at the first refused connection (${warned.at - t0} ms), not after 8 s of retries`,
    );
    assert.equal(telemetry.stats().exportFailures, 0, 'the export itself is still retrying');
    receiver = await startOtlpReceiver({ port, transport: 'http' });
    await receiver.waitForSpans(2, 8000);
    const until = Date.now() + 2000;
    while (!lines.some((l) => l.msg === 'span export recovered') && Date.now() < until) await sleep(20);
    assert.ok(
      lines.some((l) => l.msg === 'span export recovered'),
      'recovery said at the first success',
    );
    assert.equal(telemetry.stats().spansExported, 2, 'the retried export delivered');
  } finally {
    await telemetry.shutdown(1000);
    await receiver?.stop();
  }
});
