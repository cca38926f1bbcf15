/**
 * The whole chain for real: the Kong-shaped gateway, the agent with its BPF programs, and an
 * OTLP gRPC receiver on loopback decoding with the official protos. nginx's access log is the
 * oracle for spans and metrics; then the collector goes away and comes back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loggedByStatusClass, pathOf, readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { metricByStatusClass, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../fixture/otlp-receiver';
import { runMixedTraffic, type TrafficSummary } from '../fixture/traffic';

const PROXY_PORT = 19130;
const ADMIN_PORT = 19131;
const UPSTREAM_PORT = 19132;
const RECEIVER_PORT = 19135;
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function otelEnv(prefix: string): Record<string, string> {
  return {
    KONG_PREFIX: prefix,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${RECEIVER_PORT}`,
    OTEL_METRIC_EXPORT_INTERVAL: '500',
    OTEL_SERVICE_NAME: 'kong-e2e',
    LOG_REQUESTS: 'false',
    KONG_ADMIN_URL: `http://127.0.0.1:${ADMIN_PORT}`,
  };
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

function lastStats(agent: AgentProcess): AgentLine {
  const stats = agent.lines.filter((l) => l.msg === 'stats');
  assert.ok(stats.length > 0, 'stats lines');
  return stats[stats.length - 1];
}

describe('OpenTelemetry from the real agent vs the access log', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let receiver: OtlpReceiver;
  let agent: AgentProcess;
  let traffic: TrafficSummary;
  let access: AccessLogEntry[];
  let spans: ReceivedSpan[];

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 2,
    });
    receiver = await startOtlpReceiver({ port: RECEIVER_PORT });
    agent = startAgent(otelEnv(gateway.prefix));
    await agent.waitForMonitored(gateway.workerPids());
    await agent.waitFor((l) => l.msg === 'Kong routes loaded from the Admin API', 10_000, 'routes from the Admin API');
    traffic = await runMixedTraffic({ port: PROXY_PORT, concurrency: 200, requests: 1200, burst: 200, seed: 11 });
    access = readAccessLog(gateway.accessLogPath);
    // Not-sampled callers (traceparent flags 00) get no span under parentbased_always_on.
    const unsampled = traffic.requests.filter((r) => r.traceparent?.endsWith('-00')).length;
    await receiver.waitForSpans(1, 20_000);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const servers = receiver.spans().filter((s) => s.kind === SPAN_KIND_SERVER).length;
      if (servers >= access.length - unsampled) break;
      await sleep(250);
    }
    await sleep(1500); // the last metric export and any late client spans
    spans = receiver.spans();
  });

  after(async () => {
    agent?.saveOutput('otel-agent');
    await agent?.stop();
    await receiver?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('one SERVER span per access-log line: method, path, status, timing, trace ids', () => {
    assert.equal(traffic.errors.length, 0, `traffic errors: ${traffic.errors.slice(0, 5).join('; ')}`);
    const byPath = new Map<string, ReceivedSpan[]>();
    for (const s of spans.filter((x) => x.kind === SPAN_KIND_SERVER)) {
      const key = `${s.attributes['http.request.method']} ${s.attributes['url.path']}`;
      byPath.set(key, [...(byPath.get(key) ?? []), s]);
    }
    const sent = new Map(traffic.requests.map((r) => [`${r.method} ${pathOf(r.target)}`, r]));
    const problems: string[] = [];
    let timingOff = 0;
    let compared = 0;
    // Garbage nginx answered with 400: SERVER spans with method _OTHER and no path, counted.
    const garbage = access.filter((e) => e.method === '').length;
    const pathless = spans.filter((s) => s.kind === SPAN_KIND_SERVER && s.attributes['url.path'] === undefined);
    assert.equal(pathless.length, garbage, 'one span per garbage request nginx answered');
    for (const e of access) {
      if (e.method === '') continue;
      const key = `${e.method} ${pathOf(e.target)}`;
      const request = sent.get(key);
      const found = byPath.get(key) ?? [];
      if (request?.traceparent?.endsWith('-00')) {
        if (found.length !== 0) problems.push(`${key}: exported though the caller did not sample it`);
        continue;
      }
      if (found.length !== 1) {
        problems.push(`${key}: ${found.length} SERVER spans`);
        continue;
      }
      const span = found[0];
      compared++;
      if (span.attributes['http.response.status_code'] !== e.status) {
        problems.push(`${key}: status ${String(span.attributes['http.response.status_code'])}, nginx ${e.status}`);
      }
      const ms = Number(span.endTimeUnixNano - span.startTimeUnixNano) / 1e6;
      if (Math.abs(ms - e.requestTime * 1000) > 2) timingOff++;
      if (request?.traceparent) {
        const [, traceId, parentId] = request.traceparent.split('-');
        if (span.traceId !== traceId || span.parentSpanId !== parentId) problems.push(`${key}: trace not continued`);
      } else if (request?.b3TraceId && span.traceId !== request.b3TraceId.padStart(32, '0')) {
        problems.push(`${key}: B3 trace not continued`);
      } else if (!request?.traceparent && !request?.b3TraceId && !request?.b3 && span.parentSpanId !== '') {
        problems.push(`${key}: a root span has a parent`);
      }
      if (e.status >= 500 && span.status.code !== 2) problems.push(`${key}: 5xx without ERROR status`);
      // Routes come from the fixture's Admin API: /api -> route "api" of "upstream-service".
      const route = /^\/(api|echo|svc|fail|dead|secure)\//.exec(e.target)?.[1];
      const expectedName = route ? `${e.method} /${route}` : e.method;
      if (span.name !== expectedName) problems.push(`${key}: span name "${span.name}", expected "${expectedName}"`);
      if (route && (span.attributes['http.route'] !== `/${route}` || span.attributes['kong.route.name'] !== route)) {
        problems.push(
          `${key}: route attributes ${String(span.attributes['http.route'])} ${String(span.attributes['kong.route.name'])}`,
        );
      }
    }
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
    assert.ok(compared >= access.length * 0.9, `${compared} spans compared of ${access.length} log lines`);
    // nginx's clock is its event loop's cached time (see capture.test.ts): 99% within 2 ms.
    assert.ok(
      timingOff <= compared * 0.01,
      `${timingOff} of ${compared} span durations differ from $request_time by > 2 ms`,
    );
  });

  it('CLIENT spans: one per upstream attempt, children of their SERVER span', () => {
    const servers = new Map(spans.filter((s) => s.kind === SPAN_KIND_SERVER).map((s) => [s.spanId, s]));
    const clients = spans.filter((s) => s.kind === SPAN_KIND_CLIENT);
    const requestId = (path: unknown) => /\/r\d+(?=[/?]|$)/.exec(String(path))?.[0];
    const proxied = access.filter((e) => /^\/(api|echo|svc|fail)\//.test(e.target) && e.status !== 499);
    const sampledProxied = proxied.filter(
      (e) => !traffic.requests.some((r) => r.traceparent?.endsWith('-00') && pathOf(r.target) === pathOf(e.target)),
    );
    assert.ok(
      clients.length >= sampledProxied.length * 0.99,
      `${clients.length} CLIENT spans for ${sampledProxied.length} sampled proxied requests`,
    );
    let parented = 0;
    const wrong: string[] = [];
    for (const c of clients) {
      const parent = servers.get(c.parentSpanId);
      if (
        parent &&
        parent.traceId === c.traceId &&
        requestId(parent.attributes['url.path']) === requestId(c.attributes['url.full'])
      )
        parented++;
      else
        wrong.push(
          `${String(c.attributes['url.full'])} -> ${parent ? String(parent.attributes['url.path']) : `no parent ${c.parentSpanId}`}`,
        );
    }
    assert.ok(
      parented >= clients.length * 0.99,
      `${parented} of ${clients.length} CLIENT spans parented correctly: ${wrong.slice(0, 8).join('; ')}`,
    );
  });

  it('metric counts equal the access log by status class, sampled or not', () => {
    const metric = receiver.latestMetric('http.server.request.duration');
    assert.ok(metric, 'http.server.request.duration exported');
    assert.equal(metric.temporality, 2, 'cumulative');
    assert.deepEqual(metricByStatusClass(metric), loggedByStatusClass(access));
    const received = receiver.latestMetric('kong_watcher.events.received');
    assert.ok(received && (received.points[0]?.value ?? 0) > 0, 'agent self-metrics exported');
  });
});

describe('a collector that is down at start, then killed mid-run', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let receiver: OtlpReceiver | undefined;
  let agent: AgentProcess;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 1,
    });
  });

  after(async () => {
    agent?.saveOutput('otel-agent-collector-down');
    await agent?.stop();
    await receiver?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('keeps capturing, counts drops, recovers, and stays bounded', async () => {
    agent = startAgent({ ...otelEnv(gateway.prefix), OTEL_EXPORTER_OTLP_TIMEOUT: '1000' });
    await agent.waitFor((l) => l.msg === 'monitoring Kong process' && l.role === 'worker', 20_000, 'worker monitored');
    const load = (seed: number) =>
      runMixedTraffic({ port: PROXY_PORT, concurrency: 16, requests: 200, burst: 16, seed });
    let seed = 20;
    // Spans made while the exporter reconnects (gRPC backs off) may be dropped: keep the gateway
    // busy until the collector has received spans again.
    const loadUntilSpans = async (r: OtlpReceiver, what: string) => {
      const deadline = Date.now() + 60_000;
      while (r.spanCount() < 100) {
        assert.ok(Date.now() < deadline, `${what}: only ${r.spanCount()} spans arrived`);
        await load(seed++);
        await sleep(500);
      }
    };

    // 1. nobody listens: requests are still counted, spans dropped and counted
    await load(seed++);
    await agent.waitFor(
      (l) => l.msg === 'stats' && Number(l.spans_dropped) > 0,
      30_000,
      'drops counted while the collector is down',
    );

    // 2. the collector appears: export recovers
    receiver = await startOtlpReceiver({ port: RECEIVER_PORT });
    await loadUntilSpans(receiver, 'collector started');

    // 3. killed mid-run, then back
    await receiver.stop();
    await load(seed++);
    receiver = await startOtlpReceiver({ port: RECEIVER_PORT });
    await loadUntilSpans(receiver, 'collector restarted');

    await agent.waitQuiet(1500, 30_000);
    await sleep(1500);
    const stats = lastStats(agent);
    const logged = readAccessLog(gateway.accessLogPath).length;
    assert.equal(stats.requests, logged, 'every request counted through all of it');
    assert.ok(Number(stats.spans_dropped) > 0, 'drops reported in the stats line');
    assert.equal(stats.lost_events, 0, 'capture never lost an event');
    // The metric exporter's gRPC channel reconnects on grpc-js's own backoff, slower than the
    // span exporter's: wait for its first export to the restarted collector.
    const dropped = await receiver.waitForMetric(
      'kong_watcher.spans.dropped',
      (m) => m.points.reduce((n, p) => n + (p.value ?? 0), 0) > 0,
      20_000,
    );
    assert.ok(dropped, 'drops reported as a self-metric');
    const rss = rssMiB(agent.child.pid!);
    assert.ok(rss < 256, `agent RSS ${rss.toFixed(0)} MiB stays under the sidecar's 256 MiB limit`);
    assert.ok(
      agent.lines.some((l) => l.level === 'warn' && /export/.test(l.msg)),
      'the failure was said in the log',
    );
  });
});
