/**
 * HTTP/1.x heads and message framing in the native assembler (ported from the TypeScript head
 * parser's and message stream's tests): request lines, selected headers, targets, response
 * framing rules, bodies across truncated transfers, lost chunked framing, garbage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeFlag, MAX_STRINGS, Method } from '../../src/capture/exchange-layout';
import { PeerState } from '../../src/capture/records';
import { Conversation, chunkedBody, request, split } from './helpers/assembler-conversation';
import type { ExchangeView } from './helpers/frame-reader';

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';

/** One request head on a fresh server connection, answered 200 (or `answer`): its exchange. */
function served(head: string, answer = OK): ExchangeView {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, head);
  c.write(1, answer);
  c.close(1);
  assert.equal(c.done.length, 1, `one exchange for ${JSON.stringify(head.slice(0, 60))}`);
  return c.done[0];
}

/** A response head answering a GET on a fresh server connection, then a 204 for a second GET. */
function answered(responseBytes: string, method = 'GET'): { first: ExchangeView; c: Conversation } {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request(method, '/one') + request('GET', '/two'));
  c.write(1, responseBytes);
  c.write(1, 'HTTP/1.1 204 No Content\r\n\r\n');
  c.close(1);
  return { first: c.done[0], c };
}

test('request line, selected headers, case-insensitive names', () => {
  const e = served(
    'POST /a/b?x=1&y=2 HTTP/1.1\r\nHOST: api.test\r\nUser-Agent: curl/8\r\nX-Secret: no\r\nContent-Type: application/json\r\n' +
      'TraceParent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nContent-Length: 5\r\n\r\nhello',
  );
  assert.equal(e.method, 'POST');
  assert.equal(e.methodCode, Method.Post);
  assert.equal(e.methodText, undefined, 'no method text for a known method');
  assert.equal(e.path, '/a/b');
  assert.equal(e.query, 'x=1&y=2');
  assert.equal(e.httpVersion, 11);
  assert.equal(e.host, 'api.test', 'host kept, name matched in any case');
  assert.equal(e.userAgent, 'curl/8');
  assert.equal(e.contentType, 'application/json');
  assert.equal(e.traceId, '0af7651916cd43dd8448eb211c80319c', 'traceparent read in any case');
  assert.equal(e.requestBodySize, 5, 'Content-Length framed');
});

test('request framing: none without a length, zero length, chunked with extensions and trailers', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(
    1,
    'GET /a HTTP/1.0\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n' +
      'POST /c HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nGET /d HTTP/1.1\r\n\r\n',
  );
  for (let i = 0; i < 4; i++) c.write(1, OK);
  assert.deepEqual(
    c.done.map((e) => [e.path, e.requestBodySize, e.httpVersion]),
    [
      ['/a', 0, 10],
      ['/b', 0, 11],
      ['/c', Buffer.byteLength('3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n'), 11],
      ['/d', 0, 11],
    ],
  );
  assert.equal(c.stats().protocolErrors, 0);
});

test('invalid header lines are skipped, as nginx ignores them', () => {
  const e = served('GET /h HTTP/1.1\r\nno colon here\r\nbad name: x\r\n: empty\r\nHost: kept\r\n\r\n');
  assert.equal(e.path, '/h');
  assert.equal(e.host, 'kept');
  assert.equal(e.status, 200);
});

test('lenient spaces: several between method and target, after the version', () => {
  const e = served('GET   /spaced  HTTP/1.1  \r\nHost: h\r\n\r\n');
  assert.deepEqual([e.method, e.path, e.httpVersion], ['GET', '/spaced', 11]);
});

test('bounded value lengths, duplicates joined', () => {
  const long = 'x'.repeat(2000);
  const e = served(`GET / HTTP/1.1\r\nUser-Agent: a\r\nUser-Agent: b\r\nHost: ${long}\r\n\r\n`);
  assert.equal(e.userAgent, 'a, b', 'duplicates joined');
  assert.equal(e.host?.length, MAX_STRINGS.KW_MAX_HOST, 'host bounded');
  const f = served(`GET / HTTP/1.1\r\nUser-Agent: ${long}\r\nContent-Type: ${long}\r\n\r\n`);
  assert.equal(f.userAgent?.length, MAX_STRINGS.KW_MAX_USER_AGENT);
  assert.equal(f.contentType?.length, MAX_STRINGS.KW_MAX_CONTENT_TYPE);
});

