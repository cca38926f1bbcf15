import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleSpanExporter } from '@opentelemetry/sdk-trace-node';
import { decodeBatch } from '../../src/capture/batch-decoder';
import { ErrorCode, ExchangeFlag, Method } from '../../src/capture/exchange-layout';
import { LuaPhase } from '../../src/capture/records';
import type { EnrichedExchange } from '../../src/enrich/enriched';
import { Enricher } from '../../src/enrich/enricher';
import { RouteTable } from '../../src/enrich/kong/route-table';
import { createRedactor } from '../../src/enrich/redact';
import { Sampler } from '../../src/enrich/sampler';
import { SdkSpanSink } from '../../src/otel/readable-span';
import { spanAttributes, spanIdHex, type ExportSpan } from '../../src/otel/span';
import { ExchangeSpan } from '../../src/otel/spans';
import { FRAME_BASE_NS, clientSpec, frameBatch, serverSpec, type ExchangeFrameSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

const F = ExchangeFlag;
const redactor = { query: (q: string) => q.replace(/token=[^&]*/, 'token=REDACTED'), path: (p: string) => p };

function spans(frames: ExchangeFrameSpec[], routes?: RouteTable): ExchangeSpan[] {
  return enrich(frames, { redactor, routes }).map((e) => ExchangeSpan.of(e, fakeClock));
}

const hex = (s: ExportSpan) => ({
  traceId: spanIdHex(s, s.traceIdAt, 16),
  spanId: spanIdHex(s, s.spanIdAt, 8),
  parentSpanId: spanIdHex(s, s.parentSpanIdAt, 8),
});

test('SERVER span: name, kind, stable HTTP attributes, exact times', () => {
  const [span] = spans([serverSpec({ startNs: 1_000_000_123, endNs: 1_250_000_456 })]);
  assert.equal(span.name, 'GET', 'no route known: the method alone');
  assert.equal(span.kind, SpanKind.SERVER);
  assert.deepEqual(span.startTime([0, 0]), [1_700_000_001, 123], 'start converted exactly, no ms rounding');
  assert.deepEqual(span.endTime([0, 0]), [1_700_000_001, 250_000_456], 'end converted exactly');
  const a = spanAttributes(span);
  assert.equal(a['http.request.method'], 'GET');
  assert.equal(a['url.path'], '/orders/42');
  assert.equal(a['url.query'], 'limit=5&token=REDACTED', 'query goes through redaction');
  assert.equal(a['url.scheme'], 'http');
  assert.equal(a['server.address'], 'api.example.com', 'server.address from the Host header');
  assert.equal(a['server.port'], 8000);
  assert.equal(a['client.address'], '127.0.0.1');
  assert.equal(a['client.port'], 40000);
  assert.equal(a['network.protocol.version'], '1.1');
  assert.equal(a['user_agent.original'], 'curl/8.0');
  assert.equal(a['http.response.status_code'], 200);
  assert.equal(a['http.request.body.size'], 0);
  assert.equal(a['http.response.body.size'], 512);
  assert.equal(a['error.type'], undefined, 'no error on 200');
  assert.equal(span.statusCode, SpanStatusCode.UNSET);
  assert.equal(a['kong.proxy_latency_ms'], 1, "Kong's header value");
  assert.equal(a['kong.upstream_latency_ms'], 3);
  assert.equal(a['kong.response_latency_ms'], undefined, 'absent header: no attribute');
  assert.equal(span.traceFlags, 1, 'sampled');
});

test('url.scheme from the TLS flag, not from the port', () => {
  const [tls, plain] = spans([
    serverSpec({ flags: F.Response | F.Sampled | F.Tls, localPort: 8000, host: undefined }),
    serverSpec({ localPort: 8443, host: undefined }),
  ]);
  assert.equal(spanAttributes(tls)['url.scheme'], 'https');
  assert.equal(spanAttributes(plain)['url.scheme'], 'http', '8443 without TLS is plain');
  assert.equal(spanAttributes(plain)['server.port'], 8443, 'no Host: the listener');
});

test('route known: "{method} {http.route}" and Kong route/service names', () => {
  const routes = new RouteTable();
  routes.load([{ id: 'r1', name: 'orders', paths: ['/orders'], service: { id: 's1' } }], [{ id: 's1', name: 'shop' }]);
  const [span] = spans([serverSpec({ method: Method.Post })], routes);
  assert.equal(span.name, 'POST /orders');
  const a = spanAttributes(span);
  assert.equal(a['http.route'], '/orders');
  assert.equal(a['kong.route.name'], 'orders');
  assert.equal(a['kong.service.name'], 'shop');
});

test('unknown method folds into _OTHER; span name HTTP', () => {
  const [span] = spans([serverSpec({ method: Method.Other, methodText: 'PROPFIND' })]);
  assert.equal(spanAttributes(span)['http.request.method'], '_OTHER');
  assert.equal(spanAttributes(span)['http.request.method_original'], 'PROPFIND');
  assert.equal(span.name, 'HTTP');
});

test('incoming W3C/B3 context: same trace, caller as remote parent, tracestate kept', () => {
  const [span] = spans([
    serverSpec({
      flags: F.Response | F.Sampled | F.CallerContext | F.ParentSpan | F.CallerSampledSet | F.Via,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '1234567812345678',
      parentSpanId: '00f067aa0ba902b7',
      traceState: 'congo=t61rcWkgMzE',
    }),
  ]);
  assert.deepEqual(
    hex(span),
    { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '1234567812345678', parentSpanId: '00f067aa0ba902b7' },
    "the caller's trace, the assembler's span id, the caller as parent",
  );
  assert.equal(span.parentIsRemote, true);
  assert.equal(span.traceState, 'congo=t61rcWkgMzE');
});

test('no incoming context: a root span', () => {
  const [span] = spans([serverSpec()]);
  assert.equal(span.parentSpanIdAt, -1, 'no parent');
  assert.equal(hex(span).parentSpanId, undefined);
  assert.equal(span.parentIsRemote, false);
  assert.match(hex(span).traceId!, /^[0-9a-f]{32}$/);
});

test('CLIENT span per attempt: child of its SERVER span, upstream address, retry count', () => {
  const server = serverSpec({ attempts: 2 });
  const first = clientSpec(server, { status: 502 });
  const second = clientSpec(server, { attempt: 1, startNs: 3_000_000 });
  const [serverSpan, s1, s2] = spans([server, first, second]);
  for (const s of [s1, s2]) {
    const a = spanAttributes(s);
    assert.equal(s.kind, SpanKind.CLIENT);
    assert.equal(hex(s).traceId, hex(serverSpan).traceId, 'same trace as the server span');
    assert.equal(hex(s).parentSpanId, hex(serverSpan).spanId, 'parent is the SERVER span');
    assert.equal(s.parentIsRemote, false);
    assert.equal(a['server.address'], 'upstream.internal');
    assert.equal(a['server.port'], 9000);
    assert.equal(a['network.peer.address'], '127.0.0.2');
    assert.equal(a['network.peer.port'], 9000);
    assert.equal(s.name, 'GET');
  }
  assert.equal(hex(s1).spanId, first.spanId, "the CLIENT span id is the assembler's (the one Kong forwarded)");
  assert.equal(spanAttributes(s1)['error.type'], '502', 'client error.type for >= 400');
  assert.equal(s1.statusCode, SpanStatusCode.ERROR);
  assert.equal(s1.statusMessage, undefined, 'a status error has no message');
  assert.equal(spanAttributes(s1)['http.request.resend_count'], undefined, 'the first attempt is not a resend');
  assert.equal(spanAttributes(s2)['http.request.resend_count'], 1, 'second attempt is a resend');
  assert.equal(
    spanAttributes(s2)['url.full'],
    'http://upstream.internal:9000/orders/42?limit=5&token=REDACTED',
    'url.full redacted',
  );
  const [, https] = spans([
    server,
    clientSpec(server, { host: 'secure.internal', flags: F.Response | F.Tls | F.ParentSpan }),
  ]);
  assert.equal(
    spanAttributes(https)['url.full'],
    'https://secure.internal/orders/42?limit=5&token=REDACTED',
    'default port left out',
  );
});

test('Kong split on the SERVER span adds up to the duration', () => {
  const [span] = spans([
    serverSpec({ startNs: 1_000_000, endNs: 5_500_000, upstreamStartNs: 2_000_000, upstreamEndNs: 5_000_000 }),
  ]);
  const a = spanAttributes(span);
  assert.equal(a['kong.latency.before_upstream_ns'], 1_000_000);
  assert.equal(a['kong.latency.upstream_ns'], 3_000_000);
  assert.equal(a['kong.latency.after_upstream_ns'], 500_000);
  assert.equal(a['kong.upstream.attempts'], 1);
  assert.equal(a['kong.response.source'], 'upstream');
});

test('Kong-generated response: source kong; 5xx is an error; an error code is the status message', () => {
  const kong = F.Response | F.Sampled | F.ServerKong;
  const noSplit = { attempts: 0, upstreamStartNs: 0, upstreamEndNs: 0, kongUpstreamLatencyMs: -1 };
  const [noRoute, failed, aborted] = spans([
    serverSpec({ ...noSplit, status: 404, flags: kong, kongResponseLatencyMs: 0, kongProxyLatencyMs: -1 }),
    serverSpec({ status: 502, flags: kong }),
    serverSpec({ ...noSplit, status: 0, error: ErrorCode.ClientClosed, flags: F.Sampled }),
  ]);
  assert.equal(spanAttributes(noRoute)['kong.response.source'], 'kong');
  assert.equal(spanAttributes(noRoute)['kong.response_latency_ms'], 0);
  assert.equal(spanAttributes(noRoute)['kong.latency.before_upstream_ns'], undefined, 'no split without attempts');
  assert.equal(spanAttributes(noRoute)['error.type'], undefined, '404 is not a server error');
  assert.equal(noRoute.statusCode, SpanStatusCode.UNSET);

  assert.equal(spanAttributes(failed)['kong.response.source'], 'kong', 'Kong answered after a failed attempt');
  assert.equal(spanAttributes(failed)['error.type'], '502');
  assert.equal(failed.statusCode, SpanStatusCode.ERROR);

  assert.equal(spanAttributes(aborted)['error.type'], 'client_closed');
  assert.equal(spanAttributes(aborted)['http.response.status_code'], undefined, 'no status when none was sent');
  assert.equal(aborted.statusCode, SpanStatusCode.ERROR);
  assert.equal(aborted.statusMessage, 'client_closed', 'the error code is the status message');
});

test("SERVER span: time in Kong's Lua phases when the Lua uprobes report it", () => {
  const luaNs: number[] = [];
  luaNs[LuaPhase.Rewrite] = 1200;
  luaNs[LuaPhase.Access] = 3400;
  luaNs[LuaPhase.HeaderFilter] = 500;
  const [span, without] = spans([serverSpec({ luaNs }), serverSpec()]);
  const a = spanAttributes(span);
  assert.equal(a['kong.lua.rewrite_ns'], 1200);
  assert.equal(a['kong.lua.access_ns'], 3400);
  assert.equal(a['kong.lua.header_filter_ns'], 500);
  assert.equal(a['kong.lua.content_ns'], undefined, 'phases that did not run are left out');
  assert.equal(a['kong.lua.total_ns'], 5100);
  assert.equal(spanAttributes(without)['kong.lua.total_ns'], undefined, 'absent without the uprobes');
});

test('a node-wide agent puts the pod on SERVER and CLIENT spans', () => {
  const pods = new Map([[100, { index: 1, name: 'kong-a', namespace: 'gw', uid: 'uid-a' }]]);
  const server = serverSpec({ pid: 100 });
  const [s, c] = enrich([server, clientSpec(server)], { pods }).map((e) => ExchangeSpan.of(e, fakeClock));
  for (const span of [s, c]) {
    const a = spanAttributes(span);
    assert.equal(a['k8s.pod.name'], 'kong-a');
    assert.equal(a['k8s.namespace.name'], 'gw');
    assert.equal(a['k8s.pod.uid'], 'uid-a');
  }
});

test("a retained span holds its own copy of the frame: ids survive the batch's reuse, and no batch is kept", () => {
  const batch = frameBatch([serverSpec({ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8) }), serverSpec()]);
  const kept: EnrichedExchange[] = [];
  const enricher = new Enricher(
    { exchange: (e) => kept.push(e) },
    { redactor: createRedactor(), sampler: new Sampler('always_on', 1) },
  );
  decodeBatch(batch, FRAME_BASE_NS, { exchange: (ex) => enricher.push(ex), proc: () => undefined });
  enricher.endBatch();
  const span = ExchangeSpan.of(kept[0], fakeClock);
  span.retain();
  batch.fill(0);
  assert.notEqual(span.ids, batch, 'not a view into the batch');
  assert.deepEqual(hex(span).traceId, 'ab'.repeat(16), 'trace id bytes copied');
  assert.deepEqual(hex(span).spanId, 'cd'.repeat(8), 'span id bytes copied');
  assert.equal(spanAttributes(span)['url.path'], '/orders/42', 'strings read later come from the copy');
});

