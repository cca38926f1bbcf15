/**
 * HTTP/2 in the native assembler, through the binding, with records built byte for byte: h2c and
 * h2 over TLS on SERVER connections, grpc_pass (Kong as the HTTP/2 client) on CLIENT connections,
 * every frame type, HPACK state across streams and transfers, resets, GOAWAY, SETTINGS, connections
 * older than the agent, lost framing, and the bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeFlag } from '../../src/capture/exchange-layout';
import { PeerState } from '../../src/capture/records';
import { Conversation, request, response, type IoOptions } from './helpers/assembler-conversation';
import type { ExchangeView } from './helpers/frame-reader';
import { enrich, fakeClock } from './helpers/pipeline';
import { spanAttributes } from '../../src/otel/span';
import { ExchangeSpan } from '../../src/otel/spans';
import {
  ErrorCode,
  HpackEncoder,
  PREFACE,
  Setting,
  continuation,
  data,
  frame,
  goaway,
  headers,
  ping,
  priorityFrame,
  pushPromise,
  requestFields,
  responseFields,
  rstStream,
  settings,
  settingsAck,
  windowUpdate,
  type Field,
  type HeadersOptions,
} from './helpers/h2-wire';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** One HTTP/2 connection in a Conversation: Kong serves it ('server') or calls out on it ('client'). */
class H2Conn {
  /** encodes the client's header blocks / the server's */
  readonly clientHpack = new HpackEncoder();
  readonly serverHpack = new HpackEncoder();

  constructor(
    readonly c: Conversation,
    readonly id: number,
    readonly kind: 'server' | 'client' = 'server',
    o: { pid?: number; noOpen?: boolean; direction?: 'unknown' } = {},
  ) {
    c.open(id, { direction: o.direction ?? kind, pid: o.pid, noOpen: o.noOpen });
  }

  /** bytes the client sends: read by Kong on a server connection, written on a client one */
  client(bytes: Buffer | string, o: IoOptions | number = {}): number {
    return this.kind === 'server' ? this.c.read(this.id, bytes, o) : this.c.write(this.id, bytes, o);
  }

  server(bytes: Buffer | string, o: IoOptions | number = {}): number {
    return this.kind === 'server' ? this.c.write(this.id, bytes, o) : this.c.read(this.id, bytes, o);
  }

  /** the client's preface, its SETTINGS, then the server's SETTINGS and both ACKs */
  handshake(o: IoOptions = {}): void {
    this.client(Buffer.concat([PREFACE, settings([[Setting.EnablePush, 0]])]), o);
    this.server(Buffer.concat([settings([[Setting.MaxConcurrentStreams, 128]]), settingsAck()]), o);
    this.client(settingsAck(), o);
  }

  req(stream: number, fields: Field[], o: HeadersOptions = {}): Buffer {
    return headers(stream, this.clientHpack.encode(fields), o);
  }

  res(stream: number, fields: Field[], o: HeadersOptions = {}): Buffer {
    return headers(stream, this.serverHpack.encode(fields), o);
  }
}

const KONG_HEADERS: Field[] = [
  ['content-type', 'application/json'],
  ['via', 'kong/3.4.2'],
  ['x-kong-upstream-latency', '3'],
  ['x-kong-proxy-latency', '1'],
];

function only(c: Conversation): ExchangeView {
  assert.equal(c.done.length, 1, `one exchange (got ${c.done.length})`);
  return c.done[0];
}

test('h2c GET: one stream is one exchange with method, path, authority, status, sizes and timing', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  const block = h.clientHpack.encode(
    requestFields('GET', '/api/users/42?page=2', [
      ['user-agent', 'curl/7.88.1'],
      ['accept', '*/*'],
    ]),
  );
  const t0 = h.client(headers(1, block, { endStream: true }));
  const head = h.res(1, responseFields(200, KONG_HEADERS));
  const t1 = h.server(head);
  const t2 = h.server(data(1, '{"id":42}', { endStream: true }));
  const ex = only(c);
  assert.equal(ex.direction, 'server');
  assert.equal(ex.method, 'GET');
  assert.equal(ex.path, '/api/users/42');
  assert.equal(ex.query, 'page=2');
  assert.equal(ex.host, 'kong.test:8443', ':authority is the host');
  assert.equal(ex.userAgent, 'curl/7.88.1');
  assert.equal(ex.status, 200);
  assert.equal(ex.httpVersion, 20);
  assert.equal(ex.streamId, 1);
  assert.equal(ex.connRequest, 1, 'the preface is not a request');
  assert.equal(ex.error, '');
  assert.ok(ex.flags & ExchangeFlag.Via, 'Via');
  assert.equal(ex.kongUpstreamLatencyMs, 3);
  assert.equal(ex.kongProxyLatencyMs, 1);
  assert.equal(ex.startNs, t0, 'first byte of the request HEADERS');
  assert.equal(ex.requestEndNs, t0, 'END_STREAM on HEADERS');
  assert.equal(ex.responseStartNs, t1, 'first byte of the response HEADERS');
  assert.equal(ex.endNs, t2, 'last byte of the response (END_STREAM)');
  assert.equal(ex.responseBodySize, 9);
  assert.equal(ex.requestBodySize, 0);
  assert.equal(ex.requestHeadSize, 9 + block.length, 'HEADERS frame on the wire');
  assert.equal(ex.responseHeadSize, head.length);
  assert.equal(ex.flags & ExchangeFlag.Tls, 0, 'cleartext');
  const s = c.stats();
  assert.equal(s.inFlight, 0);
  assert.equal(s.notHttp, 0);
  assert.equal(s.protocolErrors, 0);
  c.close(1);
  assert.equal(c.done.length, 1, 'nothing more at close');
  assert.equal(c.stats().connections, 0);
});

