/**
 * Synthetic exchanges (frames as the native assembler writes them, through the real decoder and
 * enrichment stage) through createTelemetry and the REAL OTLP gRPC exporters into a real gRPC
 * receiver on loopback: content, a dead and returning collector, and throughput.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeFlag } from '../../src/capture/exchange-layout';
import type { EnrichedExchange } from '../../src/enrich/enriched';
import { createTelemetry, type Telemetry } from '../../src/otel/telemetry';
import { startOtlpReceiver, type OtlpReceiver } from '../fixture/otlp-receiver';
import { clientSpec, serverSpec } from '../unit/helpers/frames';
import { enrich, fakeClock } from '../unit/helpers/pipeline';

const quietLog = { debug() {}, info() {}, warn() {}, error() {} };
const lines: string[] = [];
const recordingLog = {
  debug() {},
  info: (m: string) => void lines.push(`info ${m}`),
  warn: (m: string) => void lines.push(`warn ${m}`),
  error: (m: string) => void lines.push(`error ${m}`),
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function env(port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_METRIC_EXPORT_INTERVAL: '200',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_SERVICE_NAME: 'kong-e2e',
    K8S_POD_NAME: 'kong-0',
    K8S_NAMESPACE_NAME: 'gw',
    ...extra,
  };
}

/** A proxied request with one attempt, enriched: the SERVER exchange, then its attempt. */
function proxied(status: number, caller?: { traceId: string; parentSpanId: string }): EnrichedExchange[] {
  const server = serverSpec({
    status,
    ...(caller && {
      traceId: caller.traceId,
      parentSpanId: caller.parentSpanId,
      flags:
        ExchangeFlag.Response |
        ExchangeFlag.Sampled |
        ExchangeFlag.Via |
        ExchangeFlag.CallerContext |
        ExchangeFlag.ParentSpan,
    }),
  });
  return enrich([server, clientSpec(server, { status })]);
}

async function freePort(): Promise<number> {
  const r = await startOtlpReceiver();
  await r.stop();
  return r.port;
}

