/**
 * OTLP the three ways OTEL_EXPORTER_OTLP_PROTOCOL names: the real agent in front of the
 * Kong-shaped gateway, exporting to a receiver on loopback that decodes with the official protos
 * (gRPC; HTTP with binary protobuf; HTTP with JSON). For each: one SERVER span per access-log
 * line (1:1 by method and path), a CLIENT span per proxied attempt, and metric counts equal to the
 * access log's by status class. The HTTP runs also check the endpoint handling of the
 * specification: /v1/traces and /v1/metrics appended to a base endpoint, per-signal endpoints
 * used as they are.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loggedByStatusClass, pathOf, readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { startAgent, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { metricByStatusClass, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../fixture/otlp-receiver';
import { runMixedTraffic, type TrafficSummary } from '../fixture/traffic';

const PROXY_PORT = 19200;
const ADMIN_PORT = 19201;
const UPSTREAM_PORT = 19202;
const RECEIVER_PORT = 19203;
const SERVER = 2;
const CLIENT = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  protocol: 'grpc' | 'http/protobuf' | 'http/json';
  transport: 'grpc' | 'http';
  env: (base: string) => Record<string, string>;
  /** what the receiver must have seen, HTTP only: "<content type> <path>" */
  httpRequests?: string[];
}

const RUNS: Run[] = [
  {
    protocol: 'grpc',
    transport: 'grpc',
    env: (base) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: base }),
  },
  {
    protocol: 'http/protobuf',
    transport: 'http',
    // The base endpoint: the agent appends /v1/traces and /v1/metrics.
    env: (base) => ({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: base }),
    httpRequests: ['application/x-protobuf /v1/traces', 'application/x-protobuf /v1/metrics'],
  },
  {
    protocol: 'http/json',
    transport: 'http',
    // Per-signal endpoints and protocols, used as they are.
    env: (base) => ({
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${base}/v1/traces`,
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${base}/v1/metrics`,
    }),
    httpRequests: ['application/json /v1/traces', 'application/json /v1/metrics'],
  },
];

