/**
 * The native assembler's per-connection behaviour (ported from the TypeScript connection
 * tracker's tests): FIFO pairing, keep-alive and pipelining, timing, bodies, peers that go
 * away, upgrades, ignored ports, sockets older than the agent, bounds and flushes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeFlag } from '../../src/capture/exchange-layout';
import { LuaPhase, PeerState } from '../../src/capture/records';
import { Conversation, chunkedBody, request, response, split } from './helpers/assembler-conversation';

test('keep-alive: many requests on one server connection, FIFO pairing and timing', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server', localPort: 8000, peerPort: 50123 });
  for (let i = 0; i < 50; i++) {
    c.read(1, request('GET', `/items/${i}?page=${i}`, { 'User-Agent': 'ua' }));
    c.write(1, response(200 + (i % 3), `body${i}`, { Via: 'kong/3.4.2' }));
  }
  c.close(1);
  assert.equal(c.done.length, 50, 'all exchanges');
  const ex = c.done[7];
  assert.equal(ex.path, '/items/7');
  assert.equal(ex.query, 'page=7');
  assert.equal(ex.status, 201);
  assert.equal(ex.connRequest, 8);
  assert.equal(ex.direction, 'server');
  assert.equal(ex.host, 'example.test');
  assert.equal(ex.userAgent, 'ua');
  assert.ok(ex.flags & ExchangeFlag.Via, 'Via seen');
  assert.ok(ex.flags & ExchangeFlag.Response, 'response flag');
  assert.deepEqual(ex.local, { address: '127.0.0.1', port: 8000 });
  assert.deepEqual(ex.peer, { address: '10.0.0.2', port: 50123 });
  assert.equal(ex.responseBodySize, 5);
  assert.ok(ex.startNs < ex.responseStartNs && ex.responseStartNs === ex.endNs, 'timing order');
  assert.equal(ex.requestEndNs, ex.startNs, 'request in one read');
  assert.equal(ex.error, '');
  assert.match(ex.traceId, /^[0-9a-f]{32}$/, 'trace id');
  assert.match(ex.spanId, /^[0-9a-f]{16}$/, 'span id');
  assert.notEqual(ex.traceId, '0'.repeat(32));
  assert.equal(c.stats().connections, 0, 'closed connection forgotten');
  assert.equal(c.stats().inFlight, 0);
  assert.equal(new Set(c.done.map((e) => e.id)).size, 50, 'ids unique');
});

test('pipelined requests in one read get responses in order', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const t = c.read(1, request('GET', '/a') + request('POST', '/b', {}, 'xyz') + request('GET', '/c'));
  const r1 = c.write(1, response(200, 'A'));
  const r2 = c.write(1, response(404, 'B') + response(500, 'C'));
  assert.deepEqual(
    c.done.map((e) => [e.path, e.status, e.connRequest]),
    [
      ['/a', 200, 1],
      ['/b', 404, 2],
      ['/c', 500, 3],
    ],
  );
  assert.deepEqual(
    c.done.map((e) => e.startNs),
    [t, r1, r2],
    'each served once the previous answer ended',
  );
  assert.equal(c.done[0].endNs, r1);
  assert.equal(c.done[1].requestBodySize, 3);
});

test('a head split across 3 reads: start is the first read, requestEnd the last', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const head = request('GET', '/split', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  const t1 = c.read(1, head.slice(0, 10));
  c.read(1, head.slice(10, 60));
  const t3 = c.read(1, head.slice(60));
  c.write(1, response(200, 'ok'));
  assert.equal(c.done.length, 1);
  assert.equal(c.done[0].startNs, t1);
  assert.equal(c.done[0].requestEndNs, t3);
  assert.equal(c.done[0].requestHeadSize, head.length, 'head size');
  assert.equal(c.done[0].traceId, '0af7651916cd43dd8448eb211c80319c', 'traceparent continued');
  assert.equal(c.done[0].parentSpanId, 'b7ad6b7169203331');
});

test('request bodies skipped: content-length and chunked, large and truncated', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const body = Buffer.alloc(300_000, 'q');
  const t0 = c.read(1, `POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n`);
  let last = 0;
  for (const piece of split(body, 65536)) last = c.read(1, piece);
  c.write(1, response(201));
  const chunked = chunkedBody(200_000, 16384);
  c.read(1, 'POST /chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (const piece of split(chunked, 50_000)) last = c.read(1, piece);
  c.write(1, response(202));
  assert.equal(c.done.length, 2);
  assert.equal(c.done[0].requestBodySize, body.length);
  assert.equal(c.done[0].startNs, t0);
  assert.equal(c.done[1].requestBodySize, chunked.length);
  assert.equal(c.done[1].requestEndNs, last);
  assert.equal(c.done[1].status, 202);
  assert.equal(c.stats().protocolErrors, 0);
});

for (const mode of ['content-length', 'chunked'] as const) {
  test(`1 MiB response in many truncated writes (${mode})`, () => {
    const c = new Conversation();
    c.open(1, { direction: 'server' });
    c.read(1, request('GET', '/big'));
    const body = mode === 'chunked' ? chunkedBody(1 << 20, 4096) : Buffer.alloc(1 << 20, 'z');
    const head =
      mode === 'chunked'
        ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        : `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`;
    const writes = split(Buffer.concat([Buffer.from(head), body]), 65536 + 17);
    const first = c.write(1, writes[0]);
    let last = first;
    for (const w of writes.slice(1)) last = c.write(1, w);
    c.read(1, request('GET', '/next'));
    c.write(1, response(204));
    assert.equal(c.done.length, 2, 'the big one and the next');
    assert.equal(c.done[0].responseBodySize, body.length);
    assert.equal(c.done[0].responseStartNs, first);
    assert.equal(c.done[0].endNs, last, 'end = the write carrying the last byte');
    assert.equal(c.done[1].status, 204, 'in sync afterwards');
  });
}

test('a client disconnecting mid-response: still reported, with an error code', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/slow'));
  c.write(1, `HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`);
  const t = c.result('write', 1, -32); // EPIPE
  c.close(1);
  assert.equal(c.done.length, 1);
  assert.equal(c.done[0].error, 'write_error');
  assert.equal(c.done[0].status, 200, 'status of the head written');
  assert.equal(c.done[0].endNs, t, 'abandoned at the error');

  c.open(2, { direction: 'server' });
  c.read(2, request('GET', '/never'));
  const eof = c.result('read', 2, 0); // client EOF before any response
  c.close(2);
  assert.equal(c.done[1].error, 'client_closed');
  assert.equal(c.done[1].status, 499, 'as nginx logs a client that left before the answer');
  assert.equal(c.done[1].endNs, eof, 'abandoned when the client left');

  c.open(3, { direction: 'server' });
  c.read(3, request('GET', '/reset'));
  c.result('read', 3, -104);
  c.close(3);
  assert.equal(c.done[2].error, 'connection_reset');

  c.open(4, { direction: 'server' });
  c.read(4, request('GET', '/cut'));
  c.write(4, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
  c.close(4);
  assert.equal(c.done[3].error, 'incomplete_response');
  assert.equal(c.done[3].status, 200, 'a response that started keeps its status');
});

test('EAGAIN reads are not errors; a half-closed client still gets its response', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a'));
  c.result('read', 1, -11);
  c.result('read', 1, -4);
  c.result('read', 1, 0);
  c.write(1, response(200, 'ok'));
  c.close(1);
  assert.equal(c.done.length, 1);
  assert.equal(c.done[0].error, '', 'completed normally');
  assert.equal(c.done[0].status, 200);
});

test('upstream (client) connection: writes are requests, reads responses; until-close and upstream_closed', () => {
  const c = new Conversation();
  c.open(5, { direction: 'client', peerPort: 9000 });
  const t = c.write(5, request('GET', '/up'));
  c.read(5, 'HTTP/1.0 200 OK\r\n\r\npart1');
  const last = c.read(5, 'part2');
  c.result('read', 5, 0);
  assert.equal(c.done.length, 1, 'ended by EOF');
  assert.equal(c.done[0].direction, 'client');
  assert.equal(c.done[0].startNs, t);
  assert.equal(c.done[0].endNs, last);
  assert.equal(c.done[0].responseBodySize, 10);
  assert.equal(c.done[0].error, '');
  assert.equal(c.done[0].peer?.port, 9000);

  c.open(6, { direction: 'client' });
  c.write(6, request('GET', '/up2'));
  c.read(6, 'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc');
  c.result('read', 6, 0);
  c.close(6);
  assert.equal(c.done[1].error, 'upstream_closed');

  c.open(7, { direction: 'client' });
  c.write(7, request('GET', '/up3'));
  c.close(7, undefined, PeerState.Closed);
  c.open(8, { direction: 'client' });
  c.write(8, request('GET', '/up4'));
  c.close(8, undefined, PeerState.Reset);
  c.open(9, { direction: 'client' });
  c.write(9, request('GET', '/up5'));
  c.close(9);
  assert.deepEqual(
    c.done.slice(2).map((e) => [e.path, e.status, e.error]),
    [
      ['/up3', 0, 'upstream_closed'],
      ['/up4', 0, 'connection_reset'],
      ['/up5', 0, 'incomplete_response'],
    ],
  );
});

test('HEAD, 204, 304 and 100-continue', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('HEAD', '/h'));
  c.write(1, 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
  c.read(1, request('GET', '/nc'));
  c.write(1, 'HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n');
  c.read(1, request('GET', '/empty'));
  c.write(1, 'HTTP/1.1 204 No Content\r\nContent-Length: 1000\r\n\r\n');
  c.read(1, `POST /cont HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n`);
  c.write(1, 'HTTP/1.1 100 Continue\r\n\r\n');
  c.read(1, 'abc');
  c.write(1, response(201));
  assert.deepEqual(
    c.done.map((e) => [e.method, e.status, e.error]),
    [
      ['HEAD', 200, ''],
      ['GET', 304, ''],
      ['GET', 204, ''],
      ['POST', 201, ''],
    ],
  );
});

test('101 upgrades: reported, then ignored; Kong worker events not reported at all', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/ws', { Upgrade: 'websocket', Connection: 'Upgrade' }));
  c.write(1, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n');
  c.write(1, '\x81\x02hi');
  c.read(1, '\x81\x82garbage');
  c.close(1);
  assert.equal(c.done.length, 1);
  assert.equal(c.done[0].status, 101);
  assert.ok(c.done[0].flags & ExchangeFlag.Upgraded, 'upgraded flag');
  assert.equal(c.stats().notHttp, 0, 'frames after the upgrade are not garbage');
  assert.equal(c.stats().protocolErrors, 0);

  c.open(2, { direction: 'server' });
  c.read(2, request('GET', '/', { Upgrade: 'Kong-Worker-Events/1' }));
  c.write(2, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: Kong-Worker-Events/1\r\n\r\n');
  c.read(2, 'binary event stream');
  c.close(2);
  assert.equal(c.done.length, 1, 'worker events connection not reported');
  assert.equal(c.stats().inFlight, 0);
  assert.equal(c.stats().droppedRequests, 0, 'not a dropped request either');
});

test('a TLS handshake on a server socket: not HTTP, nothing reported', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]));
  c.write(1, Buffer.from([0x16, 0x03, 0x03]));
  c.read(1, request('GET', '/after-garbage'));
  c.close(1);
  assert.equal(c.done.length, 0);
  assert.equal(c.stats().notHttp, 1);

  // HTTP/2 with prior knowledge is followed as HTTP/2 (assembler-http2.test.ts): no phantom PRI request
  c.open(2, { direction: 'server' });
  c.read(2, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00');
  c.write(2, '\x00\x00\x00\x04\x01\x00\x00\x00\x00');
  c.close(2, undefined, PeerState.Closed);
  assert.equal(c.done.length, 0, 'no phantom PRI request');
  assert.equal(c.stats().notHttp, 1, 'HTTP/2 is not given up as not HTTP');
});

test('TLS or HTTP/2 bytes sent to an HTTP/1 listener: nginx answers 400, and that is reported', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, Buffer.from([0x16, 0x03, 0x01, 0x20, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]));
  c.write(1, response(400, 'bad', { Connection: 'close' }));
  c.close(1);
  c.open(2, { direction: 'server' });
  c.read(2, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  c.write(2, response(400, 'bad', { Connection: 'close' }));
  c.close(2);
  assert.equal(c.done.length, 2, 'both answered requests reported');
  assert.deepEqual(
    c.done.map((e) => [e.status, e.methodText ?? null, e.path ?? null]),
    [
      [400, null, null],
      [400, 'PRI', '*'],
    ],
    'status, method as sent, path',
  );
  assert.equal(c.stats().notHttp, 0, 'HTTP/1 after all');
});

test('ignored local ports (Admin API) and configurable ports', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server', localPort: 8001 });
  c.read(1, request('GET', '/services'));
  c.write(1, response(200));
  c.open(2, { direction: 'server', localPort: 8000 });
  c.read(2, request('GET', '/p'));
  c.write(2, response(200));
  assert.deepEqual(
    c.done.map((e) => e.path),
    ['/p'],
  );
  assert.equal(c.stats().ignored, 1);
  const d = new Conversation({ ignoredLocalPorts: [8000] });
  d.open(2, { direction: 'server', localPort: 8000 });
  d.read(2, request('GET', '/p'));
  d.write(2, response(200));
  assert.equal(d.done.length, 0);
});

test('UNKNOWN direction sockets decided from the first bytes', () => {
  const c = new Conversation();
  // older than the agent, no CONN_OPEN: a request read -> Kong is the server
  c.open(1, { direction: 'unknown', noOpen: true });
  c.read(1, request('GET', '/old-server'));
  c.write(1, response(200));
  // a request written -> Kong is the client
  c.open(2, { direction: 'unknown', noOpen: true });
  c.write(2, request('GET', '/old-client'));
  c.read(2, response(503));
  // the middle of a body first: wait for a message start
  c.open(3, { direction: 'unknown', noOpen: true });
  c.read(3, 'tail of an old body');
  c.write(3, response(200, 'old response'));
  c.read(3, request('GET', '/third'));
  c.write(3, response(200));
  // a response to a request before the agent: orphan, then in sync
  c.open(4, { direction: 'unknown', noOpen: true });
  c.write(4, response(200, 'x'));
  c.read(4, request('GET', '/fourth'));
  c.write(4, response(202));
  assert.deepEqual(
    c.done.map((e) => [e.path, e.direction, e.status]),
    [
      ['/old-server', 'server', 200],
      ['/old-client', 'client', 503],
      ['/third', 'server', 200],
      ['/fourth', 'server', 202],
    ],
  );
  assert.equal(c.done[0].local, undefined, 'no endpoints without CONN_OPEN');
  assert.equal(c.stats().orphanResponses, 2, 'the two answers to requests older than the agent');
});

test('a CONN_OPEN with UNKNOWN direction on an ignored port: ignored once the direction is known', () => {
  const c = new Conversation();
  c.open(1, { direction: 'unknown', localPort: 8001 });
  c.read(1, request('GET', '/admin'));
  c.write(1, response(200));
  assert.equal(c.done.length, 0);
  assert.equal(c.stats().ignored, 1);
});

test('bounded memory: max connections evicts the least recently used', () => {
  const c = new Conversation({ maxConnections: 10 });
  for (let i = 1; i <= 10; i++) {
    c.open(i, { direction: 'server' });
    c.read(i, request('GET', `/c${i}`));
  }
  c.result('read', 1, -11); // conn 1 is now the most recently used
  c.open(11, { direction: 'server' });
  const s = c.stats();
  assert.equal(s.connections, 10);
  assert.equal(s.evicted, 1);
  assert.equal(c.done.length, 1, 'the evicted connection reported its exchange');
  assert.equal(c.done[0].path, '/c2', 'least recently used went first');
  assert.equal(c.done[0].error, 'evicted');
});

test('idle flush reports stuck exchanges and forgets lost connections; flushAll on shutdown', () => {
  const c = new Conversation({ pendingTimeoutNs: 1e9, idleConnectionNs: 5e9 });
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/stuck'));
  c.open(2, { direction: 'server' });
  c.read(2, request('GET', '/ok'));
  c.write(2, response(200));
  c.flushIdle(c.nowNs + 0.5e9);
  assert.equal(c.done.length, 1, 'nothing stuck yet');
  c.flushIdle(c.nowNs + 2e9);
  assert.equal(c.done[1].path, '/stuck');
  assert.equal(c.done[1].error, 'timeout');
  assert.equal(c.done[1].endNs, c.nowNs + 2e9, 'ends at the flush');
  assert.equal(c.stats().connections, 1, 'idle connection kept a while');
  c.flushIdle(c.nowNs + 6e9);
  assert.equal(c.stats().connections, 0, 'then forgotten');

  c.open(3, { direction: 'server' });
  c.read(3, request('GET', '/at-shutdown'));
  c.open(4, { direction: 'client' });
  c.write(4, request('GET', '/up-at-shutdown'));
  c.flushAll(c.nowNs + 1);
  assert.deepEqual(
    c.done.slice(2).map((e) => [e.path, e.error]),
    [
      ['/at-shutdown', 'agent_stopped'],
      ['/up-at-shutdown', 'agent_stopped'],
    ],
  );
  assert.equal(c.stats().connections, 0);
  assert.equal(c.stats().inFlight, 0);
});

test('conn ids above 2^32', () => {
  const c = new Conversation();
  const id = 2 ** 40 + 5;
  c.open(id, { direction: 'server' });
  c.read(id, request('GET', '/big-id'));
  c.write(id, response(200));
  assert.equal(c.done[0].connId, id);
});

test('a client gone before the answer (nginx saw EPOLLRDHUP, read nothing): 499 from the socket state', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/slow'));
  c.close(1, undefined, PeerState.Closed);
  c.open(2, { direction: 'server' });
  c.read(2, request('GET', '/dropped'));
  c.close(2); // Kong closed on its own: not the client's doing
  c.open(3, { direction: 'server' });
  c.read(3, request('GET', '/reset'));
  c.close(3, undefined, PeerState.Reset);
  assert.deepEqual(
    c.done.map((d) => [d.path, d.status, d.error]),
    [
      ['/slow', 499, 'client_closed'],
      ['/dropped', 0, 'incomplete_response'],
      ['/reset', 0, 'connection_reset'],
    ],
  );
});

test('pipelined requests: each is timed from when the previous answer ended, as nginx does', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const readAt = c.read(1, request('GET', '/a') + request('GET', '/b'));
  const aEnd = c.write(1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  const bEnd = c.write(1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.equal(c.done[0].startNs, readAt);
  assert.equal(c.done[1].startNs, aEnd);
  assert.equal(c.done[1].requestEndNs, aEnd, 'request end moved with it');
  assert.equal(c.done[1].endNs, bEnd);
});

test('answered before its body arrived: done when the body has been read, as nginx logs it', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const start = c.read(1, 'POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n');
  c.write(1, 'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}');
  assert.equal(c.done.length, 0, 'still reading the request');
  const bodyRead = c.read(1, 'hello');
  assert.equal(c.done.length, 1);
  assert.equal(c.done[0].startNs, start);
  assert.equal(c.done[0].endNs, bodyRead);
  assert.equal(c.done[0].status, 404);
  assert.equal(c.done[0].requestBodySize, 5);
});

test('answered, and the client never sends the rest of its body: reported at the answer on close', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, 'POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n');
  const answered = c.write(1, 'HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n');
  c.close(1);
  assert.deepEqual(
    c.done.map((d) => [d.status, d.error, d.endNs]),
    [[413, '', answered]],
  );
});

test("Kong's Lua phases (Lua uprobes) add up on the request being served, pipelined ones in order", () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a') + request('GET', '/b'));
  c.lua(1, LuaPhase.Rewrite, 300);
  c.lua(1, LuaPhase.Access, 700);
  c.lua(1, LuaPhase.Access, 50);
  c.write(1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  c.lua(1, LuaPhase.HeaderFilter, 40);
  c.write(1, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  c.lua(1, LuaPhase.Log, 99); // after both answers: nothing open to carry it
  c.lua(1, 200, 5); // an unknown phase is ignored
  assert.equal(c.done[0].luaNs[LuaPhase.Rewrite], 300);
  assert.equal(c.done[0].luaNs[LuaPhase.Access], 750);
  assert.equal(c.done[1].luaNs[LuaPhase.HeaderFilter], 40);
  assert.equal(c.done[1].luaNs[LuaPhase.Access], 0);
  assert.equal(c.done[1].luaNs[LuaPhase.Log], 0);
});

test('a connection reopened with the same id finishes the old one first', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/old'));
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/new'));
  c.write(1, response(200));
  assert.deepEqual(
    c.done.map((d) => [d.path, d.status, d.error]),
    [
      ['/old', 0, 'incomplete_response'],
      ['/new', 200, ''],
    ],
  );
});

test('TLS: the DATA flag marks the connection and its exchanges; active requests by method and TLS', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server', localPort: 8443 });
  c.read(1, request('POST', '/secure', {}, 'abc'), { tls: true });
  const active = c.stats().activeServer;
  assert.equal(active[3 * 2 + 1], 1, 'one POST over TLS in flight');
  assert.equal(
    active.reduce((a, b) => a + b, 0),
    1,
  );
  c.write(1, response(200), { tls: true });
  assert.ok(c.done[0].flags & ExchangeFlag.Tls, 'TLS flag');
  assert.equal(
    c.stats().activeServer.reduce((a, b) => a + b, 0),
    0,
    'nothing active after',
  );
});