test('h2 over TLS (SSL_read/SSL_write plaintext): same framing, url.scheme https', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  const tls = { tls: true };
  h.handshake(tls);
  h.client(h.req(1, requestFields('POST', '/echo/tls', [['content-type', 'application/json']])), tls);
  const last = h.client(data(1, '{"a":1}', { endStream: true }), tls);
  h.server(h.res(1, responseFields(201)), tls);
  const end = h.server(data(1, 'created', { endStream: true }), tls);
  const ex = only(c);
  assert.ok(ex.flags & ExchangeFlag.Tls, 'TLS flag');
  assert.equal(ex.method, 'POST');
  assert.equal(ex.path, '/echo/tls');
  assert.equal(ex.contentType, 'application/json');
  assert.equal(ex.status, 201);
  assert.equal(ex.requestBodySize, 7);
  assert.equal(ex.requestEndNs, last, 'request ends with its END_STREAM DATA');
  assert.equal(ex.endNs, end);
  assert.equal(ex.httpVersion, 20);
});

test('concurrent streams on one connection: answered out of order, the HPACK tables follow every block', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  const starts = new Map<number, number>();
  // 20 streams opened at once, in one read, sharing indexed headers (user-agent, big cookies)
  const big = 'x'.repeat(900);
  const blocks: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const stream = 1 + 2 * i;
    blocks.push(
      h.req(
        stream,
        requestFields('GET', `/api/r${i}`, [
          ['user-agent', 'h2-test/1'],
          ['x-big', big],
          ['x-seq', `v${i}`],
        ]),
        { endStream: true },
      ),
    );
  }
  const t = h.client(Buffer.concat(blocks));
  for (let i = 0; i < 20; i++) starts.set(1 + 2 * i, t);
  assert.ok(h.clientHpack.entries > 0, 'the client indexed fields');
  // answered in reverse order, each in its own write, some with a body in two DATA frames
  const ends = new Map<number, number>();
  for (let i = 19; i >= 0; i--) {
    const stream = 1 + 2 * i;
    h.server(h.res(stream, responseFields(i % 3 === 0 ? 404 : 200, [['server', 'kong/3.4.2']])));
    h.server(data(stream, 'ab'));
    ends.set(stream, h.server(data(stream, 'cde', { endStream: true })));
  }
  assert.equal(c.done.length, 20);
  for (const ex of c.done) {
    const i = Number(ex.path!.slice('/api/r'.length));
    assert.equal(ex.streamId, 1 + 2 * i, `stream of ${ex.path}`);
    assert.equal(ex.userAgent, 'h2-test/1', `indexed user-agent on ${ex.path}`);
    assert.equal(ex.host, 'kong.test:8443');
    assert.equal(ex.status, i % 3 === 0 ? 404 : 200, `status of ${ex.path}`);
    assert.ok(ex.flags & ExchangeFlag.ServerKong, 'Server: kong/');
    assert.equal(ex.connRequest, i + 1, 'streams in the order they were opened');
    assert.equal(ex.startNs, starts.get(ex.streamId));
    assert.equal(ex.endNs, ends.get(ex.streamId));
    assert.equal(ex.responseBodySize, 5);
  }
  assert.equal(new Set(c.done.map((e) => e.spanId)).size, 20, 'a span each');
  assert.equal(c.stats().inFlight, 0);
});

test('header blocks split over CONTINUATION frames and over transfers, interleaved with other traffic', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  const other = new H2Conn(c, 2);
  h.handshake();
  other.handshake();
  const fields = requestFields('GET', `/api/long/${'p'.repeat(3000)}`, [
    ['traceparent', TRACEPARENT],
    ['tracestate', 'vendor=a'],
    ['user-agent', 'split/1'],
    ['x-filler', 'f'.repeat(5000)],
    ['content-type', 'text/plain'],
  ]);
  const bytes = h.req(1, fields, { endStream: true, fragment: 1000, padding: 7, priority: true });
  // cut the frames at awkward places: inside a frame header, inside a field, at a frame boundary
  const cuts = [5, 1003, 2100, 4000, 4020, 7777, bytes.length];
  let from = 0;
  const t0 = c.nowNs + 1000;
  for (const cut of cuts) {
    h.client(bytes.subarray(from, cut));
    from = cut;
    // another connection decodes its own blocks in between, and the server side writes
    other.client(other.req(1 + 2 * cuts.indexOf(cut), requestFields('GET', `/other/${cut}`), { endStream: true }));
    h.server(ping(true));
  }
  h.server(h.res(1, responseFields(200)));
  h.server(data(1, 'ok', { endStream: true }));
  const ex = c.done.find((e) => e.connId === 1);
  assert.ok(ex, 'the split request is reported');
  assert.equal(ex.path, `/api/long/${'p'.repeat(3000)}`);
  assert.equal(ex.traceId, '0af7651916cd43dd8448eb211c80319c', 'traceparent read from a CONTINUATION');
  assert.equal(ex.parentSpanId, 'b7ad6b7169203331');
  assert.equal(ex.traceState, 'vendor=a');
  assert.equal(ex.userAgent, 'split/1');
  assert.equal(ex.contentType, 'text/plain');
  assert.equal(ex.startNs, t0, 'start: the first transfer of the HEADERS frame');
  assert.equal(c.stats().protocolErrors, 0);
  // the other connection's streams were never answered: reported at its close
  other.c.close(2, undefined, PeerState.Closed);
  const others = c.done.filter((e) => e.connId === 2);
  assert.equal(others.length, cuts.length);
  for (const o of others) assert.equal(o.status, 499, 'client gone before the answer');
  assert.deepEqual(
    others.map((o) => o.path).sort(),
    cuts.map((cut) => `/other/${cut}`).sort(),
    'its blocks decoded while the first block was open',
  );
});

test('padding, priority, PRIORITY / PING / WINDOW_UPDATE frames and unknown frame types are skipped by length', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(Buffer.concat([priorityFrame(3), windowUpdate(0, 65535), frame(0xb, 0, 0, Buffer.from('origin'))]));
  h.client(
    h.req(1, requestFields('PUT', '/api/pad', [['content-type', 'application/octet-stream']]), {
      padding: 30,
      priority: true,
    }),
  );
  h.client(data(1, 1000, { padding: 200 }));
  h.client(data(1, 24, { padding: 0, endStream: true }));
  h.server(
    Buffer.concat([windowUpdate(1, 1024), ping(false), h.res(1, responseFields(204), { endStream: true, padding: 3 })]),
  );
  const ex = only(c);
  assert.equal(ex.method, 'PUT');
  assert.equal(ex.status, 204);
  assert.equal(ex.requestBodySize, 1024, 'data without padding');
  assert.equal(ex.contentType, 'application/octet-stream');
  assert.equal(c.stats().protocolErrors, 0);
});