test('obsolete folding continues a value; bare LF lines accepted', () => {
  const e = served('GET / HTTP/1.1\nUser-Agent: a\n  b\nHost: h\n\n');
  assert.equal(e.userAgent, 'a b');
  assert.equal(e.host, 'h');
  assert.equal(e.requestHeadSize, 'GET / HTTP/1.1\nUser-Agent: a\n  b\nHost: h\n\n'.length);
});

test('response framing rules', () => {
  const length = answered('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789');
  assert.deepEqual([length.first.status, length.first.responseBodySize], [200, 10]);
  assert.equal(length.c.done[1].status, 204, 'in step after a length body');

  const chunked = answered('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n');
  assert.deepEqual([chunked.first.responseBodySize, chunked.c.done[1].status], [12, 204], 'last coding chunked');

  for (const status of [204, 304]) {
    const none = answered(`HTTP/1.1 ${status} X\r\nContent-Length: 10\r\n\r\n`);
    assert.deepEqual([none.first.status, none.first.responseBodySize, none.c.done[1].status], [status, 0, 204]);
  }
  const zero = answered('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual([zero.first.responseBodySize, zero.c.done[1].status], [0, 204]);

  const head = answered('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', 'HEAD');
  assert.deepEqual([head.first.method, head.first.responseBodySize, head.c.done[1].status], ['HEAD', 0, 204]);

  const interim = answered('HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  assert.deepEqual([interim.first.status, interim.first.responseBodySize], [200, 2], 'interim skipped');

  const kong = answered(
    'HTTP/1.1 502 Bad Gateway\r\nServer: Kong/3.4.2\r\nX-Kong-Response-Latency: 3\r\nX-Kong-Proxy-Latency: x\r\n' +
      'X-Kong-Upstream-Latency: 12\r\ngrpc-status: 14\r\nX-Other: 1\r\nContent-Length: 0\r\n\r\n',
  ).first;
  assert.equal(kong.status, 502);
  assert.ok(kong.flags & ExchangeFlag.ServerKong, 'Server: kong/ in any case');
  assert.ok(!(kong.flags & ExchangeFlag.Via), 'no Via');
  assert.equal(kong.kongResponseLatencyMs, 3);
  assert.equal(kong.kongProxyLatencyMs, -1, 'not a number');
  assert.equal(kong.kongUpstreamLatencyMs, 12);
  assert.equal(kong.grpcStatus, 14);
  const plain = answered(OK).first;
  assert.deepEqual(
    [plain.kongResponseLatencyMs, plain.kongProxyLatencyMs, plain.kongUpstreamLatencyMs, plain.grpcStatus],
    [-1, -1, -1, -1],
    'absent',
  );

  assert.equal(answered('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').first.status, 200, 'reason phrase optional');
});

test('a response until close (HTTP/1.0 without a length)', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/old'));
  c.write(1, 'HTTP/1.0 200 OK\r\n\r\nsome');
  const t = c.write(1, 'more');
  assert.equal(c.done.length, 0, 'not ended before the close');
  c.close(1, t + 5000);
  assert.deepEqual(
    c.done.map((e) => [e.status, e.responseBodySize, e.endNs, e.error]),
    [[200, 8, t, '']],
  );
});

test('bad status lines: the exchange gets protocol_error', () => {
  for (const bad of [
    'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/2 200\r\n\r\n',
    'HTTP/1.1 099 X\r\n\r\n',
    'XTTP/1.1 200\r\n\r\n',
  ]) {
    const c = new Conversation();
    c.open(1, { direction: 'server' });
    c.read(1, request('GET', '/x'));
    c.write(1, bad);
    assert.deepEqual(
      c.done.map((e) => [e.status, e.error]),
      [[0, 'protocol_error']],
      JSON.stringify(bad),
    );
    assert.equal(c.stats().protocolErrors, 1);
  }
  const dup = answered('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab');
  assert.equal(dup.first.error, 'protocol_error', 'contradicting lengths');
});

test('request targets: origin form, empty query, fragment, absolute form, asterisk', () => {
  const cases: [string, string | undefined, string | undefined][] = [
    ['/a?b=c', '/a', 'b=c'],
    ['/a?', '/a', ''],
    ['/a#frag', '/a', undefined],
    ['http://h:80/p/q?z=1', '/p/q', 'z=1'],
    ['http://h?z=1', '/', 'z=1'],
    ['http://h', '/', undefined],
    ['*', '*', undefined],
  ];
  for (const [target, path, query] of cases) {
    const e = served(`OPTIONS ${target} HTTP/1.1\r\nHost: h\r\n\r\n`);
    assert.deepEqual([e.path, e.query], [path, query], target);
  }
  const long = served(`GET /${'p'.repeat(9000)}?q=${'v'.repeat(100)} HTTP/1.1\r\n\r\n`);
  assert.equal(long.path?.length, MAX_STRINGS.KW_MAX_TARGET, 'path bounded');
  assert.equal(long.query, '', 'no room left for the query');
  assert.ok(long.flags & ExchangeFlag.Truncated, 'marked');
  const both = served(`GET /${'p'.repeat(8000)}?${'q'.repeat(1000)} HTTP/1.1\r\n\r\n`);
  assert.equal((both.path?.length ?? 0) + (both.query?.length ?? 0), MAX_STRINGS.KW_MAX_TARGET, 'target bounded');
});

test('keep-alive: many requests, one per read, timings per read', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const reads: number[] = [];
  for (let i = 0; i < 100; i++) {
    reads.push(c.read(1, `GET /r${i} HTTP/1.1\r\nHost: x\r\n\r\n`));
    c.write(1, OK);
  }
  assert.equal(c.done.length, 100, 'all');
  assert.equal(c.done[42].path, '/r42');
  assert.equal(c.done[42].startNs, reads[42], 'head time = its read');
});

