/**
 * A regression from the field: on one keep-alive client connection, right after 1 MiB bodies in
 * both directions, a 40 kB chunked response that the upstream wrote in 4 flushed pieces came out
 * as a protocol error with a 226-byte size, and the next three requests on that connection were
 * never reported. Every request on the connection must be reported as nginx logged it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { pathOf, readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';

const PROXY_PORT = 19240;
const ADMIN_PORT = 19241;
const UPSTREAM_PORT = 19242;
const MIB = 1 << 20;

/** One request on the shared keep-alive agent; resolves with the status once the body is read. */
function request(agent: http.Agent, method: string, path: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ port: PROXY_PORT, host: '127.0.0.1', method, path, agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a chunked response in flushed pieces after 1 MiB bodies, on one keep-alive connection', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let agent: AgentProcess;
  let logged: AccessLogEntry[];
  let reported: AgentLine[];
  const paths = [
    '/api/c1/echo',
    `/api/c2/chunked?bytes=${MIB}`,
    '/api/c3/chunked?bytes=40000&pieces=4',
    '/api/c4/status/200',
    '/api/c5/status/201',
    '/api/c6/status/404',
  ];

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 1,
    });
    agent = startAgent({ KONG_PREFIX: gateway.prefix });
    await agent.waitForMonitored(gateway.workerPids());
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let round = 0; round < 5; round++) {
      for (const [i, path] of paths.entries()) {
        const p = path.replace(/\/c(\d)\//, `/c$1-${round}/`);
        await request(keepAlive, i === 0 ? 'POST' : 'GET', p, i === 0 ? Buffer.alloc(MIB, 'u') : undefined);
      }
    }
    keepAlive.destroy();
    await agent.waitQuiet(1000, 20_000);
    logged = readAccessLog(gateway.accessLogPath);
    reported = agent.requests('server');
  });

  after(async () => {
    agent?.saveOutput('chunked-pieces');
    await agent?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('kept each round on one client connection', () => {
    assert.equal(logged.length, paths.length * 5, 'every request logged');
    assert.equal(new Set(logged.map((e) => e.connection)).size, 1, 'one connection for all of them');
  });

  it('reports every request once, with the status and response size nginx logged', () => {
    assert.equal(reported.length, logged.length, 'one request line per access-log line');
    const byPath = new Map(reported.map((l) => [l.path as string, l]));
    for (const e of logged) {
      const line = byPath.get(pathOf(e.target));
      assert.ok(line, `${e.target} reported`);
      assert.equal(line.status_code, e.status, `${e.target}: status`);
      assert.equal(line.error_code, '', `${e.target}: no error`);
      assert.equal(line.response_size, e.bytesSent, `${e.target}: response size`);
    }
  });
});