test('a response HEADERS with END_STREAM ends the exchange; interim 100 and 103 heads are not the answer', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(h.req(1, requestFields('POST', '/upload', [['expect', '100-continue']])));
  h.server(h.res(1, responseFields(100)));
  h.client(data(1, 10, { endStream: true }));
  h.server(h.res(1, responseFields(103, [['link', '</a.css>; rel=preload']])));
  const t = h.server(h.res(1, responseFields(304)));
  const end = h.server(data(1, 0, { endStream: true }));
  const ex = only(c);
  assert.equal(ex.status, 304);
  assert.equal(ex.responseStartNs, t, 'the final head starts the response');
  assert.equal(ex.endNs, end);
});

test('gRPC: path /pkg.Service/Method, content-type, grpc-status from the trailers', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  const grpcReq = (stream: number, method: string): Buffer =>
    h.req(
      stream,
      requestFields('POST', `/kw.test.Echo/${method}`, [
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
        ['grpc-timeout', '5S'],
        ['user-agent', 'grpc-node-js/1.14.7'],
      ]),
    );
  // a unary call: message, response head, message, trailers
  h.client(Buffer.concat([grpcReq(1, 'Say'), data(1, Buffer.from([0, 0, 0, 0, 3, 10, 1, 97]), { endStream: true })]));
  h.server(h.res(1, responseFields(200, [['content-type', 'application/grpc']])));
  h.server(data(1, Buffer.from([0, 0, 0, 0, 3, 10, 1, 97])));
  const end = h.server(
    h.res(
      1,
      [
        ['grpc-status', '0'],
        ['grpc-message', ''],
      ],
      { endStream: true },
    ),
  );
  // a failed call: trailers-only (one HEADERS with :status and grpc-status, END_STREAM)
  h.client(Buffer.concat([grpcReq(3, 'Fail'), data(3, Buffer.from([0, 0, 0, 0, 0]), { endStream: true })]));
  h.server(
    h.res(
      3,
      responseFields(200, [
        ['content-type', 'application/grpc'],
        ['grpc-status', '5'],
        ['grpc-message', 'not found'],
      ]),
      { endStream: true },
    ),
  );
  assert.equal(c.done.length, 2);
  const [ok, failed] = c.done;
  assert.equal(ok.path, '/kw.test.Echo/Say');
  assert.equal(ok.contentType, 'application/grpc');
  assert.equal(ok.grpcStatus, 0, 'grpc-status 0 from the trailers');
  assert.equal(ok.endNs, end, 'the call ends with its trailers');
  assert.equal(ok.responseBodySize, 8);
  assert.equal(failed.path, '/kw.test.Echo/Fail');
  assert.equal(failed.grpcStatus, 5, 'trailers-only response');
  assert.equal(failed.status, 200);
});

test('trace context from h2 headers: traceparent + tracestate, b3 single, b3 multi, none', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(
    h.req(
      1,
      requestFields('GET', '/t/w3c', [
        ['traceparent', TRACEPARENT],
        ['tracestate', 'k=v,x=y'],
      ]),
      { endStream: true },
    ),
  );
  h.client(
    h.req(3, requestFields('GET', '/t/b3', [['b3', '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1']]), {
      endStream: true,
    }),
  );
  h.client(
    h.req(
      5,
      requestFields('GET', '/t/b3multi', [
        ['x-b3-traceid', '463ac35c9f6413ad'],
        ['x-b3-spanid', 'a2fb4a1d1a96d312'],
        ['x-b3-sampled', '1'],
      ]),
      { endStream: true },
    ),
  );
  h.client(h.req(7, requestFields('GET', '/t/none'), { endStream: true }));
  for (const s of [1, 3, 5, 7]) h.server(h.res(s, responseFields(200), { endStream: true }));
  const by = new Map(c.done.map((e) => [e.path, e]));
  assert.equal(by.get('/t/w3c')!.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(by.get('/t/w3c')!.traceState, 'k=v,x=y');
  assert.ok(by.get('/t/w3c')!.flags & ExchangeFlag.CallerContext);
  assert.equal(by.get('/t/b3')!.traceId, '80f198ee56343ba864fe8b2a57d3eff7');
  assert.equal(by.get('/t/b3')!.parentSpanId, 'e457b5a2e4d86bd1');
  assert.equal(by.get('/t/b3multi')!.traceId, '0000000000000000463ac35c9f6413ad');
  assert.equal(by.get('/t/none')!.flags & ExchangeFlag.CallerContext, 0, 'a new trace');
});

test('upstream HTTP/1.1 attempts link to their h2 stream as exactly as to HTTP/1.1 requests', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1, 'server', { pid: 300 });
  h.handshake();
  const n = 16;
  // every stream is in flight before any attempt starts
  for (let i = 0; i < n; i++) {
    h.client(
      h.req(
        1 + 2 * i,
        requestFields(
          'GET',
          `/api/h2/r${i}`,
          i % 2 === 0 ? [['traceparent', TRACEPARENT.replace('b7ad', `b7${(10 + i).toString(16)}`)]] : [],
        ),
        {
          endStream: true,
        },
      ),
    );
  }
  // attempts in a shuffled order, each on its own keep-alive upstream connection
  const order = [5, 0, 9, 13, 2, 15, 7, 1, 11, 4, 8, 14, 3, 12, 6, 10];
  order.forEach((i, k) => {
    const up = 100 + k;
    c.open(up, { direction: 'client', pid: 300 });
    c.write(up, request('GET', `/api/h2/r${i}`, { 'X-Forwarded-Proto': 'https' }));
    c.read(up, response(200, `body${i}`));
    c.close(up);
  });
  for (let i = 0; i < n; i++) {
    h.server(h.res(1 + 2 * i, responseFields(200, [['via', 'kong/3.4.2']])));
    h.server(data(1 + 2 * i, `body${i}`, { endStream: true }));
  }
  const servers = c.server();
  const clients = c.client();
  assert.equal(servers.length, n);
  assert.equal(clients.length, n);
  const byId = new Map(servers.map((s) => [s.id, s]));
  for (const cl of clients) {
    const parent = byId.get(cl.parentId);
    assert.ok(parent, `attempt ${cl.path} has a parent`);
    assert.equal(parent.path, cl.path, `attempt ${cl.path} linked to its own stream`);
    assert.equal(cl.traceId, parent.traceId);
    assert.equal(cl.parentSpanId, parent.spanId);
    assert.equal(parent.attempts, 1);
  }
  assert.equal(c.stats().unmatchedAttempts, 0);
});