test('a head split across three reads; head time is the first read', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const t1 = c.read(1, 'GET /split?q=1 HT');
  c.read(1, 'TP/1.1\r\nHost: x\r\nUser-Agent: y\r');
  const t3 = c.read(1, '\n\r\nGET /next HTTP/1.1\r\n\r\n');
  c.write(1, OK);
  c.write(1, OK);
  assert.equal(c.done.length, 2, 'both heads');
  const e = c.done[0];
  assert.deepEqual([e.path, e.query, e.userAgent], ['/split', 'q=1', 'y']);
  assert.equal(e.startNs, t1, 'first byte time');
  assert.equal(e.requestEndNs, t3, 'last byte time');
  assert.equal(e.requestHeadSize, 'GET /split?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\n\r\n'.length);
  assert.equal(c.done[1].path, '/next');
});

test('a blank line split across reads, bare LF: the head ends where it does', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, 'GET /lf HTTP/1.1\nHost: x\n');
  const t = c.read(1, '\nGET /after HTTP/1.1\n\n');
  c.write(1, OK);
  c.write(1, OK);
  assert.deepEqual(
    c.done.map((e) => [e.path, e.host]),
    [
      ['/lf', 'x'],
      ['/after', undefined],
    ],
  );
  assert.equal(c.done[0].requestEndNs, t);
});

test('request bodies skipped by count across many truncated reads', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const body = Buffer.alloc(1 << 20, 'b');
  c.read(1, `PUT /up HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`);
  let last = 0;
  for (const piece of split(body, 65536)) last = c.read(1, piece, { capture: 4096 });
  c.read(1, 'GET /after HTTP/1.1\r\n\r\n');
  c.write(1, OK);
  c.write(1, OK);
  assert.equal(c.done[0].requestBodySize, body.length, 'body size');
  assert.equal(c.done[0].requestEndNs, last, 'ends at the read of its last byte');
  assert.equal(c.done[1].path, '/after', 'in sync afterwards');
});

test('chunked response of 1 MiB in truncated writes: framing lost, terminator in the tail', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/big'));
  const body = chunkedBody(1 << 20, 8000);
  let last = 0;
  for (const w of split(
    Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), body]),
    200_000,
  )) {
    last = c.write(1, w, { capture: 8192 });
  }
  assert.equal(c.done.length, 1, 'one response');
  assert.equal(c.done[0].endNs, last, 'ends with the last write');
  assert.equal(c.done[0].responseBodySize, body.length, 'body size counted');
});