for (const run of RUNS) {
  describe(`OTLP over ${run.protocol}: spans and metrics vs the access log`, () => {
    let upstream: Upstream;
    let gateway: Gateway;
    let receiver: OtlpReceiver;
    let agent: AgentProcess;
    let traffic: TrafficSummary;
    let access: AccessLogEntry[];
    let spans: ReceivedSpan[];
    /** requests whose caller said "not sampled": no spans, but counted */
    let unsampled: Set<string>;

    before(async () => {
      upstream = await startUpstream({ port: UPSTREAM_PORT });
      gateway = await startGateway({
        proxyPort: PROXY_PORT,
        adminPort: ADMIN_PORT,
        upstreamPort: UPSTREAM_PORT,
        workers: 2,
      });
      receiver = await startOtlpReceiver({ port: RECEIVER_PORT, transport: run.transport });
      agent = startAgent({
        KONG_PREFIX: gateway.prefix,
        KONG_ADMIN_URL: `http://127.0.0.1:${ADMIN_PORT}`,
        OTEL_METRIC_EXPORT_INTERVAL: '500',
        OTEL_SERVICE_NAME: 'kong-e2e',
        LOG_REQUESTS: 'false',
        ...run.env(`http://127.0.0.1:${RECEIVER_PORT}`),
      });
      await agent.waitForMonitored(gateway.workerPids());
      await agent.waitFor((l) => l.msg === 'Kong routes loaded from the Admin API', 10_000, 'routes loaded');
      traffic = await runMixedTraffic({ port: PROXY_PORT, concurrency: 64, requests: 500, burst: 64, seed: 31 });
      access = readAccessLog(gateway.accessLogPath);
      unsampled = new Set(
        traffic.requests.filter((r) => r.traceparent?.endsWith('-00')).map((r) => `${r.method} ${pathOf(r.target)}`),
      );
      const expected = access.length - access.filter((e) => unsampled.has(`${e.method} ${pathOf(e.target)}`)).length;
      const deadline = Date.now() + 45_000;
      while (Date.now() < deadline && receiver.spans().filter((s) => s.kind === SERVER).length < expected) {
        await sleep(250);
      }
      // the metric export after the last request, and any late CLIENT span
      await receiver.waitForMetric(
        'http.server.request.duration',
        (m) => m.points.reduce((n, p) => n + (p.count ?? 0), 0) >= access.length,
        20_000,
      );
      await sleep(1000);
      spans = receiver.spans();
    });

    after(async () => {
      agent?.saveOutput(`otlp-${run.protocol.replace('/', '-')}`);
      await agent?.stop();
      await receiver?.stop();
      await gateway?.stop();
      await upstream?.stop();
    });

    it('one SERVER span per access-log line, and none for callers that did not sample', () => {
      assert.equal(traffic.errors.length, 0, `traffic errors: ${traffic.errors.slice(0, 5).join('; ')}`);
      const servers = spans.filter((s) => s.kind === SERVER);
      const byKey = new Map<string, ReceivedSpan[]>();
      for (const s of servers) {
        const key = `${s.attributes['http.request.method']} ${s.attributes['url.path']}`;
        byKey.set(key, [...(byKey.get(key) ?? []), s]);
      }
      const problems: string[] = [];
      let expected = 0;
      for (const e of access) {
        if (e.method === '') {
          expected++; // garbage nginx answered 400: a SERVER span without a path
          continue;
        }
        const key = `${e.method} ${pathOf(e.target)}`;
        const found = byKey.get(key) ?? [];
        if (unsampled.has(key)) {
          if (found.length !== 0) problems.push(`${key}: exported though its caller did not sample it`);
          continue;
        }
        expected++;
        if (found.length !== 1) problems.push(`${key}: ${found.length} SERVER spans`);
        else if (found[0].attributes['http.response.status_code'] !== e.status) {
          problems.push(
            `${key}: status ${String(found[0].attributes['http.response.status_code'])}, nginx ${e.status}`,
          );
        }
      }
      assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
      assert.equal(servers.length, expected, 'no SERVER span that the access log does not have');
      assert.ok(expected > 400, `${expected} requests compared`);
      const s = servers[0];
      assert.equal(s.resource['service.name'], 'kong-e2e');
      assert.equal(s.scope.name, 'kong-watcher');
      assert.ok(s.endTimeUnixNano > s.startTimeUnixNano, 'nanosecond times');
      assert.equal(typeof s.attributes['kong_watcher.sampling.rule'], 'string', 'how it was kept');
    });

    it('CLIENT spans: children of their SERVER span, one per proxied attempt', () => {
      const servers = new Map(spans.filter((s) => s.kind === SERVER).map((s) => [s.spanId, s]));
      const clients = spans.filter((s) => s.kind === CLIENT);
      const proxied = access.filter(
        (e) =>
          /^\/(api|echo|svc|fail)\//.test(e.target) &&
          e.status !== 499 &&
          !unsampled.has(`${e.method} ${pathOf(e.target)}`),
      );
      assert.ok(clients.length >= proxied.length * 0.99, `${clients.length} CLIENT spans, ${proxied.length} proxied`);
      const orphans = clients.filter((c) => servers.get(c.parentSpanId)?.traceId !== c.traceId);
      assert.ok(orphans.length <= clients.length * 0.01, `${orphans.length} CLIENT spans without their SERVER`);
    });

    it('metric counts equal the access log by status class', () => {
      const metric = receiver.latestMetric('http.server.request.duration');
      assert.ok(metric, 'http.server.request.duration exported');
      assert.equal(metric.type, 'histogram');
      assert.equal(metric.temporality, 2, 'cumulative');
      assert.deepEqual(metricByStatusClass(metric), loggedByStatusClass(access));
      for (const name of ['http.client.request.duration', 'kong_watcher.events.received', 'process.cpu.time']) {
        assert.ok(receiver.latestMetric(name), `${name} exported`);
      }
    });

    it("the agent's span accounting agrees with what arrived: exported, none dropped", async () => {
      const stats = await agent.waitFor(
        (l) => l.msg === 'stats' && Number(l.spans_exported) === receiver.spanCount(),
        10_000,
        `a stats line counting the ${receiver.spanCount()} spans received`,
      );
      assert.equal(stats.spans_dropped, 0, 'nothing dropped');
      assert.equal(stats.export_failures, 0, 'no export failed');
    });

    if (run.httpRequests !== undefined) {
      it('HTTP: the content type of the protocol, to the URL the specification builds', () => {
        const seen = new Set(receiver.httpRequests());
        assert.deepEqual(
          [...seen].sort(),
          [...run.httpRequests!].sort(),
          'every request is one of these, and both signals arrived',
        );
      });
    }
  });
}