test('grpc_pass: Kong writes the preface on an upstream connection, each stream a CLIENT exchange of its h2 request', () => {
  const c = new Conversation();
  const down = new H2Conn(c, 1, 'server', { pid: 400 });
  down.handshake();
  down.client(
    down.req(
      1,
      requestFields('POST', '/kw.test.Echo/Say', [
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
        ['traceparent', TRACEPARENT],
      ]),
    ),
  );
  down.client(data(1, 8, { endStream: true }));
  const up = new H2Conn(c, 2, 'client', { pid: 400 });
  const t0 = up.client(
    Buffer.concat([
      PREFACE,
      settings([
        [Setting.EnablePush, 0],
        [Setting.InitialWindowSize, 2147483647],
      ]),
      windowUpdate(0, 2147418112),
      up.req(
        1,
        [
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', '/kw.test.Echo/Say'],
          [':authority', '127.0.0.1:19194'],
          ['content-type', 'application/grpc'],
          ['te', 'trailers'],
          ['traceparent', TRACEPARENT],
        ],
        {},
      ),
      data(1, 8, { endStream: true }),
    ]),
  );
  up.server(
    Buffer.concat([
      settings([]),
      settingsAck(),
      up.res(1, responseFields(200, [['content-type', 'application/grpc']])),
    ]),
  );
  up.server(data(1, 8));
  const upEnd = up.server(up.res(1, [['grpc-status', '0']], { endStream: true }));
  down.server(down.res(1, responseFields(200, [['content-type', 'application/grpc']])));
  down.server(data(1, 8));
  down.server(down.res(1, [['grpc-status', '0']], { endStream: true }));
  const [client] = c.client();
  const [server] = c.server();
  assert.ok(client && server, 'both sides reported');
  assert.equal(client.httpVersion, 20);
  assert.equal(client.streamId, 1);
  assert.equal(client.path, '/kw.test.Echo/Say');
  assert.equal(client.grpcStatus, 0);
  assert.equal(client.startNs, t0);
  assert.equal(client.endNs, upEnd);
  assert.equal(client.parentId, server.id, 'the attempt is the h2 request`s');
  assert.equal(client.traceId, server.traceId);
  assert.equal(server.attempts, 1);
  assert.equal(server.grpcStatus, 0);
  assert.equal(c.stats().notHttp, 0, 'the preface Kong wrote is not "not HTTP"');
});

test('RST_STREAM: client cancel (499), after the head (status kept), REFUSED_STREAM (never served), server abort', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  for (const s of [1, 3, 5, 7]) h.client(h.req(s, requestFields('GET', `/rst/${s}`), { endStream: true }));
  const cancel = h.client(rstStream(1, ErrorCode.Cancel));
  h.server(h.res(3, responseFields(200)));
  h.server(data(3, 100));
  const cancel3 = h.client(rstStream(3, ErrorCode.Cancel));
  h.server(rstStream(5, ErrorCode.RefusedStream));
  h.server(h.res(7, responseFields(200)));
  const abort = h.server(rstStream(7, ErrorCode.ProtocolError));
  const by = new Map(c.done.map((e) => [e.path, e]));
  assert.equal(c.done.length, 3, 'the refused stream is not reported');
  assert.equal(by.get('/rst/1')!.status, 499);
  assert.equal(by.get('/rst/1')!.error, 'client_closed');
  assert.equal(by.get('/rst/1')!.endNs, cancel);
  assert.equal(by.get('/rst/3')!.status, 200, 'a started answer keeps its status');
  assert.equal(by.get('/rst/3')!.error, 'client_closed');
  assert.equal(by.get('/rst/3')!.endNs, cancel3);
  assert.equal(by.get('/rst/7')!.error, 'incomplete_response');
  assert.equal(by.get('/rst/7')!.endNs, abort);
  assert.equal(c.stats().droppedRequests, 1, 'REFUSED_STREAM counted');
  assert.equal(c.stats().inFlight, 0);
});

test('GOAWAY: streams above the last id were never served; the rest end normally; a client GOAWAY changes nothing', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  for (const s of [1, 3, 5, 7]) h.client(h.req(s, requestFields('GET', `/ga/${s}`), { endStream: true }));
  h.client(goaway(0, ErrorCode.NoError));
  h.server(goaway(3, ErrorCode.NoError, 'graceful'));
  h.client(h.req(9, requestFields('GET', '/ga/9'), { endStream: true }));
  for (const s of [1, 3]) h.server(h.res(s, responseFields(200), { endStream: true }));
  c.close(1);
  assert.deepEqual(
    c.done.map((e) => [e.path, e.status, e.error]),
    [
      ['/ga/1', 200, ''],
      ['/ga/3', 200, ''],
    ],
  );
  assert.equal(c.stats().droppedRequests, 3, 'streams 5, 7 and 9 never served');

  // on an upstream connection the attempts the upstream refused are reported as failed
  const up = new H2Conn(c, 2, 'client');
  up.client(Buffer.concat([PREFACE, settings()]));
  for (const s of [1, 3])
    up.client(up.req(s, requestFields('POST', `/up/${s}`, [], '127.0.0.1:9000', 'http'), { endStream: true }));
  const t = up.server(goaway(1, ErrorCode.NoError));
  up.server(up.res(1, responseFields(200), { endStream: true }));
  const ups = c.client();
  assert.deepEqual(
    ups.map((e) => [e.path, e.error]),
    [
      ['/up/3', 'upstream_closed'],
      ['/up/1', ''],
    ],
  );
  assert.equal(ups[0].endNs, t);
});

