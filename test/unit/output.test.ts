import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AssemblerStats, CaptureStats } from '../../src/capture/native';
import { ErrorCode, ExchangeFlag, Method } from '../../src/capture/exchange-layout';
import { LuaPhase } from '../../src/capture/records';
import type { RouteInfo } from '../../src/enrich/kong/route-table';
import { Logger } from '../../src/log';
import { RequestLog } from '../../src/output/request-log';
import { StatsLine } from '../../src/output/stats';
import type { RequestTotals } from '../../src/otel/http-metrics';
import { clientSpec, serverSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

const ROUTE: RouteInfo = { index: 1, route: '/orders', routeName: 'orders', serviceName: 'shop', spanNames: [] };

test('request log: one line per exchange with the fields of the README', () => {
  const luaNs: number[] = [];
  luaNs[LuaPhase.Access] = 2000;
  luaNs[LuaPhase.Rewrite] = 500;
  const server = serverSpec({
    startNs: 1_000_000_000,
    endNs: 1_001_841_799,
    requestBodySize: 16,
    luaNs,
    pid: 4242,
    connId: 7,
    connRequest: 3,
  });
  const [s, c] = enrich([server, clientSpec(server)], { routes: { resolve: () => ROUTE } });
  const log = new RequestLog(new Logger({ level: 'info', json: true, write: () => undefined }), fakeClock);
  const f = log.fields(s);
  assert.deepEqual(
    f,
    {
      timestamp: '2023-11-14T22:13:21.001841799Z',
      start_time: '2023-11-14T22:13:21.000000000Z',
      direction: 'server',
      pid: 4242,
      method: 'GET',
      host: 'api.example.com:8000',
      path: '/orders/42',
      query: 'limit=5&token=REDACTED',
      status_code: 200,
      response_time_ns: 1_841_799,
      error_code: '',
      peer: '127.0.0.1:40000',
      local: '127.0.0.1:8000',
      protocol: 'HTTP/1.1',
      request_size: 96,
      response_size: 632,
      user_agent: 'curl/8.0',
      conn_id: 7,
      conn_request: 3,
      trace_id: server.traceId,
      span_id: server.spanId,
      parent_span_id: undefined,
      route: '/orders',
      route_name: 'orders',
      service_name: 'shop',
      upstream_attempts: 1,
      kong_proxy_latency_ms: 1,
      kong_upstream_latency_ms: 3,
      kong_response_latency_ms: undefined,
      kong_lua_ns: 2500,
    },
    'every field',
  );
  const cf = log.fields(c);
  assert.equal(cf.direction, 'client');
  assert.equal(cf.parent_span_id, server.spanId, 'a client line names its SERVER span');
  assert.equal(cf.upstream_attempts, undefined, 'attempts only on server lines');
  assert.equal(cf.route, undefined, 'routes only on server lines');

  const [aborted, other] = enrich([
    serverSpec({ status: 0, error: ErrorCode.ClientClosed, attempts: 0, httpVersion: 10 }),
    serverSpec({ method: Method.Other, methodText: 'PROPFIND', flags: ExchangeFlag.Response, attempts: 0 }),
  ]);
  assert.equal(log.fields(aborted).error_code, 'client_closed');
  assert.equal(log.fields(aborted).status_code, 0);
  assert.equal(log.fields(aborted).protocol, 'HTTP/1.0');
  assert.equal(log.fields(other).method, 'PROPFIND', 'the method as sent');
});

test('request log: the JSON line is fields() as JSON, for every shape of exchange', () => {
  const log = new RequestLog(new Logger({ level: 'info', json: true, write: () => undefined }), fakeClock);
  const server = serverSpec({ userAgent: 'quote " and \\ backslash \u00e9', query: 'a=1&token=x' });
  const luaNs: number[] = [];
  luaNs[LuaPhase.Access] = 10;
  const shapes = enrich(
    [
      server,
      clientSpec(server),
      serverSpec({ status: 0, error: ErrorCode.ClientClosed, attempts: 0, query: undefined, userAgent: undefined }),
      serverSpec({ method: Method.Other, methodText: 'PROPFIND', family: 0, host: undefined, luaNs }),
      serverSpec({ kongResponseLatencyMs: 2, kongProxyLatencyMs: -1, kongUpstreamLatencyMs: -1, path: undefined }),
    ],
    { routes: { resolve: (ex) => (ex.attempts === 0 ? undefined : ROUTE) } },
  );
  for (const e of shapes) {
    const line = log.jsonLine(e);
    assert.ok(line.endsWith('}\n'), 'one line');
    const parsed = JSON.parse(line);
    const expected = JSON.parse(JSON.stringify({ ...log.fields(e), level: 'info', msg: 'HTTP Request' }));
    assert.deepEqual(parsed, expected, 'same fields and values');
    assert.deepEqual(Object.keys(parsed), Object.keys(expected), 'in the same order');
  }
});

test('request log: lines go out only at info level', () => {
  const lines: string[] = [];
  const [e] = enrich([serverSpec()]);
  const quiet = new Logger({ level: 'warn', json: true, write: (l) => lines.push(l) });
  new RequestLog(quiet, fakeClock).exchange(e);
  quiet.flush();
  assert.equal(lines.length, 0, 'LOG_LEVEL=warn: no request lines');
  const loud = new Logger({ level: 'info', json: true, write: (l) => lines.push(l) });
  new RequestLog(loud, fakeClock).exchange(e);
  loud.flush();
  const line = JSON.parse(lines.join(''));
  assert.equal(line.msg, 'HTTP Request');
  assert.equal(line.timestamp, '2023-11-14T22:13:20.005500000Z', "the exchange's own end time");
});

const TOTALS: RequestTotals = {
  requests: 25,
  responses: 24,
  status2xx: 15,
  status3xx: 0,
  status4xx: 3,
  status5xx: 6,
  noResponse: 1,
  errors: 1,
  avgResponseMs: 1.4237,
  upstreamAttempts: 19,
};

function captureStats(over: Partial<AssemblerStats> = {}): CaptureStats {
  const activeServer = new Array(Method.Max * 2).fill(0);
  activeServer[Method.Get * 2] = 2;
  activeServer[Method.Post * 2 + 1] = 1;
  return {
    events: 300,
    lost: 4,
    connOpened: 10,
    connClosed: 6,
    connMapFull: 0,
    forksFollowed: 2,
    tlsUnlinked: 6,
    batches: 9,
    ringUsedBytes: 1024,
    ringSizeBytes: 4096,
    assembler: {
      records: 262,
      malformedRecords: 2,
      exchanges: 44,
      serverExchanges: 25,
      clientExchanges: 19,
      connections: 4,
      inFlight: 3,
      evicted: 1,
      ignored: 0,
      notHttp: 0,
      protocolErrors: 5,
      skippedBytes: 0,
      lostHeads: 0,
      orphanResponses: 0,
      droppedRequests: 7,
      unmatchedAttempts: 0,
      http2Connections: 0,
      hpackLost: 2,
      processExits: 0,
      activeServer,
      ...over,
    },
  };
}

test('stats line: the same fields as before, plus the assembler counters worth a glance', () => {
  const line = new StatsLine(0);
  const input = {
    totals: TOTALS,
    capture: captureStats(),
    decodeErrors: 1,
    kongProcesses: 3,
    spansExported: 40,
    spansDropped: 2,
    exportFailures: 1,
    rssBytes: 104 * 1048576,
    heapUsedBytes: 12 * 1048576,
  };
  const f = line.format(input, 10_000);
  assert.deepEqual(
    Object.keys(f),
    [
      'requests',
      'responses',
      'requests_per_second',
      'avg_response_time_ms',
      'status_4xx',
      'status_5xx',
      'errors',
      'in_flight',
      'upstream_attempts',
      'events',
      'lost_events',
      'ringbuf_fill',
      'decode_errors',
      'connections',
      'protocol_errors',
      'dropped_requests',
      'evicted',
      'tls_unlinked',
      'hpack_lost',
      'kong_processes',
      'rss_mib',
      'heap_mib',
      'spans_exported',
      'spans_dropped',
      'export_failures',
    ],
    'fields, in order',
  );
  assert.equal(f.requests, 25);
  assert.equal(f.requests_per_second, 2.5, 'over the 10 s since the last line');
  assert.equal(f.avg_response_time_ms, 1.424, 'rounded to the µs');
  assert.equal(f.in_flight, 3, "the assembler's SERVER requests in flight");
  assert.equal(f.events, 262, 'kernel records taken');
  assert.equal(f.lost_events, 4);
  assert.equal(f.ringbuf_fill, 0.25);
  assert.equal(f.decode_errors, 3, "the decoder's and the assembler's");
  assert.equal(f.connections, 4);
  assert.equal(f.protocol_errors, 5);
  assert.equal(f.dropped_requests, 7);
  assert.equal(f.evicted, 1);
  assert.equal(f.tls_unlinked, 6, 'TLS connections older than the uprobes');
  assert.equal(f.hpack_lost, 2, 'HTTP/2 connections older than the agent');
  assert.equal(f.rss_mib, 104);
  assert.equal(f.heap_mib, 12);
  const next = line.format({ ...input, totals: { ...TOTALS, requests: 45 } }, 15_000);
  assert.equal(next.requests_per_second, 4, 'rate since the previous line');
  const before = line.format({ ...input, capture: undefined }, 16_000);
  assert.equal(before.in_flight, 0, 'no capture yet: zeros');
  assert.equal(before.events, 0);
});

test('client-sent control bytes never reach a terminal raw, in text or JSON lines', () => {
  const evil = '/x/esc\u001b[2J\u001b[31mRED\u009b1m\u007f';
  const lines: string[] = [];
  const text = new Logger({ level: 'info', json: false, write: (c) => lines.push(c), now: () => 'T' });
  const [e] = enrich([serverSpec({ path: evil, userAgent: 'ua\u001b]0;title\u0007' })]);
  new RequestLog(text, fakeClock).exchange(e);
  text.flush();
  const json = new Logger({ level: 'info', json: true, write: (c) => lines.push(c), now: () => 'T' });
  new RequestLog(json, fakeClock).exchange(e);
  json.log('info', 'plain', { path: evil });
  json.flush();
  const all = lines.join('').split('\n').filter(Boolean);
  // eslint-disable-next-line no-control-regex -- finding them is the point
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
  for (const line of all) assert.doesNotMatch(line, raw, `no raw control byte in ${JSON.stringify(line)}`);
  assert.match(all[0], /path="\/x\/esc\\u001b\[2J/, 'text mode shows the escape, escaped');
  assert.equal(JSON.parse(all[1]).path, evil, 'JSON mode round-trips the exact path');
  assert.equal(JSON.parse(all[2]).path, evil, 'and so does any other JSON line');
});
