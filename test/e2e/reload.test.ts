/**
 * Reloads and restarts lose nothing: under steady load, four reloads (new workers each time) and
 * a crash (kill -9 of the master and its workers, then a new master) — every request in the
 * access log is reported exactly once. New workers are followed by the kernel from their first
 * instruction, and a new master reaches the agent as an exec event, not at the next procfs scan.
 * A request in flight on a killed worker (nginx never logs it) is reported at once, marked so.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readAccessLog } from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { sendRaw } from '../fixture/raw-client';
import { startSteadyLoad, type SteadyLoadSummary } from '../fixture/steady-load';

const PROXY_PORT = 19150;
const ADMIN_PORT = 19151;
const UPSTREAM_PORT = 19152;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('reloads and restarts under steady load', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let agent: AgentProcess;
  let load: SteadyLoadSummary;
  let inFlightAtCrash: AgentLine | undefined;
  let crashReportMs = Infinity;

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
    const steady = startSteadyLoad({ port: PROXY_PORT, connections: 6, pauseMs: 4 });
    for (let i = 0; i < 4; i++) {
      await sleep(1500);
      await gateway.reload();
    }
    await sleep(1500);
    // A slow request in flight when the workers die: nginx never logs it.
    void sendRaw(PROXY_PORT, `GET /api/crash-victim/slow?ms=8000 HTTP/1.1\r\nHost: kong.test\r\n\r\n`, {
      lingerMs: 10_000,
    });
    await sleep(300);
    const crashedAt = Date.now();
    await gateway.crash();
    inFlightAtCrash = await agent
      .waitFor((l) => l.msg === 'HTTP Request' && l.path === '/api/crash-victim/slow', 5_000, 'the in-flight request')
      .catch(() => undefined);
    crashReportMs = Date.now() - crashedAt;
    await sleep(2000);
    load = await steady.stop();
    await agent.waitQuiet(1500, 30_000);
    await agent.stop();
    agent.saveOutput('reload');
  });

  after(async () => {
    await agent?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('kept serving through it all', () => {
    assert.ok(load.answered > 2000, `${load.answered} answered of ${load.sent} sent (${load.failed} failed)`);
  });

  it('reports every logged request exactly once', () => {
    const logged = readAccessLog(gateway.accessLogPath).filter((e) => e.target.startsWith('/api/L'));
    const reported = new Map<string, number>();
    for (const l of agent.requests('server')) {
      const path = String(l.path);
      if (path.startsWith('/api/L')) reported.set(path, (reported.get(path) ?? 0) + 1);
    }
    const missing = logged.filter((e) => !reported.has(e.target)).map((e) => e.target);
    const twice = [...reported].filter(([, n]) => n > 1).map(([p]) => p);
    assert.ok(logged.length > 2000, `${logged.length} requests logged`);
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${logged.length} logged requests not reported`);
    assert.deepEqual(twice.slice(0, 10), [], `${twice.length} requests reported more than once`);
    const extra = [...reported.keys()].filter((p) => !logged.some((e) => e.target === p));
    const extraLines = agent.requests('server').filter((l) => extra.includes(String(l.path)));
    for (const l of extraLines) {
      assert.equal(l.error_code, 'process_exited', `${l.path} is not in the access log: only a killed worker's may be`);
    }
  });

  it('reports a request in flight on a killed worker at once, marked process_exited', () => {
    assert.ok(inFlightAtCrash, 'the in-flight request was reported');
    assert.equal(inFlightAtCrash.error_code, 'process_exited', 'its error code');
    assert.ok(crashReportMs < 3000, `reported ${crashReportMs} ms after the kill`);
  });

  it('lost no events', () => {
    const stats = agent.lines.filter((l) => l.msg === 'stats');
    assert.equal(stats[stats.length - 1]?.lost_events, 0, 'lost events');
  });
});
