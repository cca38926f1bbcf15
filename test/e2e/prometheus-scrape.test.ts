/**
 * The Grafana dashboard against a real Prometheus, both ways metrics reach one:
 *
 *  - scrape: OTEL_METRICS_EXPORTER=otlp,prometheus, and Debian's Prometheus scrapes the agent's
 *    /metrics every second;
 *  - OTLP: the same agent's OTLP metrics go to a receiver on loopback, and a second Prometheus
 *    scrapes them as the collector of otel-collector.yaml would write them
 *    (test/fixture/collector-prometheus.ts, built from the collector's own naming rules).
 *
 * After mixed traffic through the Kong-shaped gateway, every query of the dashboard goes through
 * each Prometheus's HTTP API and must return at least one series; requests by status class must
 * equal the access log's; and the two ways must give the same metric names and labels.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { METRICS } from '../../src/otel/metric-names';
import { prometheusSeries } from '../../src/otel/prometheus-names';
import { loggedByStatusClass, readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { startAgent, type AgentProcess } from '../fixture/agent-process';
import { startCollectorExporter } from '../fixture/collector-prometheus';
import { dashboardQueries, instantQuery } from '../fixture/dashboard';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { startOtlpReceiver, type OtlpReceiver } from '../fixture/otlp-receiver';
import { startPrometheus, type Prometheus } from '../fixture/prometheus';
import { runMixedTraffic, type TrafficSummary } from '../fixture/traffic';

const PROXY_PORT = 19204;
const ADMIN_PORT = 19205;
const UPSTREAM_PORT = 19206;
const RECEIVER_PORT = 19207;
const AGENT_METRICS_PORT = 19208;
const COLLECTOR_METRICS_PORT = 19209;
const PROMETHEUS_SCRAPE_PORT = 19210;
const PROMETHEUS_OTLP_PORT = 19211;

const WINDOWS = { rateInterval: '1m', range: '10m' };
const BY_STATUS_CLASS =
  'sum by (status_class) (label_replace(http_server_request_duration_seconds_count, "status_class", "${1}xx", "http_response_status_code", "([0-9]).*"))';
/** Labels Prometheus adds or renames per scrape target: not the agent's. */
const TARGET_LABELS = new Set(['job', 'instance', 'exported_job', 'exported_instance']);
const KNOWN_SERIES = new Set(METRICS.flatMap((m) => prometheusSeries(m)));

/** Slow requests, so that some are in flight when a collection reads http.server.active_requests. */
function slowRequests(n: number, ms: number): Promise<void[]> {
  return Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<void>((resolve) => {
          http
            .get(`http://127.0.0.1:${PROXY_PORT}/api/held${i}/slow?ms=${ms}`, (res) => {
              res.resume();
              res.on('end', () => resolve());
            })
            .on('error', () => resolve());
        }),
    ),
  );
}

