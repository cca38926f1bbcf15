/**
 * HTTP/2 and gRPC on the real kernel, against the Kong-shaped gateway: its h2c listener (HTTP/2
 * with prior knowledge) proxies to the HTTP/1.1 upstream, and its gRPC route goes through
 * grpc_pass to an HTTP/2 upstream. Traffic: curl (one stream per connection), h2load with 10 streams per
 * connection, node:http2 with large and changing headers (the HPACK dynamic table fills and evicts),
 * a cancelled stream (RST_STREAM), and gRPC calls from @grpc/grpc-js. The agent's request lines
 * must match nginx's access log one to one (method, path, status, duration within 2 ms), traces
 * must be continued, and upstream attempts (HTTP/1.1 and HTTP/2) parented to their h2 stream.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { pathOf, readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { callEcho, grpcEchoClient, startGrpcUpstream, type GrpcUpstream } from '../fixture/grpc-upstream';
import { startOtlpReceiver, type OtlpReceiver } from '../fixture/otlp-receiver';

const run = promisify(execFile);

const PROXY_PORT = 19190;
const ADMIN_PORT = 19191;
const UPSTREAM_PORT = 19192;
const H2C_PORT = 19193;
const GRPC_PORT = 19194;
const RECEIVER_PORT = 19195;
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const BASE = `http://127.0.0.1:${H2C_PORT}`;

const H2LOAD_CONNECTIONS = 4;
const H2LOAD_REQUESTS = 150; // per connection, 10 streams at a time
const CURL_URLS = 30;
const NODE_REQUESTS = 60;
const GRPC_CALLS = 60;
const GRPC_FAILS = 20;

function traceparent(n: number, tag: number): string {
  const trace = `${tag.toString(16).padStart(8, '0')}${n.toString(16).padStart(24, '0')}`;
  return `00-${trace}-${(n + 1).toString(16).padStart(16, '0')}-01`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface SentTrace {
  path: string;
  traceparent: string;
}

/** node:http2 on one connection: concurrent streams, big and changing headers, one cancelled stream. */
async function nodeClient(sent: SentTrace[]): Promise<{ errors: string[]; cancelled: string }> {
  const session = http2.connect(BASE);
  const errors: string[] = [];
  session.on('error', (e) => errors.push(`session: ${e.message}`));
  const shared = 'k'.repeat(1200); // indexed once, referenced by every later block
  const request = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const p = `/api/h2/node/r${i}`;
      const tp = traceparent(i, 0xa1);
      sent.push({ path: p, traceparent: tp });
      const req = session.request({
        ':path': `${p}?n=${i}`,
        'user-agent': 'kw-e2e-node/1',
        traceparent: tp,
        'x-shared': shared,
        // a new 900-byte entry per request: the 4096-byte table evicts as it goes
        'x-changing': `${i}-${'v'.repeat(900)}`,
      });
      req.on('response', () => {});
      req.on('data', () => {});
      req.on('end', () => resolve());
      req.on('error', (e) => {
        errors.push(`${p}: ${e.message}`);
        resolve();
      });
      req.end();
    });
  for (let i = 0; i < NODE_REQUESTS; i += 6) {
    await Promise.all([0, 1, 2, 3, 4, 5].filter((k) => i + k < NODE_REQUESTS).map((k) => request(i + k)));
  }
  // a POST with a body, then a stream the client cancels before the answer (nginx logs 499)
  await new Promise<void>((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': '/echo/h2/node/post', 'content-type': 'text/plain' });
    req.on('data', () => {});
    req.on('end', () => resolve());
    req.on('error', (e) => {
      errors.push(`post: ${e.message}`);
      resolve();
    });
    req.end('x'.repeat(3000));
  });
  const cancelled = '/api/h2/node/cancelled/slow';
  await new Promise<void>((resolve) => {
    const req = session.request({ ':path': `${cancelled}?ms=3000` });
    req.on('error', () => {});
    req.on('close', () => resolve());
    setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), 150);
    req.end();
  });
  await new Promise<void>((resolve) => session.close(() => resolve()));
  return { errors, cancelled };
}

