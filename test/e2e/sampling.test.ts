/**
 * Sampling after the response, on real traffic through the Kong-shaped gateway:
 * OTEL_TRACES_SAMPLER=parentbased_traceidratio at 0.25, SAMPLE_KEEP_ERRORS on (its default) and
 * SAMPLE_KEEP_SLOWER_THAN=30ms. The agent's own request lines (every request, with its trace id,
 * status, error code and duration) and the headers each request was sent with are the oracle:
 * for every request the test works out which rule must keep it, or that none does, and compares
 * with the spans an OTLP receiver on loopback got, exactly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loggedByStatusClass, readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { metricByStatusClass, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../fixture/otlp-receiver';
import { runMixedTraffic, type SentRequest, type TrafficSummary } from '../fixture/traffic';

const PROXY_PORT = 19212;
const ADMIN_PORT = 19213;
const UPSTREAM_PORT = 19214;
const RECEIVER_PORT = 19215;
const RATIO = 0.25;
/** (1 - 0.25) * 2^56: kept when the trace id's last 56 bits reach it; as hex digits 18..23 */
const THRESHOLD_HI = 0xc00000;
const SLOW_NS = 30e6;
const SERVER = 2;
const CLIENT = 3;

type Rule = 'parent' | 'error' | 'slow' | 'sampler' | 'none';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The caller's decision as the request's headers stated it. */
function callerDecision(sent: SentRequest | undefined): 'sampled' | 'unsampled' | 'none' {
  if (sent?.traceparent !== undefined) return sent.traceparent.endsWith('-01') ? 'sampled' : 'unsampled';
  if (sent?.b3TraceId !== undefined || sent?.b3 !== undefined) return 'sampled'; // the traffic states "1"
  return 'none';
}

/** Which rule must keep this request, from what the agent logged about it and how it was sent. */
function expectedRule(line: AgentLine, sent: SentRequest | undefined): Rule {
  const caller = callerDecision(sent);
  if (caller === 'unsampled') return 'none';
  if (caller === 'sampled') return 'parent';
  if (line.error_code !== '' || Number(line.status_code) >= 500) return 'error';
  if (Number(line.response_time_ns) >= SLOW_NS) return 'slow';
  return parseInt(String(line.trace_id).slice(18, 24), 16) >= THRESHOLD_HI ? 'sampler' : 'none';
}

