/**
 * Linking each upstream attempt (CLIENT exchange) to the inbound request it serves (ported from
 * the TypeScript assembler's tests), ids across the two, and the order frames are written in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeFlag } from '../../src/capture/exchange-layout';
import { Conversation, request, response } from './helpers/assembler-conversation';
import type { ExchangeView } from './helpers/frame-reader';

function shuffle<T>(items: T[], seed: number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const j = seed % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function parentOf(c: Conversation, client: ExchangeView): ExchangeView | undefined {
  return c.server().find((s) => s.id === client.parentId);
}

test('200 interleaved in-flight requests: every upstream attempt finds its inbound request', () => {
  const c = new Conversation();
  const n = 200;
  const pids = [100, 101];
  for (let i = 0; i < n; i++) {
    c.open(i + 1, { direction: 'server', pid: pids[i % 2] });
    c.read(i + 1, request('GET', `/svc/items/${i}?v=${i}`, { 'User-Agent': `client-${i % 7}` }));
  }
  // Upstream calls in a random order (as the routing/plugins of each request finish), strip_path applied.
  for (const i of shuffle([...Array(n).keys()], 42)) {
    const up = 1000 + i;
    c.open(up, { direction: 'client', pid: pids[i % 2] });
    c.write(up, request('GET', `/items/${i}?v=${i}`, { 'User-Agent': `client-${i % 7}` }));
  }
  for (const i of shuffle([...Array(n).keys()], 7)) {
    c.read(1000 + i, response(200, `r${i}`));
    c.write(i + 1, response(200, `r${i}`, { Via: 'kong/3.4.2' }));
  }
  const clients = c.client();
  assert.equal(clients.length, n);
  let right = 0;
  for (const ex of clients) {
    const i = Number(ex.path!.split('/').pop());
    if (parentOf(c, ex)?.path === `/svc/items/${i}`) right++;
  }
  assert.equal(right, n, `matched ${right}/${n}`);
  for (const server of c.server()) {
    assert.equal(server.attempts, 1, `one attempt for ${server.path}`);
    const a = clients.find((x) => x.parentId === server.id)!;
    assert.equal(a.traceId, server.traceId, 'same trace');
    assert.equal(a.parentSpanId, server.spanId, 'client span is a child of the server span');
    assert.equal(a.attempt, 0);
    assert.equal(server.upstreamStartNs, a.startNs, 'upstream start = the attempt start');
    assert.equal(server.upstreamEndNs, a.endNs, 'upstream end = the attempt end');
  }
  assert.equal(c.stats().unmatchedAttempts, 0);
});

test('identical paths: the upstream write follows the inbound read it serves (>= 99%)', () => {
  const c = new Conversation();
  const n = 200;
  const open: number[] = [];
  let up = 10_000;
  const expected = new Map<number, number>(); // client conn -> server conn
  let seed = 3;
  for (let i = 1; i <= n; i++) {
    c.open(i, { direction: 'server' });
    c.read(i, request('GET', '/same', { 'User-Agent': 'wrk' }));
    open.push(i);
    c.open(++up, { direction: 'client' });
    c.write(up, request('GET', '/same', { 'User-Agent': 'wrk' }));
    expected.set(up, i);
    // finish a random earlier exchange now and then, so many stay in flight
    seed = (seed * 1103515245 + 12345) >>> 0;
    if (seed % 3 === 0 && open.length > 1) {
      const k = open.splice(seed % open.length, 1)[0];
      const u = [...expected].find(([, s]) => s === k)![0];
      c.read(u, response(200));
      c.write(k, response(200));
    }
  }
  c.flushAll(c.nowNs + 1);
  const right = c.client().filter((ex) => expected.get(ex.connId) === parentOf(c, ex)?.connId).length;
  assert.ok(right >= 0.99 * n, `matched ${right}/${n}`);
});

test('retries: a failed attempt then a second one, both under the same inbound request', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('POST', '/orders', { 'X-Request-Id': 'abc' }, '{}'));
  c.open(2, { direction: 'client' });
  const first = c.write(2, request('POST', '/orders', { 'X-Request-Id': 'abc' }, '{}'));
  c.result('read', 2, -104);
  const failed = c.close(2);
  c.open(3, { direction: 'client' });
  c.write(3, request('POST', '/orders', { 'X-Request-Id': 'abc' }, '{}'));
  const ok = c.read(3, response(201));
  c.write(1, response(201));
  const server = c.server()[0];
  const attempts = c.client();
  assert.equal(server.attempts, 2);
  assert.deepEqual(
    attempts.map((a) => [a.attempt, a.parentId === server.id, a.error, a.status]),
    [
      [0, true, 'connection_reset', 0],
      [1, true, '', 201],
    ],
  );
  assert.notEqual(attempts[0].spanId, attempts[1].spanId, 'distinct spans');
  assert.equal(server.upstreamStartNs, first, 'first attempt start');
  assert.equal(server.upstreamEndNs, ok, 'last attempt end');
  assert.ok(failed > first);
});

test("Kong's own calls (no matching request) stay unparented; other workers never match", () => {
  const c = new Conversation();
  c.open(1, { direction: 'server', pid: 100 });
  c.read(1, request('GET', '/api/users', { 'User-Agent': 'curl/8' }));
  c.open(2, { direction: 'client', pid: 100 });
  c.write(2, request('POST', '/v1/traces', { 'User-Agent': 'lua-resty-http/0.17' }));
  c.read(2, response(200));
  c.open(3, { direction: 'client', pid: 200 });
  c.write(3, request('GET', '/api/users', { 'User-Agent': 'curl/8' }));
  c.read(3, response(200));
  const [kongOwn, otherPid] = c.client();
  assert.equal(kongOwn.parentId, 0n, 'exporter call not attached');
  assert.equal(otherPid.parentId, 0n, 'another worker');
  assert.equal(c.stats().unmatchedAttempts, 2);
  assert.match(kongOwn.traceId, /^[0-9a-f]{32}$/, 'still has ids');
  assert.equal(kongOwn.parentSpanId, undefined, 'a trace of its own');
  assert.equal(c.server().length, 0, 'the inbound request is still in flight');
});

test('trace context: inbound traceparent continued; Kong-propagated span id adopted by the CLIENT span', () => {
  const c = new Conversation();
  const inbound = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/t', { traceparent: inbound, tracestate: 'vendor=1' }));
  c.open(2, { direction: 'client' });
  c.write(2, request('GET', '/t', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01' }));
  c.read(2, response(200));
  c.open(3, { direction: 'client' });
  // plain forwarding of the inbound header: the caller's span id is not this CLIENT span's
  c.write(3, request('GET', '/t', { traceparent: inbound }));
  c.read(3, response(200));
  c.write(1, response(200));
  const server = c.server()[0];
  const [viaPlugin, forwarded] = c.client();
  assert.equal(server.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(server.parentSpanId, '00f067aa0ba902b7');
  assert.equal(server.traceState, 'vendor=1');
  assert.ok(server.flags & ExchangeFlag.CallerContext, 'caller context');
  assert.ok(server.flags & ExchangeFlag.CallerSampledSet, 'the caller stated a decision');
  assert.ok(server.flags & ExchangeFlag.Sampled, 'sampled');
  assert.equal(viaPlugin.parentId, server.id);
  assert.equal(viaPlugin.spanId, '1111111111111111', 'span id Kong propagated');
  assert.equal(viaPlugin.parentSpanId, server.spanId);
  assert.equal(viaPlugin.traceState, 'vendor=1', "the server's tracestate");
  assert.ok(!(viaPlugin.flags & ExchangeFlag.CallerContext));
  assert.equal(forwarded.parentId, server.id, 'trace id match');
  assert.notEqual(forwarded.spanId, '00f067aa0ba902b7', 'not the caller span');
  assert.equal(forwarded.traceId, server.traceId);
  assert.equal(server.attempts, 2);
});

test('a request without context whose upstream call carries a new trace joins that trace', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/n'));
  c.open(2, { direction: 'client' });
  c.write(2, request('GET', '/n', { traceparent: '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2222222222222222-01' }));
  c.read(2, response(200));
  c.write(1, response(200));
  const server = c.server()[0];
  const client = c.client()[0];
  assert.equal(client.parentId, server.id);
  assert.equal(server.traceId, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'server adopted the propagated trace');
  assert.equal(server.parentSpanId, undefined);
  assert.ok(!(server.flags & ExchangeFlag.CallerContext), 'adopted, not a caller context');
  assert.equal(client.spanId, '2222222222222222');
  assert.equal(client.parentSpanId, server.spanId);
});

test('a retry that propagates the same span id gets a fresh one', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/r'));
  const tp = '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2222222222222222-01';
  for (const id of [2, 3]) {
    c.open(id, { direction: 'client' });
    c.write(id, request('GET', '/r', { traceparent: tp }));
    c.read(id, response(502));
  }
  c.write(1, response(502));
  const [a, b] = c.client();
  assert.equal(a.spanId, '2222222222222222');
  assert.notEqual(b.spanId, '2222222222222222', 'two attempts never share a span');
  assert.equal(b.attempt, 1);
});

test('strip_path onto a service path (/fail/r7 -> /status/500/r7): 200 interleaved requests still pair up', () => {
  const c = new Conversation();
  const n = 200;
  for (let i = 0; i < n; i++) {
    c.open(i + 1, { direction: 'server' });
    c.read(i + 1, request('GET', `/fail/r${i}`));
  }
  for (const i of shuffle([...Array(n).keys()], 11)) {
    c.open(1000 + i, { direction: 'client' });
    c.write(1000 + i, request('GET', `/status/500/r${i}`));
  }
  for (const i of shuffle([...Array(n).keys()], 5)) {
    c.read(1000 + i, response(500, `r${i}`));
    c.write(i + 1, response(500, `r${i}`, { Via: 'kong/3.4.2' }));
  }
  const clients = c.client();
  assert.equal(clients.length, n);
  const right = clients.filter((ex) => parentOf(c, ex)?.path === `/fail/${ex.path!.split('/').pop()}`).length;
  assert.equal(right, n, `matched ${right}/${n}`);
});

test('request ids outweigh paths; an inbound request with an attempt in flight takes no other', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/x', { 'X-Kong-Request-Id': 'k-1' }));
  c.open(2, { direction: 'server' });
  c.read(2, request('GET', '/y', { 'X-Kong-Request-Id': 'k-2' }));
  c.open(3, { direction: 'client' });
  c.write(3, request('GET', '/y', { 'X-Kong-Request-Id': 'k-1' }));
  c.open(4, { direction: 'client' });
  c.write(4, request('GET', '/same'));
  c.open(5, { direction: 'client' });
  c.write(5, request('GET', '/same'));
  c.flushAll(c.nowNs + 1);
  const server = (conn: number) => c.server().find((s) => s.connId === conn)!.id;
  const client = (conn: number) => c.client().find((s) => s.connId === conn)!;
  assert.equal(client(3).parentId, server(1), 'x-kong-request-id');
  assert.equal(client(4).parentId, server(2), 'the most recent inbound request without an attempt');
  assert.equal(client(5).parentId, 0n, 'one attempt at a time: both have one in flight');
  assert.equal(c.stats().unmatchedAttempts, 1);
});

test('one attempt at a time: an inbound request whose attempt is in flight loses to one whose attempt failed', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/same'));
  c.open(10, { direction: 'client' });
  c.write(10, request('GET', '/same'));
  c.read(10, response(502)); // the first inbound request's attempt failed: it may retry
  c.open(2, { direction: 'server' });
  c.read(2, request('GET', '/same'));
  c.open(20, { direction: 'client' });
  c.write(20, request('GET', '/same')); // newest first: the second inbound request's attempt
  c.open(30, { direction: 'client' });
  c.write(30, request('GET', '/same')); // the retry: not the one whose attempt is still in flight
  c.flushAll(c.nowNs + 1);
  const server = (conn: number) => c.server().find((s) => s.connId === conn)!.id;
  const client = (conn: number) => c.client().find((s) => s.connId === conn)!;
  assert.equal(client(20).parentId, server(2));
  assert.equal(client(30).parentId, server(1), 'the retry of the failed attempt');
  assert.equal(client(30).attempt, 1);
});

test('emission order: a CLIENT frame is written right after its SERVER frame; late ones at once', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/o'));
  c.open(2, { direction: 'client' });
  c.write(2, request('GET', '/o'));
  const early = c.read(2, response(502));
  assert.equal(c.done.length, 0, 'the attempt waits for its server');
  c.open(3, { direction: 'client' });
  c.write(3, request('GET', '/o')); // a retry still in flight when the server ends
  c.write(1, response(200));
  assert.deepEqual(
    c.done.map((e) => e.direction),
    ['server', 'client'],
  );
  assert.equal(c.done[1].endNs, early);
  c.read(3, response(200));
  assert.deepEqual(
    c.done.map((e) => e.direction),
    ['server', 'client', 'client'],
    'the late attempt is written at once',
  );
  assert.equal(c.done[2].parentId, c.done[0].id, 'still names its server');
});

test('at most 32 attempts wait for one server; beyond that they are written at once', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/many', { 'X-Request-Id': 'm' }));
  for (let i = 0; i < 40; i++) {
    c.open(100 + i, { direction: 'client' });
    c.write(100 + i, request('GET', '/many', { 'X-Request-Id': 'm' }));
    c.read(100 + i, response(502));
  }
  assert.equal(c.done.length, 8, 'the 33rd and later are written at once');
  c.write(1, response(502));
  assert.equal(c.done.length, 41);
  assert.equal(c.done[8].direction, 'server');
  assert.ok(
    c.done.slice(9).every((e) => e.direction === 'client'),
    'the 32 held follow their server',
  );
  assert.equal(c.done[8].attempts, 40);
});