test('connection ends with streams in flight: client FIN (499), reset, timeout, agent stop', () => {
  const c = new Conversation({ pendingTimeoutNs: 1_000_000 });
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(h.req(1, requestFields('GET', '/end/1'), { endStream: true }));
  h.client(h.req(3, requestFields('GET', '/end/3'), { endStream: true }));
  h.server(h.res(3, responseFields(200)));
  h.server(data(3, 10));
  const eof = c.result('read', 1, 0);
  c.close(1);
  assert.deepEqual(
    c.done.map((e) => [e.path, e.status, e.error, e.endNs === eof]),
    [
      ['/end/3', 200, 'client_closed', true],
      ['/end/1', 499, 'client_closed', true],
    ],
  );

  const h2 = new H2Conn(c, 2);
  h2.handshake();
  h2.client(h2.req(1, requestFields('GET', '/end/timeout'), { endStream: true }));
  c.flushIdle(c.nowNs + 2_000_000);
  const timedOut = c.done.find((e) => e.path === '/end/timeout');
  assert.equal(timedOut?.error, 'timeout');

  const h3 = new H2Conn(c, 3);
  h3.handshake();
  h3.client(h3.req(1, requestFields('GET', '/end/stop'), { endStream: true }));
  c.flushAll(c.nowNs + 10);
  assert.equal(c.done.find((e) => e.path === '/end/stop')?.error, 'agent_stopped');
  assert.equal(c.stats().inFlight, 0);
  assert.equal(c.stats().connections, 0);
});

test('a request head that never ended (HEADERS without END_HEADERS, then close) was never served', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  const block = h.clientHpack.encode(requestFields('GET', '/never/ends'));
  h.client(frame(0x1, 0x1, 1, block)); // END_STREAM, no END_HEADERS
  c.close(1, undefined, PeerState.Closed);
  assert.equal(c.done.length, 0);
  assert.equal(c.stats().droppedRequests, 1);
});

test('SETTINGS_HEADER_TABLE_SIZE: a smaller table applies from the encoder`s ACK on; a larger one is followed up to the bound', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.client(Buffer.concat([PREFACE, settings()]));
  // nginx (the decoder of the client's blocks) allows only 256 bytes
  h.server(settings([[Setting.HeaderTableSize, 256]]));
  // the client sends a request before it has seen those SETTINGS: its table is still 4096
  h.client(h.req(1, requestFields('GET', '/tbl/1', [['x-a', 'a'.repeat(600)]]), { endStream: true }));
  h.client(h.req(3, requestFields('GET', '/tbl/3', [['x-a', 'a'.repeat(600)]]), { endStream: true }));
  // then it acknowledges, and its next block starts with a size update
  h.client(settingsAck());
  h.clientHpack.resize(256);
  h.client(h.req(5, requestFields('GET', '/tbl/5', [['user-agent', 'small-table']]), { endStream: true }));
  h.client(h.req(7, requestFields('GET', '/tbl/7', [['user-agent', 'small-table']]), { endStream: true }));
  // the client allows the server a table far above the followed bound, and the server uses it
  h.client(settings([[Setting.HeaderTableSize, 1 << 20]]));
  h.server(settingsAck());
  h.serverHpack.resize(1 << 20);
  for (const s of [1, 3, 5]) h.server(h.res(s, responseFields(200, [['x-b', 'b'.repeat(100)]]), { endStream: true }));
  h.server(h.res(7, responseFields(202), { endStream: true }));
  const by = new Map(c.done.map((e) => [e.path, e]));
  assert.equal(c.done.length, 4);
  assert.equal(by.get('/tbl/5')?.userAgent, 'small-table');
  assert.equal(by.get('/tbl/7')?.userAgent, 'small-table', 'indexed in the 256-byte table');
  assert.equal(c.stats().protocolErrors, 0);
  // the server's table went past the bound: its blocks are read from the static table only, and
  // nginx's blocks never reference its dynamic table, so statuses are still read
  assert.equal(by.get('/tbl/1')?.status, 200);
  assert.equal(by.get('/tbl/7')?.status, 202);
});

test('an HPACK block that does not decode: its fields are lost, later blocks are read from the static table', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  // indexed field 200: the dynamic table has no such entry
  h.client(headers(1, Buffer.from([0x82, 0xff, 0x31]), { endStream: true }));
  h.client(h.req(3, requestFields('POST', '/after/bad-block'), { endStream: true }));
  h.server(h.res(1, responseFields(400), { endStream: true }));
  h.server(h.res(3, responseFields(200), { endStream: true }));
  assert.equal(c.done.length, 2);
  const [bad, next] = c.done;
  assert.equal(bad.status, 400, 'the stream is still reported');
  assert.equal(bad.method, 'GET', 'fields before the fault are kept');
  assert.equal(next.method, 'POST');
  assert.equal(next.path, '/after/bad-block', 'literals and static references still decode');
});

test('a connection older than the agent: direction from its frames, streams reported with what the static table and literals say', () => {
  const c = new Conversation();
  // the client's encoder has history the agent never saw
  const h = new H2Conn(c, 1, 'server', { noOpen: true, direction: 'unknown' });
  h.clientHpack.encode(requestFields('GET', '/before-the-agent', [['user-agent', 'old/1']]));
  // bytes that say nothing about the direction are passed over
  h.server(data(13, 100));
  h.client(windowUpdate(0, 1000));
  const t = h.client(h.req(15, requestFields('GET', '/seen/after', [['user-agent', 'old/1']]), { endStream: true }));
  h.server(h.res(15, responseFields(200, [['server', 'kong/3.4.2']])));
  const end = h.server(data(15, 5, { endStream: true }));
  h.client(h.req(17, requestFields('GET', '/before-the-agent', [['user-agent', 'old/1']]), { endStream: true }));
  h.server(h.res(17, responseFields(404), { endStream: true }));
  assert.equal(c.done.length, 2);
  const [a, b] = c.done;
  assert.equal(a.direction, 'server');
  assert.equal(a.method, 'GET', ':method from the static table');
  assert.equal(a.path, '/seen/after', 'a literal path');
  assert.equal(a.host, undefined, ':authority was an entry of the unseen table');
  assert.equal(a.userAgent, undefined, 'so was the user agent');
  assert.equal(a.status, 200);
  assert.ok(a.flags & ExchangeFlag.ServerKong);
  assert.equal(a.startNs, t);
  assert.equal(a.endNs, end);
  assert.equal(a.streamId, 15);
  assert.equal(b.path, undefined, 'a path the unseen table holds is unknown');
  assert.equal(b.status, 404);
});

