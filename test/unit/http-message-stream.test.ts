import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestHead, ResponseHead } from '../../src/http/head';
import { MessageStream, findHeadEnd, type HeadDecision } from '../../src/http/message-stream';
import { chunkedBody, split } from './helpers/conversation';

interface Log {
  heads: { head: RequestHead | ResponseHead; at: number }[];
  ends: { at: number; body: number }[];
  errors: string[];
  lost: number;
}

function harness<H extends RequestHead | ResponseHead>(
  kind: 'request' | 'response',
  decide?: (h: H) => HeadDecision,
  capture = 8192,
) {
  const log: Log = { heads: [], ends: [], errors: [], lost: 0 };
  const stream = new MessageStream<H>(kind, {
    head: (head, at) => {
      log.heads.push({ head, at });
      return decide?.(head);
    },
    end: (at, body) => log.ends.push({ at, body }),
    error: (r) => log.errors.push(r),
    lost: () => log.lost++,
  });
  let t = 0;
  /** one read/write as BPF reports it: first `capture` bytes and last 16 */
  const feed = (bytes: Buffer | string): number => {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    t += 10;
    stream.feed(b.length, b.subarray(0, capture), b.subarray(Math.max(0, b.length - 16)), t);
    return t;
  };
  return { stream, log, feed };
}

test('keep-alive: many requests, one per read, timings per read', () => {
  const { log, feed } = harness<RequestHead>('request');
  for (let i = 0; i < 100; i++) feed(`GET /r${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(log.heads.length, 100, 'all heads');
  assert.equal(log.ends.length, 100, 'all ends');
  assert.equal((log.heads[42].head as RequestHead).path, '/r42');
  assert.equal(log.heads[42].at, 430, 'head time = its read');
  assert.deepEqual(log.errors, []);
});

test('pipelined requests in one read, with bodies', () => {
  const { log, feed } = harness<RequestHead>('request');
  const t = feed(
    'GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello' +
      'POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nGET /d HTTP/1.1\r\n\r\n',
  );
  assert.deepEqual(
    log.heads.map((h) => (h.head as RequestHead).path),
    ['/a', '/b', '/c', '/d'],
    'four requests',
  );
  assert.deepEqual([log.ends[0].body, log.ends[1].body, log.ends[3].body], [0, 5, 0], 'body sizes');
  assert.equal(log.ends[2].body, Buffer.byteLength('3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n'), 'chunked wire size');
  assert.ok(
    log.ends.every((e) => e.at === t),
    'all end in that read',
  );
});

test('a head split across three reads; head time is the first read', () => {
  const { log, feed } = harness<RequestHead>('request');
  const t1 = feed('GET /split?q=1 HT');
  feed('TP/1.1\r\nHost: x\r\nUser-Agent: y\r');
  assert.equal(log.heads.length, 0, 'not yet');
  const t3 = feed('\n\r\nGET /next HTTP/1.1\r\n\r\n');
  assert.equal(log.heads.length, 2, 'both heads');
  const h = log.heads[0].head as RequestHead;
  assert.equal(h.path, '/split');
  assert.equal(h.headers['user-agent'], 'y');
  assert.equal(log.heads[0].at, t1, 'first byte time');
  assert.equal(log.ends[0].at, t3, 'last byte time');
  assert.equal(h.headSize, Buffer.byteLength('GET /split?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\n\r\n'));
});

test('request bodies skipped by count across many truncated reads', () => {
  const { log, feed } = harness<RequestHead>('request');
  const body = Buffer.alloc(1 << 20, 'b');
  feed(`PUT /up HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`);
  let last = 0;
  for (const piece of split(body, 65536)) last = feed(piece);
  feed('GET /after HTTP/1.1\r\n\r\n');
  assert.equal(log.ends[0].body, body.length, 'body size');
  assert.equal(log.ends[0].at, last, 'ends at the read of its last byte');
  assert.equal((log.heads[1].head as RequestHead).path, '/after', 'in sync afterwards');
});

test('chunked response of 1 MiB in truncated writes: framing lost, terminator in the tail', () => {
  const { log, feed } = harness<ResponseHead>('response');
  const body = chunkedBody(1 << 20, 8000);
  const all = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), body]);
  const writes = split(all, 200_000);
  let last = 0;
  for (const w of writes) last = feed(w);
  assert.equal(log.ends.length, 1, 'one response');
  assert.equal(log.ends[0].at, last, 'ends with the last write');
  assert.equal(log.ends[0].body, body.length, 'body size counted');
});

test('chunked response whose terminator is split across writes', () => {
  const { log, feed } = harness<ResponseHead>('response');
  const body = chunkedBody(100_000, 30_000);
  const all = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), body]);
  feed(all.subarray(0, all.length - 3));
  assert.equal(log.ends.length, 0, 'not ended before the terminator');
  const t = feed(all.subarray(all.length - 3));
  assert.equal(log.ends.length, 1, 'ended');
  assert.equal(log.ends[0].at, t);
});

test('chunked framing followed exactly when chunk data skips uncaptured bytes', () => {
  const { log, feed } = harness<ResponseHead>('response');
  // one chunk of 50000: its header is captured, its data is not, the closing CRLF + 0 chunk are in the tail
  const body = chunkedBody(50_000, 50_000);
  feed(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), body]));
  feed('HTTP/1.1 204 No\r\n\r\n');
  assert.equal(log.ends.length, 2, 'the chunked response ended by framing, in sync for the next');
  assert.equal(log.ends[0].body, body.length);
  assert.equal((log.heads[1].head as ResponseHead).statusCode, 204);
});

test('content-length 1 MiB response in truncated writes', () => {
  const { log, feed } = harness<ResponseHead>('response');
  const all = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${1 << 20}\r\n\r\n`),
    Buffer.alloc(1 << 20),
  ]);
  let last = 0;
  for (const w of split(all, 256 * 1024)) last = feed(w);
  assert.deepEqual(log.ends, [{ at: last, body: 1 << 20 }]);
});

