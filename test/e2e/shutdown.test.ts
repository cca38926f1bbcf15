/**
 * Shutdown with the collector down: SIGTERM ends the agent within its 5 s deadline, and the last
 * line it prints tells the truth about what was lost — every span that could not be sent is in
 * spans_dropped, and every request was still counted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readAccessLog } from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { sendRaw } from '../fixture/raw-client';

const PROXY_PORT = 19220;
const UPSTREAM_PORT = 19222;
/** Nothing listens here: the collector is down for the whole run. */
const DEAD_COLLECTOR_PORT = 19229;
const REQUESTS = 300;

describe('shutdown with the collector down', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let agent: AgentProcess;
  let stopMs = 0;
  let exitCode: number | null = null;
  let last: AgentLine | undefined;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({ proxyPort: PROXY_PORT, upstreamPort: UPSTREAM_PORT, workers: 1 });
    agent = startAgent({
      KONG_PREFIX: gateway.prefix,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${DEAD_COLLECTOR_PORT}`,
      OTEL_TRACES_SAMPLER: 'always_on',
      // Longer than the schedule: the spans are still queued or in a retry when SIGTERM comes.
      OTEL_BSP_SCHEDULE_DELAY: '60000',
      LOG_REQUESTS: 'false',
    });
    const worker = gateway.workerPids()[0];
    await agent.waitForMonitored([worker]);
    // 30 connections of 10 pipelined requests, the last one closing each (the pending bound is 128)
    for (let c = 0; c < REQUESTS / 10; c++) {
      const heads = Array.from({ length: 10 }, (_, i) => {
        const close = i === 9 ? 'Connection: close\r\n' : '';
        return `GET /api/down${c * 10 + i}/status/200 HTTP/1.1\r\nHost: k\r\n${close}\r\n`;
      });
      await sendRaw(PROXY_PORT, heads.join(''), { lingerMs: 10_000 });
    }
    await agent.waitFor((l) => l.msg === 'stats' && Number(l.requests) >= REQUESTS, 20_000, 'the requests counted');
    const t0 = Date.now();
    exitCode = await agent.stop(20_000);
    stopMs = Date.now() - t0;
    const stats = agent.lines.filter((l) => l.msg === 'stats');
    last = stats[stats.length - 1];
  });

  after(async () => {
    await agent?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('exits 0 within the 5 s deadline', () => {
    assert.equal(exitCode, 0, 'exit code');
    assert.ok(stopMs < 5500, `SIGTERM to exit took ${stopMs} ms`);
  });

  it('prints its last stats line after the flush, with every unsent span counted as dropped', () => {
    assert.ok(last, 'a last stats line');
    const logged = readAccessLog(gateway.accessLogPath).length;
    assert.equal(logged, REQUESTS, 'nginx logged every request');
    assert.equal(last.requests, REQUESTS, 'every request counted');
    assert.equal(last.spans_exported, 0, 'nothing could be exported');
    assert.equal(last.spans_dropped, 2 * REQUESTS, 'a SERVER and a CLIENT span per request, all counted as lost');
    const after = agent.lines.slice(agent.lines.indexOf(last!) + 1);
    assert.deepEqual(
      after.filter((l) => l.msg === 'stats'),
      [],
      'nothing after it could change its counts',
    );
  });
});