describe('sampling decided after the response: errors, slow requests, a ratio, callers', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let receiver: OtlpReceiver;
  let agent: AgentProcess;
  let traffic: TrafficSummary;
  let access: AccessLogEntry[];
  let servers: AgentLine[];
  let clients: AgentLine[];
  let spans: ReceivedSpan[];
  const expected = new Map<string, Rule>();
  let unsampledCallers = 0;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 2,
    });
    receiver = await startOtlpReceiver({ port: RECEIVER_PORT });
    agent = startAgent({
      KONG_PREFIX: gateway.prefix,
      LOG_REQUESTS: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${RECEIVER_PORT}`,
      OTEL_METRIC_EXPORT_INTERVAL: '500',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: String(RATIO),
      SAMPLE_KEEP_SLOWER_THAN: '30ms',
    });
    await agent.waitForMonitored(gateway.workerPids());
    traffic = await runMixedTraffic({ port: PROXY_PORT, concurrency: 48, requests: 900, burst: 48, seed: 53 });
    access = readAccessLog(gateway.accessLogPath);
    const deadline = Date.now() + 30_000;
    while (agent.requests('server').length < access.length && Date.now() < deadline) await sleep(200);
    await agent.waitQuiet(1000, 30_000);
    servers = agent.requests('server');
    clients = agent.requests('client');
    const sentById = new Map(traffic.requests.map((r) => [r.id, r]));
    for (const line of servers) {
      const id = /\/r(\d+)(?=\/|$)/.exec(String(line.path))?.[1];
      const sent = id === undefined ? undefined : sentById.get(Number(id));
      expected.set(String(line.span_id), expectedRule(line, sent));
      if (callerDecision(sent) === 'unsampled') unsampledCallers++;
    }
    const kept = [...expected.values()].filter((r) => r !== 'none').length;
    const until = Date.now() + 30_000;
    while (receiver.spans().filter((s) => s.kind === SERVER).length < kept && Date.now() < until) await sleep(250);
    await receiver.waitForMetric(
      'http.server.request.duration',
      (m) => m.points.reduce((n, p) => n + (p.count ?? 0), 0) >= access.length,
      20_000,
    );
    await sleep(1000);
    spans = receiver.spans();
  });

  after(async () => {
    agent?.saveOutput('sampling');
    await agent?.stop();
    await receiver?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('each SERVER span is kept by the rule the request calls for, and no other is kept', () => {
    assert.equal(traffic.errors.length, 0, `traffic errors: ${traffic.errors.slice(0, 5).join('; ')}`);
    assert.equal(servers.length, access.length, 'the agent logged every request');
    const got = new Map(spans.filter((s) => s.kind === SERVER).map((s) => [s.spanId, s]));
    const wrong: string[] = [];
    const tally: Record<Rule, number> = { parent: 0, error: 0, slow: 0, sampler: 0, none: 0 };
    for (const line of servers) {
      const rule = expected.get(String(line.span_id))!;
      tally[rule]++;
      const span = got.get(String(line.span_id));
      const what = `${String(line.method)} ${String(line.path)} ${String(line.status_code)} ${String(line.error_code)} ${Number(line.response_time_ns) / 1e6} ms ${String(line.trace_id)}`;
      if (rule === 'none') {
        if (span !== undefined) wrong.push(`${what}: kept (${String(span.attributes['kong_watcher.sampling.rule'])})`);
        continue;
      }
      if (span === undefined) {
        wrong.push(`${what}: not kept, expected ${rule}`);
        continue;
      }
      if (span.attributes['kong_watcher.sampling.rule'] !== rule) {
        wrong.push(`${what}: rule ${String(span.attributes['kong_watcher.sampling.rule'])}, expected ${rule}`);
      }
    }
    console.log(`# rules: ${JSON.stringify(tally)}`);
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} requests decided otherwise`);
    assert.equal(got.size, servers.length - tally.none, 'no other SERVER span');
    for (const rule of ['parent', 'error', 'slow', 'sampler', 'none'] as const) {
      assert.ok(tally[rule] >= 5, `the traffic exercises "${rule}": ${JSON.stringify(tally)}`);
    }
    // the ratio alone: about a quarter of the requests it decided (those no rule or caller did)
    const byRatio = tally.sampler / (tally.sampler + tally.none - unsampledCallers);
    assert.ok(byRatio > 0.1 && byRatio < 0.45, `the ratio kept ${(byRatio * 100).toFixed(0)}% of what it decided`);
  });

  it('the span says how likely it was to be kept: ratio attribute and th in tracestate', () => {
    for (const s of spans.filter((x) => x.kind === SERVER)) {
      const rule = s.attributes['kong_watcher.sampling.rule'];
      const where = `${String(s.attributes['url.path'])} (${String(rule)})`;
      if (rule === 'sampler') {
        assert.equal(s.attributes['kong_watcher.sampling.ratio'], RATIO, where);
        assert.equal(s.traceState, 'ot=th:c', where);
      } else if (rule === 'error' || rule === 'slow') {
        assert.equal(s.attributes['kong_watcher.sampling.ratio'], 1, where);
        assert.equal(s.traceState, 'ot=th:0', where);
      } else {
        assert.equal(rule, 'parent', where);
        assert.equal(s.attributes['kong_watcher.sampling.ratio'], undefined, `${where}: the caller's to say`);
        assert.equal(s.traceState, '', `${where}: tracestate as received (none)`);
      }
    }
  });

  it('CLIENT spans follow their SERVER: traces stay whole', () => {
    const keptServers = new Set(
      servers.filter((l) => expected.get(String(l.span_id)) !== 'none').map((l) => String(l.span_id)),
    );
    // An attempt matched to no request (none are expected here) is decided alone, by the same rules.
    const keptAlone = (c: AgentLine) =>
      c.error_code !== '' ||
      Number(c.status_code) >= 400 ||
      Number(c.response_time_ns) >= SLOW_NS ||
      parseInt(String(c.trace_id).slice(18, 24), 16) >= THRESHOLD_HI;
    const want = new Set(
      clients
        .filter((c) => (c.parent_span_id === undefined ? keptAlone(c) : keptServers.has(String(c.parent_span_id))))
        .map((c) => String(c.span_id)),
    );
    const got = new Set(spans.filter((s) => s.kind === CLIENT).map((s) => s.spanId));
    const missing = [...want].filter((id) => !got.has(id));
    const extra = [...got].filter((id) => !want.has(id));
    assert.ok(want.size > 50, `${want.size} attempts of kept requests`);
    assert.deepEqual(missing, [], 'every attempt of a kept request has its span');
    assert.deepEqual(extra, [], 'no attempt of a dropped request has one');
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    for (const c of spans.filter((s) => s.kind === CLIENT)) {
      const parent = byId.get(c.parentSpanId);
      assert.equal(c.attributes['kong_watcher.sampling.rule'], parent?.attributes['kong_watcher.sampling.rule']);
    }
  });

  it('metrics count every request, sampled or not', () => {
    const metric = receiver.latestMetric('http.server.request.duration')!;
    assert.deepEqual(metricByStatusClass(metric), loggedByStatusClass(access));
  });
});