test('spans and metrics arrive through the real OTLP gRPC exporters, exact and complete', async () => {
  const receiver = await startOtlpReceiver();
  const telemetry = createTelemetry(env(receiver.port), fakeClock, quietLog);
  try {
    const statuses = [200, 201, 204, 301, 404, 429, 500, 503];
    const sent: EnrichedExchange[] = [];
    for (const s of statuses) {
      for (const e of proxied(s)) {
        telemetry.exchange(e);
        sent.push(e);
      }
    }
    const caller = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentSpanId: '00f067aa0ba902b7' };
    for (const e of proxied(200, caller)) telemetry.exchange(e);
    const [kongOnly] = enrich([
      serverSpec({
        status: 404,
        attempts: 0,
        upstreamStartNs: 0,
        upstreamEndNs: 0,
        kongProxyLatencyMs: -1,
        kongUpstreamLatencyMs: -1,
        flags: ExchangeFlag.Response | ExchangeFlag.Sampled | ExchangeFlag.ServerKong,
      }),
    ]);
    telemetry.exchange(kongOnly);

    const spans = await receiver.waitForSpans(2 * statuses.length + 2 + 1, 10_000);
    assert.equal(spans.length, 2 * statuses.length + 3, 'one SERVER span per request, one CLIENT span per attempt');
    const servers = spans.filter((s) => s.kind === 2);
    const clients = spans.filter((s) => s.kind === 3);
    assert.equal(servers.length, statuses.length + 2);
    assert.equal(clients.length, statuses.length + 1);
    for (const c of clients) {
      const parent = servers.find((s) => s.spanId === c.parentSpanId);
      assert.ok(parent, `CLIENT span ${c.spanId} has its SERVER span as parent`);
      assert.equal(c.traceId, parent.traceId, 'same trace');
    }
    const continued = servers.find((s) => s.traceId === caller.traceId)!;
    assert.ok(continued, 'incoming traceparent continued');
    assert.equal(continued.parentSpanId, caller.parentSpanId, 'caller is the parent');
    const first = sent.find((e) => e.ex.isServer)!;
    const s200 = servers.find((s) => s.spanId === first.ex.spanId)!;
    assert.equal(
      s200.startTimeUnixNano,
      1_700_000_000n * 1_000_000_000n + BigInt(first.ex.startNs),
      'start exact to the ns',
    );
    assert.equal(s200.endTimeUnixNano, 1_700_000_000n * 1_000_000_000n + BigInt(first.ex.endNs), 'end exact to the ns');
    assert.equal(s200.attributes['url.query'], 'limit=5&token=REDACTED', 'query redacted on the wire');
    assert.equal(s200.attributes['http.response.status_code'], 200);
    assert.equal(s200.resource['service.name'], 'kong-e2e');
    assert.equal(s200.resource['k8s.pod.name'], 'kong-0');
    const s500 = servers.find((s) => s.attributes['http.response.status_code'] === 500)!;
    assert.equal(s500.status.code, 2, 'ERROR status for 5xx');
    assert.equal(servers.find((s) => s.spanId === kongOnly.ex.spanId)!.attributes['kong.response.source'], 'kong');

    const duration = await receiver.waitForMetric(
      'http.server.request.duration',
      (m) => m.points.reduce((n, p) => n + p.count!, 0) === statuses.length + 2,
      5000,
    );
    assert.equal(duration.temporality, 2, 'cumulative');
    const byClass = new Map<number, number>();
    for (const p of duration.points) {
      const c = Math.floor((p.attributes['http.response.status_code'] as number) / 100);
      byClass.set(c, (byClass.get(c) ?? 0) + p.count!);
    }
    assert.deepEqual(
      Object.fromEntries(byClass),
      { 2: 4, 3: 1, 4: 3, 5: 2 },
      'metric counts by status class equal what was sent',
    );
    assert.ok(receiver.latestMetric('http.client.request.duration'), 'client durations exported');
    assert.ok(receiver.latestMetric('kong_watcher.spans.exported'), 'self metrics exported');
    assert.equal(telemetry.stats().spansDropped, 0, 'nothing dropped');
    assert.equal(telemetry.totals().status5xx, 2, 'the stats line counts the 5xx');
  } finally {
    await telemetry.shutdown(2000);
    await receiver.stop();
  }
});