describe('the dashboard through a real Prometheus: scraping the agent, and OTLP as the collector writes it', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let receiver: OtlpReceiver;
  let collector: { stop(): Promise<void> };
  let agent: AgentProcess;
  let scrape: Prometheus;
  let viaOtlp: Prometheus;
  let traffic: TrafficSummary;
  let access: AccessLogEntry[];
  const ways = () =>
    [
      ['scrape', scrape],
      ['OTLP', viaOtlp],
    ] as const;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 2,
    });
    receiver = await startOtlpReceiver({ port: RECEIVER_PORT });
    collector = await startCollectorExporter(receiver, COLLECTOR_METRICS_PORT);
    agent = startAgent({
      KONG_PREFIX: gateway.prefix,
      KONG_ADMIN_URL: `http://127.0.0.1:${ADMIN_PORT}`,
      LOG_REQUESTS: 'false',
      OTEL_SERVICE_NAME: 'kong',
      K8S_POD_NAME: 'kong-7d9f-abcde',
      K8S_NAMESPACE_NAME: 'gateway',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${RECEIVER_PORT}`,
      OTEL_METRICS_EXPORTER: 'otlp,prometheus',
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(AGENT_METRICS_PORT),
    });
    await agent.waitForMonitored(gateway.workerPids());
    await agent.waitFor((l) => l.msg === 'Kong routes loaded from the Admin API', 10_000, 'routes loaded');
    scrape = await startPrometheus({
      port: PROMETHEUS_SCRAPE_PORT,
      targets: [{ job: 'kong-watcher', address: `127.0.0.1:${AGENT_METRICS_PORT}` }],
    });
    viaOtlp = await startPrometheus({
      port: PROMETHEUS_OTLP_PORT,
      targets: [{ job: 'otel-collector', address: `127.0.0.1:${COLLECTOR_METRICS_PORT}` }],
    });
    await scrape.waitForTargets(30_000);
    await viaOtlp.waitForTargets(30_000);
    const held = slowRequests(4, 4000);
    traffic = await runMixedTraffic({ port: PROXY_PORT, concurrency: 48, requests: 600, burst: 48, seed: 47 });
    await held;
    // nginx logs a request when it finalizes it, which for a client that left can be later:
    // the log is read again until the agent's count and it agree.
    for (const [way, prometheus] of ways()) {
      await prometheus
        .waitFor(
          'sum(http_server_request_duration_seconds_count)',
          (s) => {
            access = readAccessLog(gateway.accessLogPath);
            return s.length === 1 && Number(s[0].value[1]) === access.length;
          },
          45_000,
        )
        .catch((err: Error) => {
          throw new Error(`${way}: ${err.message}; the access log has ${access.length} lines`);
        });
    }
    await new Promise((r) => setTimeout(r, 2500));
  });

  after(async () => {
    agent?.saveOutput('prometheus-scrape');
    await scrape?.stop();
    await viaOtlp?.stop();
    await agent?.stop();
    await collector?.stop();
    await receiver?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('every query of the dashboard returns data, both ways', async () => {
    assert.equal(traffic.errors.length, 0, `traffic errors: ${traffic.errors.slice(0, 5).join('; ')}`);
    const queries = dashboardQueries();
    assert.ok(queries.length >= 20, `${queries.length} queries`);
    const empty: string[] = [];
    for (const [way, prometheus] of ways()) {
      for (const q of queries) {
        const { expr, label } = instantQuery(q.expr, WINDOWS);
        const result = await prometheus.query(expr);
        const series = label === undefined ? result : result.filter((s) => (s.metric[label] ?? '') !== '');
        if (series.length === 0) empty.push(`${way}: ${q.where}: ${expr}`);
      }
    }
    assert.deepEqual(empty, [], 'queries without a series');
  });

  it('requests by status class equal the access log, both ways', async () => {
    const fromLog = loggedByStatusClass(access);
    assert.ok(Object.keys(fromLog).length >= 4, `several classes: ${JSON.stringify(fromLog)}`);
    for (const [way, prometheus] of ways()) {
      const byClass: Record<string, number> = {};
      for (const s of await prometheus.query(BY_STATUS_CLASS)) byClass[s.metric.status_class] = Number(s.value[1]);
      assert.deepEqual(byClass, fromLog, `${way}: http_server_request_duration_seconds_count by status class`);
    }
  });

  it('the same names and labels either way, the ones the README lists', async () => {
    const names = async (p: Prometheus, job: string) =>
      new Set(
        (await p.query(`group by (__name__) ({job="${job}"})`))
          .map((s) => s.metric.__name__)
          .filter((n) => n !== 'target_info' && n !== 'up' && !n.startsWith('scrape_')),
      );
    const scraped = await names(scrape, 'kong-watcher');
    const collected = await names(viaOtlp, 'otel-collector');
    assert.deepEqual([...scraped].sort(), [...collected].sort(), 'the same series names');
    const unknown = [...scraped].filter((n) => !KNOWN_SERIES.has(n));
    assert.deepEqual(unknown, [], 'every name is in src/otel/metric-names.ts, named as prometheus-names.ts says');
    assert.ok(scraped.has('http_server_request_duration_seconds_bucket'), 'histograms with their unit');
    assert.ok(scraped.has('kong_watcher_events_received_total'), 'counters end in _total');
    assert.ok(scraped.has('kong_watcher_ringbuf_fill_ratio'), 'a unit-1 gauge is a ratio');

    const labels = async (p: Prometheus) => {
      const [s] = await p.query('http_server_request_duration_seconds_count{http_route="/api"}');
      assert.ok(s, 'a series of the /api route');
      return Object.keys(s.metric)
        .filter((k) => !TARGET_LABELS.has(k))
        .sort();
    };
    const scrapedLabels = await labels(scrape);
    assert.deepEqual(scrapedLabels, await labels(viaOtlp), 'the same labels');
    for (const l of ['service_name', 'k8s_pod_name', 'k8s_namespace_name', 'http_route', 'kong_route_name']) {
      assert.ok(scrapedLabels.includes(l), `label ${l}`);
    }
  });
});