test('framing lost in bytes the kernel did not copy: streams finished with what is known, the connection no longer followed', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(h.req(1, requestFields('GET', '/lost/1'), { endStream: true }));
  h.client(h.req(3, requestFields('GET', '/lost/3'), { endStream: true }));
  h.server(h.res(1, responseFields(200)));
  // one big DATA frame whose middle is not copied: skipped by length, nothing lost
  h.server(data(1, 100_000, { endStream: true }), { capture: 16384 });
  assert.equal(c.done.length, 1, 'stream 1 ended, its END_STREAM frame header was copied');
  assert.equal(c.done[0].responseBodySize, 100_000);
  // a write of several frames whose headers fall past the copied bytes
  h.server(h.res(3, responseFields(200)));
  const t = h.server(Buffer.concat([data(3, 16384), data(3, 16384), data(3, 100, { endStream: true })]), {
    capture: 16384,
  });
  assert.equal(c.done.length, 2);
  assert.equal(c.done[1].path, '/lost/3');
  assert.equal(c.done[1].status, 200);
  assert.equal(c.done[1].error, 'incomplete_response', 'what is known: its head, not its end');
  assert.equal(c.done[1].endNs, t);
  assert.equal(c.stats().lostHeads, 1, 'counted');
  // nothing after it is read
  h.client(h.req(5, requestFields('GET', '/lost/5'), { endStream: true }));
  h.server(h.res(5, responseFields(200), { endStream: true }));
  assert.equal(c.done.length, 2);
  assert.equal(c.stats().inFlight, 0);
});

test('a frame header in a tail the kernel copied is still read', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(h.req(1, requestFields('GET', '/tail'), { endStream: true }));
  h.server(h.res(1, responseFields(200)));
  // DATA without END_STREAM, then an empty DATA with END_STREAM: its 9 bytes are in the last 16
  const t = h.server(Buffer.concat([data(1, 50_000), data(1, 0, { endStream: true })]), { capture: 16384 });
  const ex = only(c);
  assert.equal(ex.endNs, t);
  assert.equal(ex.error, '');
  assert.equal(ex.responseBodySize, 50_000);
});

test('bounds: streams over maxPendingPerConnection are counted, not reported; long values and paths are cut', () => {
  const c = new Conversation({ maxPendingPerConnection: 4 });
  const h = new H2Conn(c, 1);
  h.handshake();
  for (let i = 0; i < 6; i++) h.client(h.req(1 + 2 * i, requestFields('GET', `/b/${i}`), { endStream: true }));
  assert.equal(c.stats().droppedRequests, 2);
  for (let i = 0; i < 6; i++) h.server(h.res(1 + 2 * i, responseFields(200), { endStream: true }));
  assert.deepEqual(
    c.done.map((e) => e.path),
    ['/b/0', '/b/1', '/b/2', '/b/3'],
  );
  // room again once those ended; a path past KW_MAX_TARGET and a user agent past 512 bytes
  const longPath = `/b/${'q'.repeat(10_000)}`;
  h.client(h.req(13, requestFields('GET', longPath, [['user-agent', 'u'.repeat(2000)]]), { endStream: true }));
  h.server(h.res(13, responseFields(200), { endStream: true }));
  const last = c.done[c.done.length - 1];
  assert.equal(last.path, longPath.slice(0, 8192));
  assert.ok(last.flags & ExchangeFlag.Truncated, 'target cut');
  assert.equal(last.userAgent!.length, 512);
  assert.equal(c.stats().inFlight, 0);
});

test('protocol errors: a CONTINUATION out of place, garbage after the preface', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(h.req(1, requestFields('GET', '/pe/1'), { endStream: true }));
  h.client(continuation(1, Buffer.from([0x82]), true));
  assert.equal(c.done.length, 1, 'the stream in flight is finished');
  assert.equal(c.done[0].error, 'incomplete_response');
  assert.equal(c.stats().protocolErrors, 1);

  const g = new H2Conn(c, 2);
  g.client(Buffer.concat([PREFACE, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]));
  g.server(settings());
  g.client(g.req(1, requestFields('GET', '/pe/2'), { endStream: true }));
  assert.equal(c.done.length, 1, 'nothing read after bytes that are not frames');
  assert.equal(c.stats().inFlight, 0);
});

test('a preface on an HTTP/1 listener: nginx answers 400, reported as HTTP/1; streams read meanwhile never were', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.client(Buffer.concat([PREFACE, settings(), h.req(1, requestFields('GET', '/h2-on-h1'), { endStream: true })]));
  h.server(response(400, 'bad', { Connection: 'close' }));
  c.close(1);
  const ex = only(c);
  assert.equal(ex.status, 400);
  assert.equal(ex.methodText, 'PRI');
  assert.equal(ex.httpVersion, 20, 'as nginx reads the request line');
  assert.equal(ex.streamId, 0);
  assert.equal(c.stats().inFlight, 0);
});

test('PUSH_PROMISE blocks are decoded for the table, pushed streams are not reported', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(h.req(1, requestFields('GET', '/push'), { endStream: true }));
  h.server(pushPromise(1, 2, h.serverHpack.encode(requestFields('GET', '/pushed.css', [['x-pushed', 'yes']]))));
  h.server(h.res(1, responseFields(200, [['x-pushed', 'yes']])));
  h.server(h.res(2, responseFields(200)));
  h.server(data(2, 10, { endStream: true }));
  h.server(data(1, 10, { endStream: true }));
  const ex = only(c);
  assert.equal(ex.path, '/push');
  assert.equal(ex.status, 200);
});

test('Lua phase records on an h2 connection are not attributed to a stream', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1);
  h.handshake();
  h.client(h.req(1, requestFields('GET', '/lua'), { endStream: true }));
  c.lua(1, 2, 5000);
  h.server(h.res(1, responseFields(200), { endStream: true }));
  assert.deepEqual(only(c).luaNs, [0, 0, 0, 0, 0, 0, 0, 0]);
});

/** One write of a recorded HTTP/2 conversation: 'c' = the client's bytes, 's' = the server's. */
interface Chunk {
  from: 'c' | 's';
  bytes: Buffer;
}

/**
 * Real traffic from node:http2 (nghttp2's encoder: Huffman, dynamic table, CONTINUATION, trailers,
 * RST_STREAM) between a client and a server in this process, every write recorded in order.
 */
