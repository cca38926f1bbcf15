/**
 * Proves the test gateway before anything else relies on it: Kong's process shape, headers and
 * error bodies, the Admin API, mixed traffic matching the access-log oracle, reload and restart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { fixtureId, startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { runMixedTraffic } from '../fixture/traffic';

const UPSTREAM_PORT = 19010;
const PROXY_PORT = 19011;
const ADMIN_PORT = 19012;

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(port: number, path: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitForLog(path: string, count: number, timeoutMs = 5000): Promise<AccessLogEntry[]> {
  const deadline = Date.now() + timeoutMs;
  let entries = readAccessLog(path);
  while (entries.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    entries = readAccessLog(path);
  }
  return entries;
}

describe('gateway fixture', () => {
  let upstream: Upstream;
  let gw: Gateway;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gw = await startGateway({ proxyPort: PROXY_PORT, adminPort: ADMIN_PORT, upstreamPort: UPSTREAM_PORT, workers: 2 });
  });

  after(async () => {
    await gw?.stop();
    await upstream?.stop();
  });

  it('runs like Kong: a master with a .../kong prefix and worker children', () => {
    const cmdline = fs.readFileSync(`/proc/${gw.masterPid()}/cmdline`, 'utf8').replace(/\0+$/, '');
    assert.equal(cmdline, `nginx: master process /usr/sbin/nginx -p ${gw.prefix} -c nginx.conf`, 'master title');
    assert.match(gw.prefix, /\/kong$/, 'prefix ends in kong');
    assert.equal(gw.workerPids().length, 2, 'two workers');
    for (const pid of gw.workerPids()) {
      const title = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '');
      assert.equal(title, 'nginx: worker process', `worker ${pid} title`);
    }
  });

  it('adds Kong headers to proxied and Kong-generated responses', async () => {
    const ok = await get(PROXY_PORT, '/api/h1/status/200');
    assert.equal(ok.status, 200, 'proxied status');
    assert.equal(ok.headers['via'], 'kong/3.4.2', 'Via on proxied response');
    assert.match(String(ok.headers['x-kong-upstream-latency']), /^\d+$/, 'upstream latency');
    assert.match(String(ok.headers['x-kong-proxy-latency']), /^\d+$/, 'proxy latency');
    assert.equal(ok.headers['server'], undefined, 'no Server on proxied response');

    const strip = await get(PROXY_PORT, '/svc/echo?x=1', 'POST');
    assert.equal(JSON.parse(strip.body).path, '/echo?x=1', 'strip_path removes /svc');

    const missing = await get(PROXY_PORT, '/nowhere');
    assert.equal(missing.status, 404, 'no route status');
    assert.equal(missing.headers['server'], 'kong/3.4.2', 'Server on Kong response');
    assert.match(String(missing.headers['x-kong-response-latency']), /^\d+$/, 'response latency');
    assert.deepEqual(JSON.parse(missing.body), { message: 'no Route matched with those values' }, '404 body');

    const dead = await get(PROXY_PORT, '/dead/x');
    assert.equal(dead.status, 502, 'dead upstream');
    assert.equal(dead.headers['server'], 'kong/3.4.2', 'Server on 502');
    assert.match(dead.body, /invalid response was received from the upstream/, '502 body');

    assert.equal((await get(PROXY_PORT, '/fail')).status, 500, 'upstream 500 passes through');
    const moved = await get(PROXY_PORT, '/secure/a');
    assert.equal(moved.status, 301, 'https-only route redirects');
    assert.equal(moved.headers['location'], `https://127.0.0.1/secure/a`, 'redirect location');
  });

  it('serves an Admin API in Kong shape', async () => {
    const routes = JSON.parse((await get(ADMIN_PORT, '/routes')).body);
    assert.equal(routes.next, null, 'single page');
    const svc = routes.data.find((r: { name: string }) => r.name === 'svc');
    assert.deepEqual(svc.paths, ['/svc'], 'route paths');
    assert.equal(svc.strip_path, true, 'strip_path');
    assert.equal(svc.service.id, fixtureId('service', 'upstream-service'), 'route -> service id');
    const services = JSON.parse((await get(ADMIN_PORT, '/services')).body);
    assert.ok(
      services.data.some((s: { id: string; port: number }) => s.id === svc.service.id && s.port === UPSTREAM_PORT),
      'service listed with its port',
    );
    const status = JSON.parse((await get(ADMIN_PORT, '/status')).body);
    assert.ok(status.server.connections_active >= 1, 'status has live counters');
  });

  it('logs every request of mixed traffic exactly once in the oracle', async () => {
    const before = readAccessLog(gw.accessLogPath).length;
    const summary = await runMixedTraffic({ port: PROXY_PORT, concurrency: 16, requests: 800, seed: 7, burst: 200 });
    assert.deepEqual(summary.errors, [], 'traffic ran cleanly');
    for (const r of summary.requests) {
      if (r.aborted || r.kind === 'garbage') continue;
      assert.equal(r.observedStatus, r.expectedStatus, `response status of #${r.id} ${r.method} ${r.target}`);
      if (r.expectedResponseBodyBytes !== undefined) {
        assert.equal(r.observedBodyBytes, r.expectedResponseBodyBytes, `body size of #${r.id} ${r.target}`);
      }
    }
    const entries = (await waitForLog(gw.accessLogPath, before + summary.requests.length)).slice(before);
    assert.equal(entries.length, summary.requests.length, 'one log line per request');
    const byTarget = new Map<string, AccessLogEntry[]>();
    for (const e of entries) byTarget.set(e.target, [...(byTarget.get(e.target) ?? []), e]);
    for (const r of summary.requests) {
      if (r.kind === 'garbage') continue;
      const found = byTarget.get(r.target) ?? [];
      assert.equal(found.length, 1, `log line for #${r.id} ${r.target}`);
      assert.equal(found[0].method, r.method, `logged method of #${r.id}`);
      assert.equal(found[0].status, r.expectedStatus, `logged status of #${r.id} ${r.kind}`);
      if (r.requestBodyBytes > 0) assert.ok(found[0].requestLength > r.requestBodyBytes, `request length #${r.id}`);
    }
    const garbage = summary.requests.filter((r) => r.kind === 'garbage').length;
    const logged400 = entries.filter((e) => e.method === '' && e.status === 400).length;
    assert.ok(garbage > 0, 'the mix includes garbage');
    assert.equal(logged400, garbage, 'every garbage connection logged as 400');
    for (const status of [200, 201, 301, 404, 499, 500, 502]) {
      assert.ok((summary.countByExpectedStatus[status] ?? 0) > 0, `the mix includes status ${status}`);
    }
    const pipelinedConn = entries.filter((e) => e.connectionRequests >= 3).length;
    assert.ok(pipelinedConn > 0, 'some connections carried several requests');
  });

  it('reloads: all workers replaced, traffic keeps flowing', async () => {
    const master = gw.masterPid();
    const old = gw.workerPids();
    await gw.reload();
    const fresh = gw.workerPids();
    assert.equal(gw.masterPid(), master, 'same master');
    assert.equal(fresh.length, 2, 'two new workers');
    assert.ok(
      fresh.every((p) => !old.includes(p)),
      `workers replaced: ${old} -> ${fresh}`,
    );
    assert.equal((await get(PROXY_PORT, '/api/after-reload/status/200')).status, 200, 'serves after reload');
  });

  it('restarts: new master, same prefix, traffic keeps flowing', async () => {
    const master = gw.masterPid();
    await gw.restart();
    assert.notEqual(gw.masterPid(), master, 'new master');
    assert.equal(gw.workerPids().length, 2, 'workers up');
    assert.equal((await get(PROXY_PORT, '/api/after-restart/status/200')).status, 200, 'serves after restart');
    const before = readAccessLog(gw.accessLogPath).length;
    assert.equal((await get(PROXY_PORT, '/api/after-restart/2/status/200')).status, 200, 'serves again');
    const entries = await waitForLog(gw.accessLogPath, before + 1);
    assert.equal(entries.at(-1)?.target, '/api/after-restart/2/status/200', 'log continues after restart');
  });
});