describe('HTTP/2 and gRPC: agent request lines vs the access log', () => {
  let upstream: Upstream;
  let grpcUpstream: GrpcUpstream;
  let receiver: OtlpReceiver;
  let gateway: Gateway;
  let agent: AgentProcess;
  let access: AccessLogEntry[];
  let exitCode: number | null;
  const errors: string[] = [];
  const sent: SentTrace[] = [];
  let cancelledPath = '';
  const grpcTraces = new Map<string, number>();
  let tmp = '';

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-h2-'));
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    grpcUpstream = await startGrpcUpstream({ port: GRPC_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      h2cPort: H2C_PORT,
      grpcUpstreamPort: GRPC_PORT,
      workers: 2,
    });
    receiver = await startOtlpReceiver({ port: RECEIVER_PORT });
    agent = startAgent({
      KONG_PREFIX: gateway.prefix,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${RECEIVER_PORT}`,
      OTEL_METRICS_EXPORTER: 'none',
    });
    await agent.waitForMonitored(gateway.workerPids());

    // h2load: each connection its own URIs, 10 streams in flight on it
    const h2load = Array.from({ length: H2LOAD_CONNECTIONS }, async (_, c) => {
      const file = path.join(tmp, `uris-${c}.txt`);
      const uris = Array.from({ length: H2LOAD_REQUESTS }, (_, i) => {
        const kind = i % 10 === 0 ? 'status/404' : i % 10 === 1 ? 'svc-status' : 'ok';
        if (kind === 'svc-status') return `${BASE}/svc/h2load/c${c}/r${i}`;
        return `${BASE}/api/h2load/c${c}/r${i}${kind === 'ok' ? '' : `/${kind}`}`;
      });
      fs.writeFileSync(file, uris.join('\n') + '\n');
      const { stdout } = await run('h2load', ['-n', String(H2LOAD_REQUESTS), '-c', '1', '-m', '10', '-i', file], {
        timeout: 60_000,
      });
      // h2load counts 4xx answers as failed: only transport failures are errors here
      const done = /(\d+) done, \d+ succeeded, \d+ failed, (\d+) errored, (\d+) timeout/.exec(stdout);
      if (!done || Number(done[1]) !== H2LOAD_REQUESTS || done[2] !== '0' || done[3] !== '0') {
        errors.push(`h2load ${c}: ${stdout.split('\n').find((l) => /requests:/.test(l))}`);
      }
    });
    // curl (nghttp2 inside): one short HTTP/2 connection per URL, 5 at a time
    const curl = (async () => {
      for (let i = 0; i < CURL_URLS; i += 5) {
        await Promise.all(
          [0, 1, 2, 3, 4].map((k) =>
            run(
              'curl',
              ['-sS', '--http2-prior-knowledge', '-o', '/dev/null', `${BASE}/echo/h2/curl/r${i + k}?q=${i + k}`],
              {
                timeout: 30_000,
              },
            ).catch((e: Error) => errors.push(`curl: ${e.message}`)),
          ),
        );
      }
    })();
    // gRPC: one channel, calls in flight together, a traceparent each
    const grpcCalls = (async () => {
      const client = grpcEchoClient(H2C_PORT);
      const calls: Promise<void>[] = [];
      for (let i = 0; i < GRPC_CALLS; i++) {
        const tp = traceparent(i, 0xb2);
        grpcTraces.set(tp.split('-')[1], 0);
        calls.push(
          callEcho(client, 'Say', { message: `m${i}` }, { traceparent: tp }).then((r) => {
            if (r.code !== 0) errors.push(`grpc Say ${i}: code ${r.code}`);
          }),
        );
        if (i % 10 === 9) await Promise.all(calls.splice(0));
      }
      for (let i = 0; i < GRPC_FAILS; i++) {
        const r = await callEcho(client, 'Fail', { message: 'no', code: 5 });
        if (r.code !== 5) errors.push(`grpc Fail ${i}: code ${r.code}`);
      }
      client.close();
    })();
    const node = nodeClient(sent).then((r) => {
      errors.push(...r.errors);
      cancelledPath = r.cancelled;
    });
    await Promise.all([...h2load, curl, grpcCalls, node]);
    // a few HTTP/1.1 requests on the proxy port alongside
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        run('curl', ['-sS', '-o', '/dev/null', `http://127.0.0.1:${PROXY_PORT}/api/h1/side/r${i}`]),
      ),
    );
    await sleep(500);
    await agent.waitQuiet(1500, 30_000);
    await receiver.waitForSpans(expectedRequests, 30_000);
    exitCode = await agent.stop();
    access = readAccessLog(gateway.accessLogPath);
    fs.copyFileSync(gateway.accessLogPath, path.join(path.dirname(agent.saveOutput('http2')), 'http2.access.log'));
  });

  after(async () => {
    await agent?.stop();
    await gateway?.stop();
    await grpcUpstream?.stop();
    await receiver?.stop();
    await upstream?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const expectedRequests =
    H2LOAD_CONNECTIONS * H2LOAD_REQUESTS + CURL_URLS + NODE_REQUESTS + 2 + GRPC_CALLS + GRPC_FAILS + 5;

  it('ran cleanly, and nginx served the traffic over HTTP/2', () => {
    assert.deepEqual(errors, [], 'traffic errors');
    assert.equal(exitCode, 0, 'the agent exits 0 on SIGTERM');
    assert.deepEqual(
      agent.lines.filter((l) => l.level === 'error'),
      [],
      'no error lines from the agent',
    );
    assert.equal(access.length, expectedRequests, 'access log lines');
    const h2 = access.filter((e) => e.protocol === 'HTTP/2.0').length;
    assert.equal(h2, expectedRequests - 5, 'HTTP/2.0 lines in the access log');
  });

  /** Access-log lines and request lines keyed alike: method and path, and the stream's position for repeated paths. */
  function keyed(): { logged: Map<string, AccessLogEntry>; reported: Map<string, AgentLine>; dup: string[] } {
    const counts = new Map<string, number>();
    for (const e of access)
      counts.set(`${e.method} ${pathOf(e.target)}`, (counts.get(`${e.method} ${pathOf(e.target)}`) ?? 0) + 1);
    const logged = new Map<string, AccessLogEntry>();
    for (const e of access) {
      const base = `${e.method} ${pathOf(e.target)}`;
      logged.set(counts.get(base)! > 1 ? `${base} #${e.connectionRequests}` : base, e);
    }
    const reported = new Map<string, AgentLine>();
    const dup: string[] = [];
    for (const l of agent.requests('server')) {
      const base = `${String(l.method)} ${String(l.path)}`;
      const key = counts.get(base)! > 1 ? `${base} #${String(l.conn_request)}` : base;
      if (reported.has(key)) dup.push(key);
      reported.set(key, l);
    }
    return { logged, reported, dup };
  }

  it('reports every request nginx logged exactly once, with method, path and status', () => {
    const { logged, reported, dup } = keyed();
    assert.deepEqual(dup.slice(0, 10), [], 'reported twice');
    const missing: string[] = [];
    const wrong: string[] = [];
    for (const [key, e] of logged) {
      const line = reported.get(key);
      if (!line) {
        missing.push(`${key} ${e.status}`);
        continue;
      }
      if (line.status_code !== e.status) wrong.push(`${key}: agent ${String(line.status_code)}, nginx ${e.status}`);
      reported.delete(key);
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} logged requests not reported`);
    assert.deepEqual([...reported.keys()].slice(0, 10), [], `${reported.size} reported requests not logged`);
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} statuses differ`);
    assert.equal(agent.requests('server').length, access.length, 'same count as the access log');
    const h2 = agent.requests('server').filter((l) => l.protocol === 'HTTP/2');
    assert.equal(h2.length, expectedRequests - 5, 'HTTP/2 request lines');
  });

  it('measures durations within 2 ms of $request_time (99%), never far off', () => {
    const { logged, reported } = keyed();
    const off: string[] = [];
    const far: string[] = [];
    let compared = 0;
    for (const [key, e] of logged) {
      const line = reported.get(key);
      if (!line) continue;
      compared++;
      const agentMs = (line.response_time_ns as number) / 1e6;
      const nginxMs = e.requestTime * 1000;
      const text = `${key}: agent ${agentMs.toFixed(3)} ms, nginx ${nginxMs} ms`;
      if (Math.abs(agentMs - nginxMs) > 2) off.push(text);
      if (Math.abs(agentMs - nginxMs) > 100) far.push(text);
    }
    assert.equal(compared, access.length, 'every line compared');
    assert.ok(
      off.length <= compared * 0.01,
      `${off.length} of ${compared} differ by more than 2 ms: ${off.slice(0, 10).join('; ')}`,
    );
    assert.deepEqual(far, [], 'durations off by more than 100 ms');
  });

  it('a stream the client cancelled (RST_STREAM) is reported as nginx logged it: 499, client_closed', () => {
    const logged = access.find((e) => pathOf(e.target) === cancelledPath);
    const line = agent.requests('server').find((l) => l.path === cancelledPath);
    assert.ok(logged && line, 'logged and reported');
    assert.equal(logged.status, 499);
    assert.equal(line.status_code, 499);
    assert.equal(line.error_code, 'client_closed');
  });

  it('continues the callers` traces from HTTP/2 headers and gRPC metadata', () => {
    const byPath = new Map(agent.requests('server').map((l) => [String(l.path), l]));
    for (const s of sent) {
      const line = byPath.get(s.path);
      assert.ok(line, `${s.path} reported`);
      const [, traceId, parent] = s.traceparent.split('-');
      assert.equal(line.trace_id, traceId, `trace of ${s.path}`);
      assert.equal(line.parent_span_id, parent, `parent of ${s.path}`);
    }
    const grpcLines = agent.requests('server').filter((l) => l.path === '/kw.test.Echo/Say');
    assert.equal(grpcLines.length, GRPC_CALLS);
    for (const l of grpcLines) {
      assert.ok(grpcTraces.has(String(l.trace_id)), `gRPC call continues its caller's trace (${String(l.trace_id)})`);
      grpcTraces.set(String(l.trace_id), (grpcTraces.get(String(l.trace_id)) ?? 0) + 1);
    }
    assert.ok(
      [...grpcTraces.values()].every((n) => n === 1),
      'each call its own trace',
    );
  });

  it('links upstream attempts (HTTP/1.1 and grpc_pass HTTP/2) to their h2 stream, 99% at least', () => {
    const servers = new Map(agent.requests('server').map((l) => [String(l.span_id), l]));
    const clients = agent.requests('client');
    const proxied = access.filter((e) => /^\/(api|echo|svc|kw\.test\.Echo)\//.test(e.target) && e.status !== 499);
    assert.ok(
      clients.length >= proxied.length * 0.99,
      `${clients.length} attempts for ${proxied.length} proxied requests`,
    );
    const requestId = (p: unknown) => /\/r\d+(?=\/|$)/.exec(String(p))?.[0];
    let parented = 0;
    let grpcAttempts = 0;
    for (const c of clients) {
      const parent = servers.get(String(c.parent_span_id));
      if (!parent || parent.trace_id !== c.trace_id) continue;
      if (c.path === '/kw.test.Echo/Say' || c.path === '/kw.test.Echo/Fail') {
        grpcAttempts++;
        assert.equal(c.protocol, 'HTTP/2', 'grpc_pass speaks HTTP/2 upstream');
        if (parent.path === c.path) parented++;
        continue;
      }
      if (requestId(parent.path) === requestId(c.path)) parented++;
    }
    assert.equal(grpcAttempts, GRPC_CALLS + GRPC_FAILS, 'one grpc_pass attempt per call');
    assert.ok(parented >= clients.length * 0.99, `${parented} of ${clients.length} attempts parented correctly`);
  });

  it('gRPC spans: {rpc.service}/{rpc.method}, rpc.* attributes, rpc.grpc.status_code from the trailers', () => {
    const spans = receiver.spans();
    for (const [method, calls, code] of [
      ['Say', GRPC_CALLS, 0],
      ['Fail', GRPC_FAILS, 5],
    ] as const) {
      for (const kind of [SPAN_KIND_SERVER, SPAN_KIND_CLIENT]) {
        const named = spans.filter((sp) => sp.name === `kw.test.Echo/${method}` && sp.kind === kind);
        assert.equal(named.length, calls, `${method} spans of kind ${kind}`);
        for (const sp of named) {
          assert.equal(sp.attributes['rpc.system'], 'grpc');
          assert.equal(sp.attributes['rpc.service'], 'kw.test.Echo');
          assert.equal(sp.attributes['rpc.method'], method);
          assert.equal(Number(sp.attributes['rpc.grpc.status_code']), code, `${method}: grpc-status`);
          assert.equal(sp.attributes['network.protocol.version'], '2');
          assert.equal(Number(sp.attributes['http.response.status_code']), 200);
        }
      }
    }
    const plain = spans.filter(
      (sp) => sp.kind === SPAN_KIND_SERVER && String(sp.attributes['url.path']).startsWith('/api/h2load/'),
    );
    assert.equal(plain.length, H2LOAD_CONNECTIONS * H2LOAD_REQUESTS * 0.9, 'h2load spans on /api');
    for (const sp of plain) {
      assert.equal(sp.attributes['rpc.system'], undefined, 'not gRPC');
      assert.equal(sp.attributes['network.protocol.version'], '2');
    }
  });
});