async function recordNodeH2(): Promise<Chunk[]> {
  const http2 = await import('node:http2');
  const { Duplex } = await import('node:stream');
  const chunks: Chunk[] = [];
  class End extends Duplex {
    peer?: End;
    constructor(private readonly side: 'c' | 's') {
      super();
    }
    _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
      chunks.push({ from: this.side, bytes: Buffer.from(chunk) });
      this.peer!.push(chunk);
      cb();
    }
    _read(): void {}
    _final(cb: () => void): void {
      this.peer!.push(null);
      cb();
    }
  }
  const clientEnd = new End('c');
  const serverEnd = new End('s');
  clientEnd.peer = serverEnd;
  serverEnd.peer = clientEnd;
  const server = http2.createServer();
  server.on('stream', (stream, hdrs) => {
    const path = String(hdrs[':path']);
    stream.on('error', () => {});
    if (path.startsWith('/h2/slow')) return; // answered never: the client cancels it
    if (path.startsWith('/kw.test.Echo/')) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '7', 'grpc-message': 'denied' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
      return;
    }
    let body = 0;
    stream.on('data', (d: Buffer) => (body += d.length));
    stream.on('end', () => {
      stream.respond({ ':status': path.endsWith('/404') ? 404 : 200, via: 'kong/3.4.2', 'x-body': String(body) });
      stream.end('x'.repeat(path.endsWith('/big') ? 40_000 : 10));
    });
  });
  server.emit('connection', serverEnd);
  const session = http2.connect('http://kong.test:8000', { createConnection: () => clientEnd });
  const call = (path: string, o: { method?: string; body?: Buffer; headers?: Record<string, string> } = {}) =>
    new Promise<void>((resolve, reject) => {
      const req = session.request({
        ':method': o.method ?? 'GET',
        ':path': path,
        'user-agent': 'node-h2/20',
        ...o.headers,
      });
      req.on('response', () => {});
      req.on('data', () => {});
      req.on('end', () => resolve());
      req.on('error', reject);
      req.end(o.body);
    });
  const bigHeader = Array.from({ length: 2500 }, (_, i) => (i * 7919).toString(36)).join('');
  const calls: Promise<void>[] = [];
  for (let i = 0; i < 12; i++) {
    calls.push(
      call(`/h2/r${i}${i % 5 === 0 ? '/404' : ''}`, { headers: { traceparent: TRACEPARENT, 'x-seq': `s${i}` } }),
    );
  }
  await Promise.all(calls);
  await call('/h2/upload', {
    method: 'POST',
    body: Buffer.alloc(50_000, 'u'),
    headers: { 'content-type': 'application/octet-stream' },
  });
  await call('/h2/big', { headers: { 'x-huge': bigHeader } }); // a block past 16 KiB: CONTINUATION
  await call('/kw.test.Echo/Deny', {
    method: 'POST',
    body: Buffer.from([0, 0, 0, 0, 0]),
    headers: { 'content-type': 'application/grpc', te: 'trailers' },
  });
  await new Promise<void>((resolve) => {
    const req = session.request({ ':path': '/h2/slow', 'user-agent': 'node-h2/20' });
    req.on('error', () => {});
    setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      setTimeout(resolve, 20);
    }, 20);
    req.end();
  });
  // GOAWAY from the client, then both ends close
  session.close();
  server.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  session.destroy();
  return chunks;
}

/** Feeds a recording as one SERVER connection, each write cut at the given offsets into transfers. */
function replay(chunks: Chunk[], cut: (bytes: Buffer) => Buffer[], o: IoOptions = {}): Conversation {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  for (const chunk of chunks) {
    for (const piece of cut(chunk.bytes)) {
      if (chunk.from === 'c') c.read(1, piece, o);
      else c.write(1, piece, o);
    }
  }
  c.close(1);
  return c;
}

function summary(c: Conversation): string[] {
  return c.done
    .map(
      (e) =>
        `${e.method} ${e.path} ${e.status} ${e.error} req=${e.requestBodySize} res=${e.responseBodySize} grpc=${e.grpcStatus}`,
    )
    .sort();
}

