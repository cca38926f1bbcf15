import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { buildSpan, type SpanBuilderDeps } from '../../src/otel/spans';
import { createSampler } from '../../src/otel/sampler';
import { clientExchange, fakeClock, ids, serverExchange } from '../fixture/otel-exchanges';

const deps = (over: Partial<SpanBuilderDeps> = {}): SpanBuilderDeps => ({
  clock: fakeClock,
  sampler: createSampler('parentbased_always_on', 1),
  redactQuery: (q) => q.replace(/token=[^&]*/, 'token=REDACTED'),
  ...over,
});

test('SERVER span: name, kind, stable HTTP attributes, exact times', () => {
  const ex = serverExchange({ startNs: 1_000_000_123, endNs: 1_250_000_456 });
  const span = buildSpan(ex, deps())!;
  assert.ok(span, 'a sampled exchange gives a span');
  assert.equal(span.name, 'GET', 'no route known: the method alone');
  assert.equal(span.kind, SpanKind.SERVER);
  assert.deepEqual(span.startTime, [1_700_000_001, 123], 'start converted exactly, no ms rounding');
  assert.deepEqual(span.endTime, [1_700_000_001, 250_000_456], 'end converted exactly');
  const a = span.attributes;
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
});

test('route known: "{method} {http.route}" and Kong route/service names', () => {
  const ex = serverExchange({ method: 'POST' });
  const span = buildSpan(ex, deps({ routes: () => ({ route: '/orders', routeName: 'orders', serviceName: 'shop' }) }))!;
  assert.equal(span.name, 'POST /orders');
  assert.equal(span.attributes['http.route'], '/orders');
  assert.equal(span.attributes['kong.route.name'], 'orders');
  assert.equal(span.attributes['kong.service.name'], 'shop');
});

test('unknown method folds into _OTHER; span name HTTP', () => {
  const span = buildSpan(serverExchange({ method: 'PROPFIND' }), deps())!;
  assert.equal(span.attributes['http.request.method'], '_OTHER');
  assert.equal(span.attributes['http.request.method_original'], 'PROPFIND');
  assert.equal(span.name, 'HTTP');
});

test('incoming W3C/B3 context: same trace, caller as remote parent, tracestate kept', () => {
  const incoming = ids({
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    parentSpanId: '00f067aa0ba902b7',
    remoteParent: true,
    traceState: 'congo=t61rcWkgMzE',
  });
  const span = buildSpan(serverExchange({ ids: incoming }), deps())!;
  assert.equal(span.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'trace continued');
  assert.equal(span.spanId, incoming.spanId, "the assembly's span id");
  assert.equal(span.parentSpanId, '00f067aa0ba902b7', 'caller is the parent');
  assert.equal(span.parentIsRemote, true);
  assert.equal(span.traceState, 'congo=t61rcWkgMzE');
  assert.equal(span.traceFlags, 1, 'sampled flag');
});

test('no incoming context: a root span', () => {
  const span = buildSpan(serverExchange(), deps())!;
  assert.equal(span.parentSpanId, undefined, 'no parent');
  assert.equal(span.parentIsRemote, false);
  assert.match(span.traceId, /^[0-9a-f]{32}$/);
});

test('CLIENT span per attempt: child of its SERVER span, upstream address, retry count', () => {
  const server = serverExchange();
  const first = clientExchange(server, { statusCode: 502, errorCode: undefined });
  const second = clientExchange(server, { startNs: 3_000_000 });
  const s1 = buildSpan(first, deps())!;
  const s2 = buildSpan(second, deps())!;
  for (const s of [s1, s2]) {
    assert.equal(s.kind, SpanKind.CLIENT);
    assert.equal(s.traceId, server.ids!.traceId, 'same trace as the server span');
    assert.equal(s.parentSpanId, server.ids!.spanId, 'parent is the SERVER span');
    assert.equal(s.parentIsRemote, false);
    assert.equal(s.attributes['server.address'], 'upstream.internal');
    assert.equal(s.attributes['server.port'], 9000);
    assert.equal(s.attributes['network.peer.address'], '127.0.0.2');
    assert.equal(s.attributes['network.peer.port'], 9000);
    assert.equal(s.name, 'GET');
  }
  assert.equal(s1.spanId, first.ids!.spanId, 'CLIENT span id = the id Kong forwarded upstream');
  assert.equal(s1.attributes['error.type'], '502', 'client error.type for >= 400');
  assert.equal(s1.statusCode, SpanStatusCode.ERROR);
  assert.equal(s2.attributes['http.request.resend_count'], 1, 'second attempt is a resend');
  assert.equal(
    s2.attributes['url.full'],
    'http://upstream.internal:9000/orders/42?limit=5&token=REDACTED',
    'url.full redacted',
  );
});