test("OTEL_TRACES_EXPORTER=console: the SDK's console exporter prints our spans through the ReadableSpan view", () => {
  const printed: unknown[] = [];
  const dir = console.dir;
  console.dir = (obj: unknown) => void printed.push(obj);
  try {
    const server = serverSpec({ startNs: 1_000_000_000, endNs: 2_000_000_001 });
    const sink = new SdkSpanSink(new ConsoleSpanExporter(), resourceFromAttributes({ 'service.name': 'kong' }), {
      name: 'kong-watcher',
      version: '0.1.0',
    });
    let result: number | undefined;
    sink.export(spans([server, clientSpec(server)]), (r) => (result = r.code));
    assert.equal(result, 0, 'success');
    assert.equal(printed.length, 2, 'one entry per span');
    const [s, c] = printed as Record<string, any>[];
    assert.equal(s.traceId, server.traceId);
    assert.equal(s.id, server.spanId);
    assert.equal(s.timestamp, 1_700_000_001_000_000, 'start in µs, as the SDK prints it');
    assert.equal(s.duration, 1_000_000.001, 'duration in µs, exact');
    assert.equal(s.attributes['http.request.method'], 'GET');
    assert.equal(s.resource.attributes['service.name'], 'kong');
    assert.equal(c.parentSpanContext.spanId, server.spanId, 'the CLIENT names its parent');
  } finally {
    console.dir = dir;
  }
});
