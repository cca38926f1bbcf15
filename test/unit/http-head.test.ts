import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_HEADER_VALUE,
  MAX_KEPT_HEADERS,
  parseRequestHead,
  parseResponseHead,
  splitTarget,
  type RequestHead,
  type ResponseHead,
} from '../../src/http/head';

const req = (text: string): RequestHead => {
  const r = parseRequestHead(text, text.length);
  assert.ok(!('error' in r), `parsed: ${JSON.stringify(r)}`);
  return r;
};
const res = (text: string): ResponseHead => {
  const r = parseResponseHead(text, text.length);
  assert.ok(!('error' in r), `parsed: ${JSON.stringify(r)}`);
  return r;
};

test('request line, selected headers, case-insensitive names', () => {
  const h = req(
    'POST /a/b?x=1&y=2 HTTP/1.1\r\nHOST: api.test\r\nUser-Agent: curl/8\r\nX-Secret: no\r\n' +
      'TraceParent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nContent-Length: 5\r\n\r\n',
  );
  assert.equal(h.method, 'POST');
  assert.equal(h.target, '/a/b?x=1&y=2');
  assert.equal(h.path, '/a/b');
  assert.equal(h.query, 'x=1&y=2');
  assert.equal(h.httpVersion, '1.1');
  assert.equal(h.headers['host'], 'api.test', 'host kept, name lower-cased');
  assert.equal(h.headers['user-agent'], 'curl/8');
  assert.equal(h.headers['traceparent'], '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.equal(h.headers['x-secret'], undefined, 'unselected header dropped');
  assert.deepEqual(h.framing, { kind: 'length', length: 5 });
});

test('request framing: chunked wins over length, none without either, bad values refused', () => {
  assert.deepEqual(req('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n').framing, {
    kind: 'chunked',
  });
  assert.deepEqual(req('GET / HTTP/1.0\r\n\r\n').framing, { kind: 'none' });
  assert.deepEqual(req('POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n').framing, { kind: 'none' });
  assert.ok('error' in parseRequestHead('POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 10), 'negative length');
  assert.ok('error' in parseRequestHead('POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 10));
  assert.ok('error' in parseRequestHead('POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 10));
});

test('bad request lines and header lines are errors', () => {
  for (const bad of [
    'get / HTTP/1.1\r\n\r\n',
    'GET / HTTP/2.0\r\n\r\n',
    'PRI * HTTP/2.0\r\n\r\n',
    'GET /\r\n\r\n',
    'GET  / HTTP/1.1\r\n\r\n',
    'GET / HTTP/1.1\r\nno colon here\r\n\r\n',
    'GET / HTTP/1.1\r\nbad name: x\r\n\r\n',
  ]) {
    assert.ok('error' in parseRequestHead(bad, bad.length), JSON.stringify(bad));
  }
});

test('bounded header count and value length, duplicates joined', () => {
  const long = 'x'.repeat(2000);
  const h = req(`GET / HTTP/1.1\r\nX-Forwarded-For: a\r\nX-Forwarded-For: b\r\nUser-Agent: ${long}\r\n\r\n`);
  assert.equal(h.headers['x-forwarded-for'], 'a, b', 'duplicates joined');
  assert.equal(h.headers['user-agent'].length, MAX_HEADER_VALUE, 'value bounded');
  assert.ok(Object.keys(h.headers).length <= MAX_KEPT_HEADERS, 'count bounded');
});

test('obsolete folding continues a value; bare LF lines accepted', () => {
  const h = req('GET / HTTP/1.1\nUser-Agent: a\n  b\nHost: h\n\n');
  assert.equal(h.headers['user-agent'], 'a b');
  assert.equal(h.headers['host'], 'h');
});

test('response framing rules', () => {
  assert.deepEqual(res('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n').framing, { kind: 'length', length: 10 });
  assert.deepEqual(res('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n').framing, { kind: 'chunked' });
  assert.deepEqual(res('HTTP/1.0 200 OK\r\n\r\n').framing, { kind: 'close' }, 'no length: until close');
  assert.deepEqual(res('HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n').framing, { kind: 'none' });
  assert.deepEqual(res('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n').framing, { kind: 'none' });
  assert.deepEqual(res('HTTP/1.1 100 Continue\r\n\r\n').framing, { kind: 'none' });
  assert.deepEqual(res('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n').framing, { kind: 'none' });
  assert.deepEqual(res('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n').framing, { kind: 'none' });
  const kong = res(
    'HTTP/1.1 502 Bad Gateway\r\nServer: kong/3.4.2\r\nX-Kong-Response-Latency: 3\r\nVia: kong/3.4.2\r\nX-Other: 1\r\n\r\n',
  );
  assert.equal(kong.statusCode, 502);
  assert.equal(kong.headers['server'], 'kong/3.4.2');
  assert.equal(kong.headers['x-kong-response-latency'], '3');
  assert.equal(kong.headers['x-other'], undefined);
  assert.equal(res('HTTP/1.1 200\r\n\r\n').statusCode, 200, 'reason phrase optional');
  for (const bad of [
    'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/2 200\r\n\r\n',
    'HTTP/1.1 099 X\r\n\r\n',
    'XTTP/1.1 200\r\n\r\n',
  ]) {
    assert.ok('error' in parseResponseHead(bad, bad.length), JSON.stringify(bad));
  }
});

test('request targets', () => {
  assert.deepEqual(splitTarget('/a?b=c'), { path: '/a', query: 'b=c' });
  assert.deepEqual(splitTarget('/a?'), { path: '/a', query: '' });
  assert.deepEqual(splitTarget('/a#frag'), { path: '/a' });
  assert.deepEqual(splitTarget('http://h:80/p/q?z=1'), { path: '/p/q', query: 'z=1' });
  assert.deepEqual(splitTarget('http://h?z=1'), { path: '/', query: 'z=1' });
  assert.deepEqual(splitTarget('http://h'), { path: '/' });
  assert.deepEqual(splitTarget('*'), { path: '*' });
});