test('chunked response whose terminator is split across writes', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/t'));
  const body = chunkedBody(100_000, 30_000);
  const all = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), body]);
  c.write(1, all.subarray(0, all.length - 3), { capture: 8192 });
  assert.equal(c.done.length, 0, 'not ended before the terminator');
  const t = c.write(1, all.subarray(all.length - 3));
  assert.equal(c.done.length, 1, 'ended');
  assert.equal(c.done[0].endNs, t);
});

test('chunked framing followed exactly when chunk data skips uncaptured bytes', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a') + request('GET', '/b'));
  // one chunk of 50000: its header is captured, its data is not, the closing CRLF + 0 chunk are in the tail
  const body = chunkedBody(50_000, 50_000);
  c.write(1, Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), body]), {
    capture: 8192,
  });
  c.write(1, 'HTTP/1.1 204 No\r\n\r\n');
  assert.equal(c.done.length, 2, 'the chunked response ended by framing, in sync for the next');
  assert.equal(c.done[0].responseBodySize, body.length);
  assert.equal(c.done[1].status, 204);
});

test('a lost chunked body ends at close without an error', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a'));
  c.write(1, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  const last = c.write(1, chunkedBody(40_000, 40_000), { capture: 64, tailUnknown: true });
  c.close(1, last + 10_000, PeerState.Closed);
  assert.deepEqual(
    c.done.map((e) => [e.status, e.error, e.endNs]),
    [[200, '', last]],
  );
});

test('content-length 1 MiB response in truncated writes', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/big'));
  const all = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${1 << 20}\r\n\r\n`),
    Buffer.alloc(1 << 20),
  ]);
  let last = 0;
  for (const w of split(all, 256 * 1024)) last = c.write(1, w, { capture: 4096 });
  assert.deepEqual(
    c.done.map((e) => [e.endNs, e.responseBodySize]),
    [[last, 1 << 20]],
  );
});

test('an 8 KiB head with traceparent at the end', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const start = 'GET /big HTTP/1.1\r\nHost: x\r\n';
  const end = `traceparent: ${tp}\r\n\r\n`;
  const pad = 8192 - start.length - end.length - 'X-Pad: \r\n'.length;
  const head = `${start}X-Pad: ${'p'.repeat(pad)}\r\n${end}`;
  assert.equal(head.length, 8192);
  const e = served(head);
  assert.equal(e.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(e.parentSpanId, 'b7ad6b7169203331');
  assert.ok(!(e.flags & ExchangeFlag.Truncated), 'nothing cut');
});

test('garbage request bytes: one candidate nginx answers, never a throw', () => {
  for (const junk of ['hello world\r\n\r\n', '\x00\x00', '\x7f\x45\x4c\x46\x02\x01']) {
    const c = new Conversation();
    c.open(1, { direction: 'server' });
    c.read(1, junk);
    c.write(1, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    c.read(1, 'GET / HTTP/1.1\r\n\r\n');
    c.close(1);
    assert.equal(c.done.length, 1, `one exchange for ${JSON.stringify(junk)}`);
    assert.equal(c.done[0].status, 400);
  }
  const words = served('hello world\r\n\r\n', 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual([words.method, words.path, words.httpVersion], ['hello', 'world', 9], 'read as nginx reads it');
  const bin = served('\x00\x00', 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual([bin.methodCode, bin.methodText, bin.path], [Method.Other, undefined, undefined], 'binary: no text');
});

test('101: later bytes on the connection are ignored', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/ws'));
  c.write(1, 'HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n\x81\x05hello');
  c.write(1, 'garbage garbage');
  c.read(1, 'GET /not-a-request HTTP/1.1\r\n\r\n');
  c.close(1);
  assert.deepEqual(
    c.done.map((e) => [e.path, e.status]),
    [['/ws', 101]],
  );
  assert.equal(c.stats().protocolErrors, 0, 'no error after the upgrade');
  assert.equal(c.stats().ignored, 1);
});

test('CONNECT answered 2xx leaves HTTP: reported at its head, then ignored', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n');
  const t = c.write(1, 'HTTP/1.1 200 Connection Established\r\n\r\n');
  c.read(1, '\x16\x03\x01tls bytes');
  c.close(1);
  assert.deepEqual(
    c.done.map((e) => [e.method, e.path, e.status, e.endNs, e.error]),
    [['CONNECT', 'example.test:443', 200, t, '']],
  );
  assert.ok(c.done[0].flags & ExchangeFlag.Upgraded);
});
