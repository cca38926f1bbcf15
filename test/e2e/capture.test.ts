/**
 * The capture core on the real kernel, against the Kong-shaped gateway: mixed traffic in, and the
 * agent's request lines must match nginx's own access log one to one (count, method, path,
 * status, duration within 2 ms), with upstream attempts reported as client exchanges.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertAbortedReported,
  assertTracesContinued,
  pathOf,
  readAccessLog,
  type AccessLogEntry,
} from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { runMixedTraffic, type TrafficSummary } from '../fixture/traffic';

const PROXY_PORT = 19110;
const ADMIN_PORT = 19111;
const UPSTREAM_PORT = 19112;

describe('capture: agent request lines vs the access log', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let agent: AgentProcess;
  let traffic: TrafficSummary;
  let access: AccessLogEntry[];
  let exitCode: number | null;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 2,
    });
    agent = startAgent({ KONG_PREFIX: gateway.prefix });
    await agent.waitForMonitored(gateway.workerPids());
    traffic = await runMixedTraffic({ port: PROXY_PORT, concurrency: 48, requests: 1500, burst: 300, seed: 7 });
    await agent.waitQuiet(1500, 30_000);
    exitCode = await agent.stop();
    access = readAccessLog(gateway.accessLogPath);
    agent.saveOutput('capture');
  });

  after(async () => {
    await agent?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('ran cleanly', () => {
    assert.equal(traffic.errors.length, 0, `traffic errors: ${traffic.errors.slice(0, 5).join('; ')}`);
    assert.equal(exitCode, 0, 'the agent exits 0 on SIGTERM');
    const errors = agent.lines.filter((l) => l.level === 'error');
    assert.deepEqual(errors, [], 'no error lines from the agent');
    assert.ok(access.length >= 1400, `access log has ${access.length} lines`);
  });

  it('reports every request nginx logged exactly once, with method, path and status', () => {
    // Garbage connections get a 400 from nginx, which logs them: the agent reports them too,
    // with no path and the method as _OTHER. They are counted; every other line is matched.
    const garbageLogged = access.filter((e) => e.method === '');
    assert.equal(garbageLogged.length, traffic.requests.filter((r) => r.kind === 'garbage').length, 'garbage lines');
    const garbageReported = agent.requests('server').filter((l) => l.path === '');
    assert.equal(garbageReported.length, garbageLogged.length, 'garbage answered by nginx, reported');
    for (const l of garbageReported) assert.equal(l.status_code, 400, 'garbage: nginx answered 400');

    const expected = access.filter((e) => e.method !== '');
    const seen = new Map<string, AgentLine>();
    for (const line of agent.requests('server')) {
      if (line.path === '') continue;
      const key = `${line.method} ${line.path}`;
      assert.ok(!seen.has(key), `reported twice: ${key}`);
      seen.set(key, line);
    }
    const missing: string[] = [];
    const wrong: string[] = [];
    for (const e of expected) {
      const key = `${e.method} ${pathOf(e.target)}`;
      const line = seen.get(key);
      if (!line) {
        missing.push(`${key} ${e.status}`);
        continue;
      }
      seen.delete(key);
      if (line.status_code !== e.status) wrong.push(`${key}: agent ${line.status_code}, nginx ${e.status}`);
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} requests in the access log were not reported`);
    assert.deepEqual([...seen.keys()].slice(0, 10), [], `${seen.size} reported requests are not in the access log`);
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} status codes differ`);
    assert.equal(agent.requests('server').length, access.length, 'same count as the access log');
  });

  // nginx's clock is its event loop's cached time: it starts a request at the time cached when
  // the loop woke (a few ms early under load) and a pipelined one when the worker gets to it. So
  // a few requests per thousand legitimately differ; the same request never differs by much.
  it('measures durations within 2 ms of $request_time (99%), and never far off', () => {
    const byKey = new Map(agent.requests('server').map((l) => [`${l.method} ${l.path}`, l]));
    const off: string[] = [];
    const far: string[] = [];
    let compared = 0;
    for (const e of access) {
      const line = byKey.get(`${e.method} ${pathOf(e.target)}`);
      if (!line) continue;
      compared++;
      const agentMs = (line.response_time_ns as number) / 1e6;
      const nginxMs = e.requestTime * 1000;
      const text = `${e.method} ${e.target}: agent ${agentMs.toFixed(3)} ms, nginx ${nginxMs} ms`;
      if (Math.abs(agentMs - nginxMs) > 2) off.push(text);
      if (Math.abs(agentMs - nginxMs) > 100) far.push(text);
    }
    assert.ok(compared >= 1400, `${compared} durations compared`);
    assert.ok(
      off.length <= compared * 0.01,
      `${off.length} of ${compared} durations differ by more than 2 ms: ${off.slice(0, 10).join('; ')}`,
    );
    assert.deepEqual(far, [], 'durations off by more than 100 ms');
  });

  it('marks aborted clients with an error code instead of losing them', () => {
    assertAbortedReported(traffic.requests, agent.requests('server'), access);
  });

  it('reports upstream attempts as client exchanges, parented to their server request', () => {
    const clients = agent.requests('client');
    const proxied = access.filter((e) => /^\/(api|echo|svc|fail)\//.test(e.target) && e.status !== 499);
    assert.ok(
      clients.length >= proxied.length * 0.99,
      `${clients.length} client exchanges for ${proxied.length} proxied requests`,
    );
    const servers = new Map(agent.requests('server').map((l) => [l.span_id as string, l]));
    // Routes rewrite the path (strip_path, service paths) but keep the request's /r<id> segment.
    const requestId = (path: unknown) => /\/r\d+(?=\/|$)/.exec(String(path))?.[0];
    let parented = 0;
    for (const c of clients) {
      const parent = servers.get(c.parent_span_id as string);
      if (parent && c.trace_id === parent.trace_id && requestId(parent.path) === requestId(c.path)) parented++;
    }
    assert.ok(
      parented >= clients.length * 0.99,
      `${parented} of ${clients.length} client exchanges parented correctly`,
    );
  });

  it('continues incoming W3C and B3 traces', () => {
    const checked = assertTracesContinued(traffic.requests, agent.requests('server'));
    assert.ok(checked > 10, `${checked} traced requests checked`);
  });

  it('logs stats lines with the request counts', () => {
    const stats = agent.lines.filter((l) => l.msg === 'stats');
    assert.ok(stats.length > 0, 'stats lines');
    const last = stats[stats.length - 1];
    assert.equal(last.lost_events, 0, 'no events lost');
    assert.equal(last.requests, agent.requests('server').length, 'stats requests = request lines');
  });
});