test('collector down at start and killed mid-run: retries, drops counted, recovery, bounded memory', async () => {
  const port = await freePort();
  lines.length = 0;
  const telemetry = createTelemetry(
    env(port, {
      OTEL_EXPORTER_OTLP_TIMEOUT: '1500',
      OTEL_BSP_MAX_QUEUE_SIZE: '4096',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512',
    }),
    fakeClock,
    recordingLog,
  );
  const feed = async (n: number) => {
    for (let i = 0; i < n; i++) {
      for (const e of proxied(200)) telemetry.exchange(e);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
  };
  let receiver: OtlpReceiver | undefined;
  try {
    const rssBefore = process.memoryUsage.rss();
    await feed(50_000); // 100k spans with nothing listening
    await sleep(2000);
    const down = telemetry.stats();
    assert.equal(down.spansExported, 0, 'nothing exported while down');
    assert.ok(down.exportFailures > 0, `failures counted (${down.exportFailures})`);
    assert.ok(down.spansDropped > 90_000, `drops counted (${down.spansDropped})`);
    assert.ok(down.spansQueued <= 4096, 'queue bounded');
    const rssGrowth = (process.memoryUsage.rss() - rssBefore) / 1048576;
    assert.ok(rssGrowth < 100, `memory bounded while the collector is down (+${rssGrowth.toFixed(1)} MiB)`);
    assert.ok(
      lines.some((l) => l.startsWith('warn span export failing')),
      'the agent said so, once',
    );
    assert.equal(lines.filter((l) => l.startsWith('warn span export failing')).length, 1, 'said once');

    receiver = await startOtlpReceiver({ port });
    const t0 = Date.now();
    await feed(100);
    let recovered = false;
    while (Date.now() - t0 < 20_000 && !recovered) {
      await feed(20);
      await sleep(200);
      recovered = receiver.spanCount() > 0;
    }
    assert.ok(recovered, 'spans flow again once the receiver is back');
    console.log(`# recovered ${Date.now() - t0} ms after the receiver came back`);

    await receiver.stop(); // killed mid-run
    const failuresBefore = telemetry.stats().exportFailures;
    await feed(5000);
    await sleep(3000);
    assert.ok(telemetry.stats().exportFailures > failuresBefore, 'new failures counted after the kill');

    receiver = await startOtlpReceiver({ port });
    const exportedBefore = telemetry.stats().spansExported;
    const t1 = Date.now();
    while (Date.now() - t1 < 20_000 && telemetry.stats().spansExported === exportedBefore) {
      await feed(20);
      await sleep(200);
    }
    assert.ok(telemetry.stats().spansExported > exportedBefore, 'recovers after the second outage');
    assert.ok(lines.filter((l) => l === 'info span export recovered').length >= 2, 'each recovery logged');
    // The metric exporter's gRPC channel reconnects on grpc-js's own backoff (1 s growing by 1.6x,
    // not ours), so after two outages on a loaded machine its first export may take a few seconds.
    const m = await receiver.waitForMetric(
      'kong_watcher.spans.dropped',
      (x) => x.points.some((p) => (p.value ?? 0) > 0),
      20_000,
    );
    assert.ok(m.points.reduce((n, p) => n + (p.value ?? 0), 0) > 90_000, 'drops visible in the self-metrics');
  } finally {
    await telemetry.shutdown(2000);
    await receiver?.stop();
  }
});

/** Offers `rate` spans/s for `seconds` from pre-built exchanges; waits for the queue to drain. */
async function offer(telemetry: Telemetry, receiver: OtlpReceiver, rate: number, seconds: number) {
  const pool: EnrichedExchange[] = [];
  for (let i = 0; i < 5000; i++) pool.push(...proxied(200 + (i % 5) * 100));
  const tickMs = 10;
  const perTick = (rate * tickMs) / 1000;
  const total = rate * seconds;
  const before = telemetry.stats();
  const received0 = receiver.spanCount();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let sent = 0;
  let rssPeak = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - t0) / 1e6 / tickMs + 1) * perTick));
    while (sent < due) telemetry.exchange(pool[sent++ % pool.length]);
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    await sleep(tickMs);
  }
  const deadline = Date.now() + 20_000;
  while (telemetry.stats().spansQueued > 0 && Date.now() < deadline) await sleep(50);
  await sleep(300);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const after = telemetry.stats();
  const r = {
    offered: total,
    received: receiver.spanCount() - received0,
    dropped: after.spansDropped - before.spansDropped,
    seconds: s,
    cpuUsPerSpan: (cpu.user + cpu.system) / total,
    rssPeakMiB: rssPeak / 1048576,
  };
  console.log(
    `# offered ${rate}/s x ${seconds} s: received ${r.received}/${total} (${Math.round(r.received / s)}/s end to end), ` +
      `dropped ${r.dropped}, cpu ${r.cpuUsPerSpan.toFixed(1)} us/span (receiver in-process included), peak RSS ${r.rssPeakMiB.toFixed(0)} MiB`,
  );
  return r;
}

test('throughput through OTLP gRPC: zero drops at a sustainable rate, bounded and counted at 100k spans/s', async () => {
  const receiver = await startOtlpReceiver({ decode: false });
  const telemetry: Telemetry = createTelemetry(
    env(receiver.port, { OTEL_METRIC_EXPORT_INTERVAL: '60000' }),
    fakeClock,
    quietLog,
  );
  try {
    const steady = await offer(telemetry, receiver, 5_000, 3);
    assert.equal(steady.dropped, 0, 'zero drops at 5k spans/s');
    assert.equal(steady.received, steady.offered, 'every span received');

    const burst = await offer(telemetry, receiver, 100_000, 3);
    assert.equal(burst.received + burst.dropped, burst.offered, 'every span either received or counted as dropped');
    // RSS is printed, not asserted: this process also runs the receiver and the exchange pool,
    // so it overstates the agent; the benchmark (issue 5) measures the agent alone.
    assert.ok(telemetry.stats().spansQueued <= telemetry.config.queue.maxQueueSize, 'queue bounded');
  } finally {
    await telemetry.shutdown(2000);
    await receiver.stop();
  }
});
