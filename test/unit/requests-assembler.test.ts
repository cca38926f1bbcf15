import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conversation, request, response } from './helpers/conversation';
import type { HttpExchange } from '../../src/requests/types';

const byPath = (list: HttpExchange[], dir: 'server' | 'client') => list.filter((e) => e.direction === dir);

function shuffle<T>(items: T[], seed: number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const j = seed % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
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
  const clients = byPath(c.done, 'client');
  assert.equal(clients.length, n);
  let right = 0;
  for (const ex of clients) {
    const i = Number(ex.path.split('/').pop());
    if (ex.parent?.path === `/svc/items/${i}`) right++;
  }
  assert.equal(right, n, `matched ${right}/${n}`);
  for (const server of byPath(c.done, 'server')) {
    assert.equal(server.attempts?.length, 1, `one attempt for ${server.path}`);
    const a = server.attempts![0];
    assert.equal(a.ids?.traceId, server.ids?.traceId, 'same trace');
    assert.equal(a.ids?.parentSpanId, server.ids?.spanId, 'client span is a child of the server span');
  }
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
  const clients = byPath(c.heads, 'client');
  const right = clients.filter((ex) => expected.get(ex.connId) === ex.parent?.connId).length;
  assert.ok(right >= 0.99 * n, `matched ${right}/${n}`);
});

test('retries: a failed attempt then a second one, both under the same inbound request', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('POST', '/orders', { 'X-Request-Id': 'abc' }, '{}'));
  c.open(2, { direction: 'client' });
  c.write(2, request('POST', '/orders', { 'X-Request-Id': 'abc' }, '{}'));
  c.result('read', 2, -104);
  c.close(2);
  c.open(3, { direction: 'client' });
  c.write(3, request('POST', '/orders', { 'X-Request-Id': 'abc' }, '{}'));
  c.read(3, response(201));
  c.write(1, response(201));
  const server = c.done.find((e) => e.direction === 'server')!;
  assert.equal(server.attempts?.length, 2);
  assert.equal(server.attempts![0].errorCode, 'connection_reset');
  assert.equal(server.attempts![1].statusCode, 201);
  assert.notEqual(server.attempts![0].ids?.spanId, server.attempts![1].ids?.spanId, 'distinct spans');
});

test("Kong's own calls (no matching request) stay unparented; other workers never match", () => {
  const c = new Conversation();
  c.open(1, { direction: 'server', pid: 100 });
  c.read(1, request('GET', '/api/users', { 'User-Agent': 'curl/8' }));
  c.open(2, { direction: 'client', pid: 100 });
  c.write(2, request('POST', '/v1/traces', { 'User-Agent': 'lua-resty-http/0.17' }));
  c.open(3, { direction: 'client', pid: 200 });
  c.write(3, request('GET', '/api/users', { 'User-Agent': 'curl/8' }));
  const [, kongOwn, otherPid] = c.heads;
  assert.equal(kongOwn.parent, undefined, 'exporter call not attached');
  assert.equal(otherPid.parent, undefined, 'another worker');
  assert.equal(c.pipeline.stats().unmatchedAttempts, 2);
  assert.ok(kongOwn.ids?.traceId, 'still has ids');
});

test('trace context: inbound traceparent continued; Kong-propagated span id adopted by the CLIENT span', () => {
  const c = new Conversation();
  const inbound = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/t', { traceparent: inbound, tracestate: 'vendor=1' }));
  c.open(2, { direction: 'client' });
  c.write(2, request('GET', '/t', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01' }));
  c.open(3, { direction: 'client' });
  // plain forwarding of the inbound header: the caller's span id is not this CLIENT span's
  c.write(3, request('GET', '/t', { traceparent: inbound }));
  const [server, viaPlugin, forwarded] = c.heads;
  assert.deepEqual(
    { ...server.ids, spanId: undefined },
    {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: undefined,
      parentSpanId: '00f067aa0ba902b7',
      sampled: true,
      traceState: 'vendor=1',
      remoteParent: true,
    },
  );
  assert.equal(viaPlugin.parent, server);
  assert.equal(viaPlugin.ids?.spanId, '1111111111111111', 'span id Kong propagated');
  assert.equal(viaPlugin.ids?.parentSpanId, server.ids?.spanId);
  assert.equal(forwarded.parent, server, 'trace id match');
  assert.notEqual(forwarded.ids?.spanId, '00f067aa0ba902b7', 'not the caller span');
  assert.equal(forwarded.ids?.traceId, server.ids?.traceId);
});

test('a request without context whose upstream call carries a new trace joins that trace', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/n'));
  c.open(2, { direction: 'client' });
  c.write(2, request('GET', '/n', { traceparent: '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2222222222222222-01' }));
  const [server, client] = c.heads;
  assert.equal(client.parent, server);
  assert.equal(server.ids?.traceId, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'server adopted the propagated trace');
  assert.equal(client.ids?.spanId, '2222222222222222');
  assert.equal(client.ids?.parentSpanId, server.ids?.spanId);
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
  const clients = byPath(c.done, 'client');
  assert.equal(clients.length, n);
  const right = clients.filter((ex) => ex.parent?.path === `/fail/${ex.path.split('/').pop()}`).length;
  assert.equal(right, n, `matched ${right}/${n}`);
});