test('recorded node:http2 traffic: Huffman, dynamic table, CONTINUATION, trailers, RST_STREAM', async () => {
  const chunks = await recordNodeH2();
  const c = replay(chunks, (b) => [b]);
  assert.equal(c.done.length, 16, summary(c).join('\n'));
  const by = new Map(c.done.map((e) => [e.path, e]));
  for (let i = 0; i < 12; i++) {
    const path = `/h2/r${i}${i % 5 === 0 ? '/404' : ''}`;
    const ex = by.get(path);
    assert.ok(ex, `${path} reported`);
    assert.equal(ex.status, i % 5 === 0 ? 404 : 200);
    assert.equal(ex.userAgent, 'node-h2/20', 'Huffman-coded, then indexed');
    assert.equal(ex.host, 'kong.test:8000');
    assert.equal(ex.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.ok(ex.flags & ExchangeFlag.Via);
    assert.equal(ex.responseBodySize, 10);
    assert.equal(ex.httpVersion, 20);
  }
  assert.equal(by.get('/h2/upload')!.requestBodySize, 50_000);
  assert.equal(by.get('/h2/upload')!.contentType, 'application/octet-stream');
  assert.equal(by.get('/h2/big')!.responseBodySize, 40_000);
  assert.equal(by.get('/h2/big')!.status, 200, 'after a CONTINUATION block');
  assert.equal(by.get('/kw.test.Echo/Deny')!.grpcStatus, 7);
  assert.equal(by.get('/kw.test.Echo/Deny')!.contentType, 'application/grpc');
  assert.equal(by.get('/h2/slow')!.status, 499);
  assert.equal(by.get('/h2/slow')!.error, 'client_closed');
  const s = c.stats();
  assert.equal(s.protocolErrors, 0);
  assert.equal(s.lostHeads, 0);
  assert.equal(s.inFlight, 0);

  // The same bytes, every write cut into random transfers: the same exchanges.
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const want = summary(c);
  for (let round = 0; round < 20; round++) {
    const cutRandomly = (b: Buffer): Buffer[] => {
      // a server's 9-byte SETTINGS is one write; anything longer may be read or written in pieces
      if (b.length <= 9) return [b];
      const out: Buffer[] = [];
      let at = 0;
      while (at < b.length) {
        const n = 1 + rand(round % 2 === 0 ? 40 : 3000);
        out.push(b.subarray(at, at + n));
        at += n;
      }
      return out;
    };
    const r = replay(chunks, cutRandomly);
    assert.deepEqual(summary(r), want, `round ${round}`);
    assert.equal(r.stats().protocolErrors, 0);
  }
  // And as TLS plaintext records (SSL_read/SSL_write: at most 16 KiB each).
  const tls = replay(
    chunks,
    (b) => Array.from({ length: Math.ceil(b.length / 16384) }, (_, i) => b.subarray(i * 16384, (i + 1) * 16384)),
    { tls: true },
  );
  assert.deepEqual(summary(tls), want);
  for (const e of tls.done) assert.ok(e.flags & ExchangeFlag.Tls);
});

test('spans of gRPC calls: named {rpc.service}/{rpc.method}, with rpc.* and network.protocol.version 2', () => {
  const c = new Conversation();
  // keep the batches the assembler returns, for the real decoder and enrichment stage
  const batches: Buffer[] = [];
  const feed = c.assembler.feed.bind(c.assembler);
  Object.defineProperty(c.assembler, 'feed', {
    value: (records: Buffer) => {
      const out = feed(records);
      batches.push(Buffer.from(out));
      return out;
    },
  });
  const down = new H2Conn(c, 1, 'server', { pid: 500 });
  down.handshake();
  const grpc: Field[] = [
    ['content-type', 'application/grpc+proto'],
    ['te', 'trailers'],
  ];
  down.client(down.req(1, requestFields('POST', '/kw.test.Echo/Say', grpc)));
  down.client(down.req(3, requestFields('POST', '/kw.test.Echo/Fail', grpc)));
  down.client(down.req(5, requestFields('GET', '/api/plain'), { endStream: true }));
  down.client(Buffer.concat([data(1, 5, { endStream: true }), data(3, 5, { endStream: true })]));
  const up = new H2Conn(c, 2, 'client', { pid: 500 });
  up.client(
    Buffer.concat([
      PREFACE,
      settings(),
      up.req(1, requestFields('POST', '/kw.test.Echo/Say', grpc, 'up:50051', 'http')),
      data(1, 5, { endStream: true }),
    ]),
  );
  up.server(
    Buffer.concat([settings(), up.res(1, responseFields(200, [['content-type', 'application/grpc']])), data(1, 7)]),
  );
  up.server(up.res(1, [['grpc-status', '0']], { endStream: true }));
  down.server(down.res(1, responseFields(200, [['content-type', 'application/grpc']])));
  down.server(data(1, 7));
  down.server(down.res(1, [['grpc-status', '0']], { endStream: true }));
  down.server(
    down.res(
      3,
      responseFields(200, [
        ['content-type', 'application/grpc'],
        ['grpc-status', '7'],
      ]),
      { endStream: true },
    ),
  );
  down.server(down.res(5, responseFields(200), { endStream: true }));
  const spans = enrich(batches).map((e) => ExchangeSpan.of(e, fakeClock));
  const by = (name: string, kind: number) => spans.find((sp) => sp.name === name && sp.kind === kind);
  const say = by('kw.test.Echo/Say', 1);
  assert.ok(say, `SERVER span of Say: ${spans.map((sp) => sp.name).join(', ')}`);
  const attrs = spanAttributes(say);
  assert.equal(attrs['rpc.system'], 'grpc');
  assert.equal(attrs['rpc.service'], 'kw.test.Echo');
  assert.equal(attrs['rpc.method'], 'Say');
  assert.equal(attrs['rpc.grpc.status_code'], 0);
  assert.equal(attrs['network.protocol.version'], '2');
  assert.equal(attrs['http.response.status_code'], 200);
  const fail = by('kw.test.Echo/Fail', 1);
  assert.ok(fail);
  assert.equal(spanAttributes(fail)['rpc.grpc.status_code'], 7);
  const attempt = by('kw.test.Echo/Say', 2);
  assert.ok(attempt, 'CLIENT span of the grpc_pass attempt');
  assert.equal(spanAttributes(attempt)['rpc.method'], 'Say');
  assert.equal(spanAttributes(attempt)['rpc.grpc.status_code'], 0);
  const plain = spans.find((sp) => spanAttributes(sp)['url.path'] === '/api/plain');
  assert.ok(plain);
  assert.equal(plain.name, 'GET');
  assert.equal(spanAttributes(plain)['rpc.system'], undefined, 'not gRPC');
});

test('streams read together start when nginx got to them: the worker`s syscall before each one`s upstream attempt', () => {
  const c = new Conversation();
  const h = new H2Conn(c, 1, 'server', { pid: 600 });
  h.handshake();
  const t0 = h.client(
    Buffer.concat([1, 3, 5].map((s) => h.req(s, requestFields('GET', `/q/r${s}`), { endStream: true }))),
  );
  // stream 1: a keep-alive upstream connection, written at once
  c.open(10, { direction: 'client', pid: 600 });
  const w1 = c.write(10, request('GET', '/q/r1'));
  // stream 3: a new connection (its connect() comes right after stream 1's write), written later
  c.open(11, { direction: 'client', pid: 600 });
  // stream 5: another new connection
  const open5 = c.nowNs + 1000;
  c.open(12, { direction: 'client', pid: 600 });
  c.write(11, request('GET', '/q/r3'));
  c.write(12, request('GET', '/q/r5'));
  for (const [conn, s] of [
    [10, 1],
    [11, 3],
    [12, 5],
  ]) {
    c.read(conn, response(200, 'ok'));
    h.server(h.res(s, responseFields(200), { endStream: true }));
  }
  const by = new Map(c.server().map((e) => [e.path, e]));
  assert.equal(by.get('/q/r1')!.startNs, t0, 'the first stream of the read starts at the read');
  assert.equal(by.get('/q/r3')!.startNs, w1, 'the second once the first was sent upstream');
  assert.equal(by.get('/q/r5')!.startNs, open5 - 1000, 'the third once the second`s connect() was made');
  for (const e of c.client()) assert.equal(by.get(e.path!)!.id, e.parentId, `${e.path} linked`);
});