test('response until close; HEAD and 304 have no body', () => {
  const a = harness<ResponseHead>('response');
  a.feed('HTTP/1.0 200 OK\r\n\r\nsome');
  const t = a.feed('more');
  assert.equal(a.log.ends.length, 0);
  assert.ok(a.stream.close(), 'close ends it');
  assert.deepEqual(a.log.ends, [{ at: t, body: 8 }]);

  const b = harness<ResponseHead>('response', () => ({ kind: 'none' }));
  b.feed('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 304 NM\r\nContent-Length: 5\r\n\r\n');
  assert.equal(b.log.ends.length, 2, 'HEAD response ends at its head');
});

test('101 stop: later bytes are ignored', () => {
  const { log, feed, stream } = harness<ResponseHead>('response', (h) => (h.statusCode === 101 ? 'stop' : undefined));
  feed('HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n\x81\x05hello');
  feed('garbage garbage');
  assert.equal(log.heads.length, 1);
  assert.deepEqual(log.errors, [], 'no error after the upgrade');
  assert.ok(stream.stopped);
});

test('garbage: an error, no throw, then silence', () => {
  for (const junk of [
    '\x16\x03\x01\x02\x00\x01\x00',
    'hello world\r\n\r\n',
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    '\x00\x00',
  ]) {
    const { log, feed } = harness<RequestHead>('request');
    feed(junk);
    feed('GET / HTTP/1.1\r\n\r\n');
    assert.equal(log.errors.length, 1, `one error for ${JSON.stringify(junk)}`);
    assert.equal(log.heads.length, 0, 'nothing after');
  }
  const r = harness<ResponseHead>('response');
  r.feed('SSH-2.0-OpenSSH\r\n');
  assert.equal(r.log.errors.length, 1, 'response garbage');
});

test('random bytes never throw', () => {
  let seed = 99;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const alphabet = Buffer.from('GET /HTP1.\r\n: 0123456789abcdefContent-Length:Transfer-Encoding:chunked\r\n\r\n');
  for (let i = 0; i < 300; i++) {
    const { feed } = harness<RequestHead>(i % 2 ? 'request' : 'response');
    for (let j = 0; j < 5; j++) {
      const b = Buffer.alloc(rnd() * 4);
      for (let k = 0; k < b.length; k++) b[k] = rnd() < 200 ? alphabet[rnd() % alphabet.length] : rnd();
      assert.doesNotThrow(() => feed(b));
    }
  }
});

test('an 8 KiB head with traceparent at the end; a head over 64 KiB is refused', () => {
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const start = 'GET /big HTTP/1.1\r\nHost: x\r\n';
  const end = `traceparent: ${tp}\r\n\r\n`;
  const pad = 8192 - start.length - end.length - 'X-Pad: \r\n'.length;
  const head = `${start}X-Pad: ${'p'.repeat(pad)}\r\n${end}`;
  assert.equal(head.length, 8192);
  const { log, feed } = harness<RequestHead>('request');
  feed(head);
  assert.equal(log.heads.length, 1, 'parsed');
  assert.equal((log.heads[0].head as RequestHead).headers['traceparent'], tp);

  const big = harness<RequestHead>('request');
  big.feed(start);
  for (let i = 0; i < 17; i++) big.feed(`X-Pad-${i}: ${'p'.repeat(4000)}\r\n`);
  big.feed(end);
  assert.deepEqual(big.log.errors, ['head_too_large']);
});

test('a head in bytes that were not captured loses sync, then resyncs on a new message', () => {
  const { log, feed } = harness<RequestHead>('request');
  // a body then a pipelined head past the captured 8 KiB
  const body = 'x'.repeat(10_000);
  feed(`POST /a HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /lost HTTP/1.1\r\n\r\n`);
  assert.equal(log.lost, 1, 'lost');
  feed('GET /found HTTP/1.1\r\n\r\n');
  assert.deepEqual(
    log.heads.map((h) => (h.head as RequestHead).path),
    ['/a', '/found'],
  );
});

test('findHeadEnd', () => {
  const b = Buffer.from('a\r\nb\r\n\r\nc');
  assert.equal(findHeadEnd(b, 0, b.length), 8);
  assert.equal(findHeadEnd(Buffer.from('a\n\nb'), 0, 4), 3);
  assert.equal(findHeadEnd(b, 0, 7), -1, 'bounded by to');
});

test('a head bigger than the capture: parsed from the copied part, skipped by size', () => {
  const { log, feed } = harness<RequestHead>('request');
  const big = `GET /big-head?x=1 HTTP/1.1\r\nHost: x\r\nX-Large: ${'L'.repeat(10_000)}\r\nX-After: 1\r\n\r\n`;
  feed(big);
  feed('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  // nginx first reads into its 1k header buffer, then the rest into a large buffer
  feed(big.slice(0, 1024));
  feed(big.slice(1024));
  assert.deepEqual(log.errors, []);
  assert.equal(log.lost, 0);
  assert.deepEqual(
    log.heads.map((h) => (h.head as RequestHead).target),
    ['/big-head?x=1', '/next', '/big-head?x=1'],
  );
  assert.equal(log.heads[0].head.headSize, Buffer.byteLength(big));
  assert.equal(log.ends.length, 3);
});
