/**
 * Every request nginx answers is reported, with the status nginx logged: the rules that fixed
 * mismatches against nginx's access log. The response is the truth of what was served; request
 * candidates are made at the first byte of every request, parsed or not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeFlag, MAX_STRINGS, Method } from '../../src/capture/exchange-layout';
import { PeerState, ProcEvent } from '../../src/capture/records';
import { Conversation, chunkedBody, request, response, split } from './helpers/assembler-conversation';

const CLOSE = { Connection: 'close', Server: 'kong/3.4.2' };
const summary = (c: Conversation) => c.server().map((e) => [e.method, e.path, e.status, e.error]);

test('414: a 64 KiB URI nginx answered before its head ended is reported once, with what was read', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const head = `GET /${'u'.repeat(65536)}?q=1 HTTP/1.1\r\nHost: h\r\n\r\n`;
  // nginx reads into its 1k buffer, then an 8k large buffer, and gives up: 414, then a lingering close
  const start = c.read(1, head.slice(0, 1024));
  c.read(1, head.slice(1024, 8192));
  c.write(1, response(414, '<html>414</html>', CLOSE));
  c.read(1, head.slice(8192, 40000));
  c.read(1, head.slice(40000));
  c.close(1, undefined, PeerState.Closed);
  assert.equal(c.done.length, 1, 'one exchange');
  const e = c.done[0];
  assert.deepEqual([e.method, e.status, e.error], ['GET', 414, '']);
  assert.ok(e.path?.startsWith('/uuuu'), 'path from the bytes read');
  assert.equal(e.path?.length, 8188, 'the part nginx read');
  assert.equal(e.query, undefined, 'the query was never read');
  assert.ok(e.flags & ExchangeFlag.Truncated, 'a head cut short is marked');
  assert.equal(e.startNs, start);
  assert.equal(c.stats().droppedRequests, 0, 'the lingering reads are not requests');
});

test('a header line too large for nginx: 400, reported with the request line', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const head = `GET /cookie HTTP/1.1\r\nHost: h\r\nCookie: ${'c'.repeat(20000)}\r\n\r\n`;
  c.read(1, head.slice(0, 1024));
  c.read(1, head.slice(1024, 9216));
  c.write(1, response(400, 'Request Header Or Cookie Too Large', CLOSE));
  c.close(1);
  assert.deepEqual(summary(c), [['GET', '/cookie', 400, '']]);
  assert.equal(c.done[0].host, 'h', 'complete header lines before it are read');
});

test('a head over 16 KiB in many reads is never refused for its size: parsed from its first 16 KiB', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  let head = `GET /big HTTP/1.1\r\nHost: x\r\ntraceparent: ${tp}\r\n`;
  for (let i = 0; i < 17; i++) head += `X-Pad-${i}: ${'p'.repeat(4000)}\r\n`;
  head += 'User-Agent: late\r\n\r\n';
  for (const piece of split(head, 4096)) c.read(1, piece);
  c.write(1, response(200));
  assert.deepEqual(summary(c), [['GET', '/big', 200, '']]);
  const e = c.done[0];
  assert.equal(e.requestHeadSize, head.length, 'head size counted whole');
  assert.ok(e.flags & ExchangeFlag.Truncated, 'later headers unseen');
  assert.equal(e.userAgent, undefined, 'a header past the kept bytes is not seen');
  assert.equal(e.traceId, '0af7651916cd43dd8448eb211c80319c', 'an early traceparent is');
});

test('lenient request lines: G@T, lowercase get, a space in the URI, a 200-char method', () => {
  const c = new Conversation();
  const method200 = 'M'.repeat(200);
  const lines = ['G@T /at HTTP/1.1', 'get /lower HTTP/1.1', 'GET /a b HTTP/1.1', `${method200} /long HTTP/1.1`];
  lines.forEach((line, i) => {
    c.open(i + 1, { direction: 'server' });
    c.read(i + 1, `${line}\r\nHost: h\r\n\r\n`);
    c.write(i + 1, response(400, 'bad', CLOSE));
    c.close(i + 1);
  });
  assert.deepEqual(summary(c), [
    ['G@T', '/at', 400, ''],
    ['get', '/lower', 400, ''],
    ['GET', '/a b', 400, ''],
    [method200.slice(0, MAX_STRINGS.KW_MAX_METHOD_TEXT), '/long', 400, ''],
  ]);
  assert.equal(c.done[0].methodCode, Method.Other);
  assert.equal(c.done[2].methodCode, Method.Get);
  assert.ok(
    c.done.every((e) => e.httpVersion === 11),
    'HTTP/1.1',
  );
});

test('HTTP/0.9: a request line without version, answered with a bare body until the close', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const start = c.read(1, 'GET /nine\r\n');
  c.write(1, '<html>old</html>');
  const last = c.write(1, '<p>more</p>');
  c.close(1);
  assert.deepEqual(summary(c), [['GET', '/nine', 200, '']]);
  const e = c.done[0];
  assert.equal(e.httpVersion, 9);
  assert.equal(e.responseBodySize, '<html>old</html><p>more</p>'.length);
  assert.equal(e.responseHeadSize, 0);
  assert.equal(e.startNs, start);
  assert.equal(e.endNs, last, 'the body ends with the last byte written');
});

test('HTTP/2.0 on a request line: answered 505 and reported', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, 'GET /v2 HTTP/2.0\r\nHost: h\r\n\r\n');
  c.write(1, response(505, 'no', CLOSE));
  c.close(1);
  assert.deepEqual(summary(c), [['GET', '/v2', 505, '']]);
  assert.equal(c.done[0].httpVersion, 20);
});

test('slowloris: a head never finished is what nginx logs (400 when the client left, 408 on its timeout)', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const start = c.read(1, 'GET /slow HTTP/1.1\r\nHost: h\r\n');
  c.read(1, 'X-A: 1\r\n');
  const fin = c.result('read', 1, 0);
  c.close(1);
  c.open(2, { direction: 'server' });
  c.read(2, 'GET /timeout HTTP/1.1\r\nHo');
  const closed = c.close(2);
  c.open(3, { direction: 'server' });
  c.read(3, 'POST /gone HT');
  c.close(3, undefined, PeerState.Reset);
  assert.deepEqual(summary(c), [
    ['GET', '/slow', 400, 'incomplete_request'],
    ['GET', '/timeout', 408, 'incomplete_request'],
    ['POST', '/gone', 400, 'incomplete_request'],
  ]);
  assert.equal(c.done[0].startNs, start);
  assert.equal(c.done[0].endNs, fin, 'ends when the client left');
  assert.equal(c.done[0].host, 'h', 'complete lines are read');
  assert.equal(c.done[1].endNs, closed);
});

test('binary garbage answered 400: one exchange, method OTHER, no path', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, Buffer.from([0x01, 0x02, 0x7f, 0x00, 0x47, 0x45, 0x54, 0x20, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]));
  c.write(1, response(400, 'Bad Request', CLOSE));
  c.read(1, Buffer.from([0x03, 0x04, 0x05]));
  c.close(1);
  assert.equal(c.done.length, 1);
  const e = c.done[0];
  assert.deepEqual(
    [e.methodCode, e.methodText, e.path, e.status, e.error],
    [Method.Other, undefined, undefined, 400, ''],
  );
  assert.equal(c.stats().protocolErrors, 1, 'counted');
  assert.ok(c.stats().skippedBytes >= 3, 'skipped bytes counted');

  // the same garbage with no answer and the client gone: nginx logs 400
  c.open(2, { direction: 'server' });
  c.read(2, '\x01\x02\x03');
  c.close(2, undefined, PeerState.Closed);
  assert.deepEqual([c.done[1].status, c.done[1].error, c.done[1].path], [400, 'incomplete_request', undefined]);
});

for (const order of ['TE first', 'CL first'] as const) {
  test(`Transfer-Encoding with Content-Length (${order}): exactly one 400, no smuggled phantom`, () => {
    const c = new Conversation();
    c.open(1, { direction: 'server' });
    const te = 'Transfer-Encoding: chunked\r\n';
    const cl = 'Content-Length: 4\r\n';
    const framing = order === 'TE first' ? te + cl : cl + te;
    c.read(1, `POST /smuggle HTTP/1.1\r\nHost: h\r\n${framing}\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: h\r\n\r\n`);
    c.write(1, response(400, 'Bad Request', CLOSE));
    // lingering close: nginx reads and discards what the client still sends
    c.read(1, request('GET', '/smuggled-later'));
    c.close(1);
    assert.deepEqual(summary(c), [['POST', '/smuggle', 400, '']]);
    assert.equal(c.stats().protocolErrors, 1, 'the unframeable request is counted');
    assert.equal(c.stats().droppedRequests, 1, 'the later read is dropped, not reported');
  });
}

test('bad chunk size, duplicate and non-numeric Content-Length, unknown coding: reported with nginx status', () => {
  const c = new Conversation();
  const cases: [string, number][] = [
    ['POST /chunk HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
    ['POST /dup HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', 400],
    ['POST /nan HTTP/1.1\r\nHost: h\r\nContent-Length: 3x\r\n\r\nabc', 400],
    ['POST /neg HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n', 400],
    ['POST /gzip HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc', 501],
  ];
  cases.forEach(([bytes, status], i) => {
    c.open(i + 1, { direction: 'server' });
    c.read(i + 1, bytes);
    c.write(i + 1, response(status, 'no', CLOSE));
    c.close(i + 1);
  });
  assert.deepEqual(
    summary(c),
    cases.map(([bytes, status]) => ['POST', bytes.split(' ')[1], status, '']),
  );
  assert.equal(c.stats().protocolErrors, cases.length, 'each one counted');
});

test('a bad chunk in a body already being read: the request ends there and is answered', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, 'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  const bad = c.read(1, 'xyz\r\n');
  c.write(1, response(400, 'bad', CLOSE));
  c.close(1);
  assert.deepEqual(summary(c), [['POST', '/c', 400, '']]);
  assert.equal(c.done[0].requestEndNs, bad);
});

test('100 pipelined requests in one read: 100 correct pairs', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  let all = '';
  for (let i = 0; i < 100; i++) all += request('GET', `/p${i}`);
  c.read(1, all);
  for (let i = 0; i < 100; i++) c.write(1, response(400 + i, `r${i}`));
  assert.equal(c.done.length, 100);
  c.done.forEach((e, i) => {
    assert.equal(e.path, `/p${i}`, `path of #${i}`);
    assert.equal(e.status, 400 + i, `status of #${i}`);
    assert.equal(e.connRequest, i + 1);
  });
});

test('the pending bound drops, it never shifts pairing', () => {
  const c = new Conversation({ maxPendingPerConnection: 32 });
  c.open(1, { direction: 'server' });
  let all = '';
  for (let i = 0; i < 100; i++) all += request(i % 7 === 3 ? 'HEAD' : 'GET', `/p${i}`);
  c.read(1, all);
  assert.equal(c.stats().inFlight, 32, 'details kept for 32');
  for (let i = 0; i < 100; i++) {
    // HEAD answers have no body even with Content-Length: a placeholder must remember its method
    c.write(1, i % 7 === 3 ? `HTTP/1.1 ${400 + i} X\r\nContent-Length: 50\r\n\r\n` : response(400 + i, `r${i}`));
  }
  assert.equal(c.done.length, 32, 'the first 32 are reported');
  c.done.forEach((e, i) => assert.deepEqual([e.path, e.status], [`/p${i}`, 400 + i], `pair #${i}`));
  assert.equal(c.stats().droppedRequests, 68, 'the rest counted');
  c.read(1, request('GET', '/after'));
  c.write(1, response(299));
  assert.deepEqual([c.done[32].path, c.done[32].status], ['/after', 299], 'still in step afterwards');
  assert.equal(c.stats().inFlight, 0);
});

test('a bound freed mid-way: candidates after placeholders keep their details again', () => {
  const c = new Conversation({ maxPendingPerConnection: 2 });
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a') + request('GET', '/b') + request('GET', '/c'));
  c.write(1, response(201));
  c.read(1, request('GET', '/d'));
  c.write(1, response(202) + response(203) + response(204));
  assert.deepEqual(
    c.done.map((e) => [e.path, e.status]),
    [
      ['/a', 201],
      ['/b', 202],
      ['/d', 204],
    ],
  );
  assert.equal(c.stats().droppedRequests, 1, '/c');
});

test('50 pipelined with garbage at #25: 24 correct exchanges and nginx 400', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  let all = '';
  for (let i = 1; i <= 50; i++) all += i === 25 ? '\x00\x01garbage\x02\r\n\r\n' : request('GET', `/p${i}`);
  c.read(1, all);
  for (let i = 1; i <= 24; i++) c.write(1, response(200, `r${i}`));
  c.write(1, response(400, 'bad', CLOSE));
  c.close(1, undefined, PeerState.Closed);
  assert.equal(c.done.length, 25);
  for (let i = 0; i < 24; i++) assert.deepEqual([c.done[i].path, c.done[i].status], [`/p${i + 1}`, 200], `#${i + 1}`);
  assert.deepEqual([c.done[24].methodCode, c.done[24].path, c.done[24].status], [Method.Other, undefined, 400]);
  assert.equal(c.stats().protocolErrors, 1);
});

test('Connection: close in a response: later candidates on the connection are dropped and counted', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a') + request('GET', '/b'));
  c.write(1, response(200, 'x', { Connection: 'close' }));
  c.read(1, request('GET', '/c'));
  c.close(1);
  assert.deepEqual(summary(c), [['GET', '/a', 200, '']]);
  assert.equal(c.stats().droppedRequests, 2);

  // HTTP/1.0 without keep-alive closes too; with keep-alive it does not
  c.open(2, { direction: 'server' });
  c.read(2, request('GET', '/k1') + request('GET', '/k2'));
  c.write(2, 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n');
  c.write(2, 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual(summary(c).slice(1), [
    ['GET', '/k1', 200, ''],
    ['GET', '/k2', 200, ''],
  ]);
});

test('close: the oldest unanswered request gets the status, later unanswered ones were never started', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a') + request('GET', '/b') + request('GET', '/c'));
  c.write(1, response(200));
  c.close(1, undefined, PeerState.Closed);
  assert.deepEqual(summary(c), [
    ['GET', '/a', 200, ''],
    ['GET', '/b', 499, 'client_closed'],
  ]);
  assert.equal(c.stats().droppedRequests, 1, '/c');
});

function chunkedPieces(total: number, pieces: number): Buffer[] {
  const size = Math.ceil(total / pieces);
  const out: Buffer[] = [];
  for (let i = 0; i < pieces; i++) {
    const n = Math.min(size, total - i * size);
    const parts = [Buffer.from(`${n.toString(16)}\r\n`), Buffer.alloc(n, 0x41 + i), Buffer.from('\r\n')];
    if (i === pieces - 1) parts.push(Buffer.from('0\r\n\r\n'));
    out.push(Buffer.concat(parts));
  }
  return out;
}

for (const variant of ['whole', 'capture gaps', 'capture gaps + TAIL_UNKNOWN'] as const) {
  test(`regression: 40 kB chunked upstream response in 4 flushed pieces after 1 MiB bodies (${variant})`, () => {
    const c = new Conversation();
    const io = variant === 'whole' ? {} : { capture: 512, tailUnknown: variant !== 'capture gaps' };
    c.open(1, { direction: 'server' });
    c.open(2, { direction: 'client' });
    // 1 MiB up, 1 MiB down, on both connections
    const upBody = Buffer.alloc(1 << 20, 'u');
    c.read(1, `POST /svc/upload HTTP/1.1\r\nHost: h\r\nContent-Length: ${upBody.length}\r\n\r\n`);
    for (const p of split(upBody, 65536)) c.read(1, p, io);
    c.write(2, `POST /upload HTTP/1.1\r\nHost: up\r\nContent-Length: ${upBody.length}\r\n\r\n`);
    for (const p of split(upBody, 262144)) c.write(2, p, io);
    const down = Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${1 << 20}\r\n\r\n`),
      Buffer.alloc(1 << 20, 'd'),
    ]);
    for (const p of split(down, 65536)) c.read(2, p, io);
    for (const p of split(down, 262144)) c.write(1, p, io);
    // the 40 kB chunked answer, four flushed pieces, then three more requests on both connections
    c.read(1, request('GET', '/svc/chunked'));
    c.write(2, request('GET', '/chunked'));
    const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    const pieces = chunkedPieces(40_000, 4);
    c.read(2, head);
    let lastUp = 0;
    for (const p of pieces) lastUp = c.read(2, p, io);
    c.write(1, head);
    let lastDown = 0;
    for (const p of pieces) lastDown = c.write(1, p, io);
    for (let i = 0; i < 3; i++) {
      c.read(1, request('GET', `/svc/next${i}`));
      c.write(2, request('GET', `/next${i}`));
      c.read(2, response(200, `n${i}`));
      c.write(1, response(200, `n${i}`));
    }
    c.close(2);
    c.close(1);
    const bodySize = pieces.reduce((n, p) => n + p.length, 0);
    assert.deepEqual(
      c.server().map((e) => [e.path, e.status, e.error]),
      [
        ['/svc/upload', 200, ''],
        ['/svc/chunked', 200, ''],
        ['/svc/next0', 200, ''],
        ['/svc/next1', 200, ''],
        ['/svc/next2', 200, ''],
      ],
      'every inbound request, none lost',
    );
    assert.deepEqual(
      c.client().map((e) => [e.path, e.status, e.error]),
      [
        ['/upload', 200, ''],
        ['/chunked', 200, ''],
        ['/next0', 200, ''],
        ['/next1', 200, ''],
        ['/next2', 200, ''],
      ],
      'every attempt, none a protocol error',
    );
    const up = c.client()[1];
    const served = c.server()[1];
    assert.equal(up.responseBodySize, bodySize, 'upstream body size');
    assert.equal(served.responseBodySize, bodySize, 'response body size');
    assert.equal(up.endNs, lastUp, 'the upstream response ends with its last piece');
    assert.equal(served.endNs, lastDown, 'the served response ends with its last piece');
    assert.equal(c.stats().protocolErrors, 0);
    assert.equal(c.client()[1].parentId, c.server()[1].id, 'attempt linked');
  });
}

test('resync: after a response that is not HTTP, the stream picks up at the next status line', () => {
  const c = new Conversation();
  c.open(1, { direction: 'client' });
  c.write(1, request('GET', '/a'));
  c.read(1, 'SSH-2.0-OpenSSH\r\nmore junk');
  c.read(1, 'still junk');
  c.write(1, request('GET', '/b'));
  c.read(1, response(200, 'ok'));
  assert.deepEqual(
    c.client().map((e) => [e.path, e.status, e.error]),
    [
      ['/a', 0, 'protocol_error'],
      ['/b', 200, ''],
    ],
  );
  const s = c.stats();
  assert.equal(s.protocolErrors, 1);
  assert.equal(s.skippedBytes, 'SSH-2.0-OpenSSH\r\nmore junk'.length + 'still junk'.length, 'skipped bytes');
  assert.equal(s.notHttp, 0, 'the connection is kept');
});

test("Kong's own non-HTTP cosockets (Postgres, Redis) are given up for good", () => {
  const c = new Conversation();
  c.open(1, { direction: 'client', peerPort: 5432 });
  c.write(1, Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]));
  c.read(1, 'N');
  c.write(1, request('GET', '/looks-like-http'));
  c.read(1, response(200));
  c.open(2, { direction: 'client', peerPort: 6379 });
  c.write(2, '*1\r\n$4\r\nPING\r\n');
  c.open(3, { direction: 'client', peerPort: 3306 });
  c.read(3, Buffer.from([0x4a, 0, 0, 0, 0x0a, 0x38]));
  assert.equal(c.done.length, 0);
  assert.equal(c.stats().notHttp, 3);
});

test('PROC frames are forwarded; a worker exit finishes its connections at once', () => {
  const c = new Conversation();
  c.proc(200, ProcEvent.Fork, 1, 'nginx');
  c.open(1, { direction: 'server', pid: 200 });
  c.read(1, request('GET', '/in-flight'));
  c.open(2, { direction: 'client', pid: 200 });
  c.write(2, request('GET', '/in-flight'));
  c.open(3, { direction: 'server', pid: 201 });
  c.read(3, request('GET', '/other-worker'));
  const exit = c.proc(200, ProcEvent.Exit);
  assert.deepEqual(
    c.procs.map((p) => [p.event, p.pid, p.ppid, p.comm]),
    [
      [ProcEvent.Fork, 200, 1, 'nginx'],
      [ProcEvent.Exit, 200, 0, 'nginx'],
    ],
  );
  assert.deepEqual(
    c.done.map((e) => [e.direction, e.path, e.error, e.endNs]),
    [
      ['server', '/in-flight', 'process_exited', exit],
      ['client', '/in-flight', 'process_exited', exit],
    ],
    'the server first, its attempt right after it',
  );
  const exitFrame = c.frames.findIndex((f) => 'type' in f && f.event === ProcEvent.Exit);
  assert.equal(exitFrame, c.frames.length - 1, 'the exit comes after the exchanges it ended');
  assert.equal(c.stats().processExits, 1);
  assert.equal(c.stats().connections, 1, 'the other worker keeps its connection');
  c.write(1, response(200));
  assert.equal(c.done.length, 2, 'a forgotten connection reports nothing');
});

test('a response head lost in bytes not copied: the request it answered is reported cut short', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a') + request('GET', '/b'));
  // one write: /a's 20 kB body, then /b's whole response, past the 512 bytes copied
  const a = response(200, 'x'.repeat(20_000));
  c.write(1, a + response(201, 'yz'), { capture: 512 });
  c.read(1, request('GET', '/c'));
  c.write(1, response(202));
  assert.deepEqual(summary(c), [
    ['GET', '/a', 200, ''],
    ['GET', '/b', 0, 'incomplete_response'],
    ['GET', '/c', 202, ''],
  ]);
  assert.equal(c.stats().lostHeads, 1);
});

test('a request head in bytes not copied: nginx answers it, and pairing stays in step', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const body = 'x'.repeat(10_000);
  c.read(1, `POST /a HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /lost HTTP/1.1\r\n\r\n`, {
    capture: 8192,
  });
  c.write(1, response(200));
  c.write(1, response(201));
  c.read(1, request('GET', '/found'));
  c.write(1, response(202));
  assert.deepEqual(summary(c), [
    ['POST', '/a', 200, ''],
    ['GET', '/found', 202, ''],
  ]);
  assert.equal(c.stats().lostHeads, 1);
  assert.equal(c.stats().droppedRequests, 1, 'the lost one is counted, not reported');
});

test('a CRLF after a body in bytes not copied is filler, not a lost request', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const body = 'b'.repeat(20_000);
  c.read(1, `POST /form HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n${body}\r\n`, { capture: 1024 });
  c.write(1, response(200));
  c.read(1, request('GET', '/next'));
  c.write(1, response(201));
  assert.deepEqual(summary(c), [
    ['POST', '/form', 200, ''],
    ['GET', '/next', 201, ''],
  ]);
  assert.equal(c.stats().lostHeads, 0);
  assert.equal(c.stats().droppedRequests, 0);
});

test('a head bigger than the capture: parsed from the copied part, skipped by size', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  const big = `GET /big-head?x=1 HTTP/1.1\r\nHost: x\r\nX-Large: ${'L'.repeat(10_000)}\r\nX-After: 1\r\n\r\n`;
  c.read(1, big, { capture: 8192 });
  c.write(1, response(200));
  c.read(1, 'GET /next HTTP/1.1\r\nHost: x\r\n\r\n', { capture: 8192 });
  c.write(1, response(201));
  // nginx first reads into its 1k header buffer, then the rest into a large buffer
  c.read(1, big.slice(0, 1024), { capture: 8192 });
  c.read(1, big.slice(1024), { capture: 8192 });
  c.write(1, response(202));
  assert.deepEqual(
    c.done.map((e) => [e.path, e.query, e.status]),
    [
      ['/big-head', 'x=1', 200],
      ['/next', undefined, 201],
      ['/big-head', 'x=1', 202],
    ],
  );
  assert.equal(c.done[0].requestHeadSize, big.length);
  assert.equal(c.stats().lostHeads, 0);
  assert.equal(c.stats().protocolErrors, 0);
});

test('chunked response whose framing falls in uncaptured bytes ends at the next response head', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/a') + request('GET', '/b'));
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const body = chunkedBody(30_000, 3000);
  c.write(1, head);
  const last = c.write(1, body.subarray(0, 20_000), { capture: 100 });
  c.write(1, body.subarray(20_000), { capture: 100, tailUnknown: true });
  const lastBody = c.nowNs;
  c.write(1, response(201, 'next'));
  assert.deepEqual(summary(c), [
    ['GET', '/a', 200, ''],
    ['GET', '/b', 201, ''],
  ]);
  assert.ok(last < lastBody);
  assert.equal(c.done[0].endNs, lastBody, 'ends with the last transfer before the next head');
  assert.equal(c.done[0].responseBodySize, body.length);
  assert.equal(c.stats().protocolErrors, 0);
});