test('Kong split on the SERVER span adds up to the duration', () => {
  const server = serverExchange({ startNs: 1_000_000, endNs: 5_500_000 });
  clientExchange(server, { startNs: 2_000_000, endNs: 5_000_000 });
  const a = buildSpan(server, deps())!.attributes;
  assert.equal(a['kong.latency.before_upstream_ns'], 1_000_000);
  assert.equal(a['kong.latency.upstream_ns'], 3_000_000);
  assert.equal(a['kong.latency.after_upstream_ns'], 500_000);
  assert.equal(a['kong.response.source'], 'upstream');
});

test('Kong-generated response: source kong; 5xx is an error', () => {
  const noRoute = buildSpan(
    serverExchange({ statusCode: 404, responseHeaders: { server: 'kong/3.4.2', 'x-kong-response-latency': '0' } }),
    deps(),
  )!;
  assert.equal(noRoute.attributes['kong.response.source'], 'kong');
  assert.equal(noRoute.attributes['kong.response_latency_ms'], 0);
  assert.equal(noRoute.attributes['error.type'], undefined, '404 is not a server error');
  assert.equal(noRoute.statusCode, SpanStatusCode.UNSET);

  const failed = serverExchange({ statusCode: 502, responseHeaders: { server: 'kong/3.4.2' } });
  clientExchange(failed, { statusCode: 0, errorCode: 'connection_refused' });
  const span = buildSpan(failed, deps())!;
  assert.equal(span.attributes['kong.response.source'], 'kong', 'Kong answered after a failed attempt');
  assert.equal(span.attributes['error.type'], '502');
  assert.equal(span.statusCode, SpanStatusCode.ERROR);

  const aborted = buildSpan(serverExchange({ statusCode: 0, errorCode: 'client_closed' }), deps())!;
  assert.equal(aborted.attributes['error.type'], 'client_closed');
  assert.equal(aborted.attributes['http.response.status_code'], undefined, 'no status when none was sent');
  assert.equal(aborted.statusCode, SpanStatusCode.ERROR);
  assert.equal(aborted.statusMessage, 'client_closed', 'the error code is the status message');
});

test('sampling: unsampled flag, always_off, ratio by trace id keeps whole traces', () => {
  assert.equal(
    buildSpan(
      serverExchange({ ids: ids({ sampled: false, remoteParent: true, parentSpanId: '1111111111111111' }) }),
      deps(),
    ),
    undefined,
    'caller said not sampled',
  );
  assert.equal(buildSpan(serverExchange(), deps({ sampler: createSampler('always_off', 1) })), undefined);
  assert.ok(
    buildSpan(
      serverExchange({ ids: ids({ remoteParent: true, parentSpanId: '1111111111111111' }) }),
      deps({ sampler: createSampler('parentbased_always_off', 1) }),
    ),
    'parent-based follows a sampled caller',
  );

  const ratio = deps({ sampler: createSampler('traceidratio', 0.5) });
  const low = serverExchange({ ids: ids({ traceId: '0123456789abcdef0000000000000001' }) });
  const high = serverExchange({ ids: ids({ traceId: '0123456789abcdef00ffffffffffffff' }) });
  const lowClient = clientExchange(low);
  const highClient = clientExchange(high);
  assert.ok(buildSpan(low, ratio), 'low random part: kept');
  assert.ok(buildSpan(lowClient, ratio), 'its CLIENT span kept too');
  assert.equal(buildSpan(high, ratio), undefined, 'high random part: dropped');
  assert.equal(buildSpan(highClient, ratio), undefined, 'its CLIENT span dropped too');

  let kept = 0;
  for (let i = 0; i < 2000; i++)
    if (buildSpan(serverExchange({ ids: ids({ traceId: randomBytes(16).toString('hex') }) }), ratio)) kept++;
  assert.ok(kept > 850 && kept < 1150, `about half of random traces kept, got ${kept}/2000`);
});

test("SERVER span: time in Kong's Lua phases when the Lua uprobes report it", () => {
  const luaPhaseNs: number[] = [];
  luaPhaseNs[1] = 1200; // rewrite
  luaPhaseNs[2] = 3400; // access
  luaPhaseNs[4] = 500; // header_filter
  const span = buildSpan(serverExchange({ luaPhaseNs }), deps())!;
  assert.equal(span.attributes['kong.lua.rewrite_ns'], 1200);
  assert.equal(span.attributes['kong.lua.access_ns'], 3400);
  assert.equal(span.attributes['kong.lua.header_filter_ns'], 500);
  assert.equal(span.attributes['kong.lua.total_ns'], 5100);
  assert.equal(
    buildSpan(serverExchange(), deps())!.attributes['kong.lua.total_ns'],
    undefined,
    'absent without the uprobes',
  );
});
