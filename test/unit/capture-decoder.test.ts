import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress } from '../../src/capture/address';
import { decodeBatch, type ProcFrame } from '../../src/capture/batch-decoder';
import type { Exchange } from '../../src/capture/exchange';
import { EXCHANGE, ErrorCode, ExchangeFlag, Method } from '../../src/capture/exchange-layout';
import { AF_INET6, LuaPhase, ProcEvent } from '../../src/capture/records';
import {
  FRAME_BASE_NS,
  exchangeFrame,
  frameBatch,
  procFrame,
  serverSpec,
  type ExchangeFrameSpec,
} from './helpers/frames';

function decode(batch: Buffer, base = FRAME_BASE_NS) {
  const exchanges: Exchange[] = [];
  const procs: ProcFrame[] = [];
  const result = decodeBatch(batch, base, { exchange: (ex) => exchanges.push(ex), proc: (p) => procs.push(p) });
  return { exchanges, procs, result };
}

const FULL: ExchangeFrameSpec = {
  type: 'server',
  method: Method.Other,
  methodText: 'PROPFIND',
  error: ErrorCode.UpstreamClosed,
  httpVersion: 10,
  status: 502,
  flags: ExchangeFlag.Response | ExchangeFlag.Tls | ExchangeFlag.ParentSpan | ExchangeFlag.CallerContext,
  pid: 4242,
  connRequest: 7,
  attempts: 3,
  attempt: 0,
  id: 2 ** 40 + 5,
  parentId: 0,
  connId: 2 ** 33 + 1,
  startNs: 1000,
  requestEndNs: 2000,
  responseStartNs: 3000,
  endNs: 9000,
  upstreamStartNs: 2500,
  upstreamEndNs: 8000,
  requestBodySize: 2 ** 35,
  responseBodySize: 77,
  requestHeadSize: 300,
  responseHeadSize: 200,
  luaNs: [0, 1200, 3400, 0, 500],
  kongProxyLatencyMs: 12,
  kongUpstreamLatencyMs: -1,
  kongResponseLatencyMs: 0,
  grpcStatus: 14,
  localPort: 8443,
  peerPort: 51000,
  streamId: 5,
  localAddr: [10, 0, 0, 1],
  peerAddr: [192, 168, 1, 20],
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  parentSpanId: '1111111111111111',
  path: '/caf\u00e9/x',
  query: 'a=1&token=s',
  host: 'API.example.com:8443',
  userAgent: 'curl/8.0',
  traceState: 'congo=t61rcWkgMzE',
  contentType: 'application/json',
};

test('every field of an exchange frame, times relative to the clock base', () => {
  const { exchanges, result } = decode(frameBatch([FULL]));
  assert.deepEqual(result, { exchanges: 1, procs: 0, malformed: 0 }, 'counts');
  const ex = exchanges[0];
  assert.equal(ex.isServer, true, 'type');
  assert.equal(ex.method, Method.Other, 'method');
  assert.equal(ex.methodText, 'PROPFIND', 'method text');
  assert.equal(ex.methodOriginal, 'PROPFIND', 'the method as sent');
  assert.equal(ex.error, ErrorCode.UpstreamClosed, 'error');
  assert.equal(ex.httpVersion, 10, 'version');
  assert.equal(ex.status, 502, 'status');
  assert.equal(ex.tls, true, 'TLS flag');
  assert.equal(ex.pid, 4242, 'pid');
  assert.equal(ex.connRequest, 7, 'conn request');
  assert.equal(ex.attempts, 3, 'attempts');
  assert.equal(ex.id, 2 ** 40 + 5, 'u64 id above 2^32');
  assert.equal(ex.connId, 2 ** 33 + 1, 'conn id');
  assert.deepEqual(
    [ex.startNs, ex.requestEndNs, ex.responseStartNs, ex.endNs, ex.upstreamStartNs, ex.upstreamEndNs],
    [1000, 2000, 3000, 9000, 2500, 8000],
    'relative times',
  );
  assert.equal(ex.requestBodySize, 2 ** 35, 'u64 size');
  assert.equal(ex.responseBodySize, 77);
  assert.equal(ex.requestHeadSize, 300);
  assert.equal(ex.responseHeadSize, 200);
  assert.equal(ex.luaNs(LuaPhase.Rewrite), 1200, 'lua rewrite');
  assert.equal(ex.luaNs(LuaPhase.Access), 3400, 'lua access');
  assert.equal(ex.luaNs(LuaPhase.HeaderFilter), 500, 'lua header filter');
  assert.equal(ex.luaTotalNs(), 5100, 'lua total');
  assert.equal(ex.kongProxyLatencyMs, 12);
  assert.equal(ex.kongUpstreamLatencyMs, -1, 'absent header');
  assert.equal(ex.kongResponseLatencyMs, 0, 'zero is a value');
  assert.equal(ex.grpcStatus, 14);
  assert.equal(ex.localPort, 8443);
  assert.equal(ex.peerPort, 51000);
  assert.equal(ex.streamId, 5);
  assert.equal(ex.localAddress, '10.0.0.1', 'local address');
  assert.equal(ex.peerAddress, '192.168.1.20', 'peer address');
  assert.equal(ex.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'trace id hex');
  assert.equal(ex.spanId, '00f067aa0ba902b7', 'span id hex');
  assert.equal(ex.parentSpanId, '1111111111111111', 'parent span id hex');
  assert.equal(ex.path, '/caf\u00e9/x', 'latin1 path');
  assert.equal(ex.query, 'a=1&token=s', 'raw query');
  assert.equal(ex.host, 'API.example.com:8443', 'host as sent');
  assert.equal(ex.userAgent, 'curl/8.0');
  assert.equal(ex.traceState, 'congo=t61rcWkgMzE');
  assert.equal(ex.contentType, 'application/json');
});

test('absent strings, no parent span, unknown socket, a known method', () => {
  const { exchanges } = decode(
    frameBatch([{ type: 'client', method: Method.Post, family: 0, parentSpanId: 'ff'.repeat(8) }]),
  );
  const ex = exchanges[0];
  assert.equal(ex.isServer, false, 'client');
  assert.equal(ex.methodOriginal, 'POST');
  assert.equal(ex.methodText, undefined);
  assert.equal(ex.path, undefined, 'offset 0 = absent');
  assert.equal(ex.query, undefined);
  assert.equal(ex.host, undefined);
  assert.equal(ex.parentSpanId, undefined, 'bytes without the flag are not a parent');
  assert.equal(ex.peerAddress, undefined, 'family 0: no address');
  assert.equal(ex.endNs, 0, 'not seen stays 0');
});

test('strings are read when first asked for, then kept; detach copies the frame out of its batch', () => {
  const batch = frameBatch([serverSpec({ path: '/aaaa', userAgent: 'ua-1' }), serverSpec({ path: '/bbbb' })]);
  const { exchanges } = decode(batch);
  const [first, second] = exchanges;
  const pathAt = first.stringStart(EXCHANGE.fields.path.offset);
  batch.write('/zzzz', pathAt, 'latin1');
  assert.equal(first.path, '/zzzz', 'not read at decode time: sees the bytes as they are now');
  batch.write('/yyyy', pathAt, 'latin1');
  assert.equal(first.path, '/zzzz', 'read once, then kept');
  assert.equal(first.frame, batch, 'a view into the batch until detached');

  const size = batch.readUInt32LE(EXCHANGE.fields.frame_size.offset);
  const original = Buffer.from(batch.subarray(0, size));
  first.detach();
  assert.notEqual(first.frame, batch, 'its own bytes after detach');
  assert.deepEqual(first.frame.subarray(first.frameAt, first.frameAt + size), original, 'the frame, copied');
  first.detach();
  assert.deepEqual(first.frame.subarray(first.frameAt, first.frameAt + size), original, 'detaching twice is harmless');
  batch.fill(0);
  assert.equal(first.userAgent, 'ua-1', 'unread strings come from the copy');
  assert.equal(first.spanId.length, 16, 'ids too');
  assert.equal(second.frame, batch, 'others still view the batch');
});

test('ktime above 2^53 is subtracted exactly; times before the base are negative', () => {
  const base = (1n << 60n) + 123456789n;
  const { exchanges } = decode(
    frameBatch([{ startNs: base + 987654321012n, endNs: base - 1000n, responseStartNs: 0 }]),
    base,
  );
  assert.equal(exchanges[0].startNs, 987654321012, 'exact relative time');
  assert.equal(exchanges[0].endNs, -1000, 'before the base');
  assert.equal(exchanges[0].responseStartNs, 0, 'not seen');
});

test('PROC frames go to their own callback, in batch order with the exchanges', () => {
  const order: string[] = [];
  const procs: ProcFrame[] = [];
  decodeBatch(
    frameBatch([
      procFrame({ event: ProcEvent.Exec, pid: 77, ppid: 1, timeNs: 5000, comm: 'nginx' }),
      serverSpec(),
      procFrame({ event: ProcEvent.Exit, pid: 78, comm: 'a-very-long-command-name' }),
    ]),
    FRAME_BASE_NS,
    {
      exchange: () => order.push('exchange'),
      proc: (p) => {
        order.push(`proc ${p.pid}`);
        procs.push(p);
      },
    },
  );
  assert.deepEqual(order, ['proc 77', 'exchange', 'proc 78'], 'in order');
  assert.deepEqual(procs[0], { event: ProcEvent.Exec, pid: 77, ppid: 1, timeNs: 5000, comm: 'nginx' });
  assert.equal(procs[1].comm, 'a-very-long-com', 'comm is at most 15 bytes');
});

test('bad frames are counted and skipped, never thrown', () => {
  const good = exchangeFrame(serverSpec());
  const outOfFrame = exchangeFrame(serverSpec());
  outOfFrame.writeUInt32LE(outOfFrame.length, EXCHANGE.fields.path.offset + 4); // path longer than the frame
  const insideStruct = exchangeFrame(serverSpec());
  insideStruct.writeUInt32LE(16, EXCHANGE.fields.host.offset); // a string inside the struct
  const badMethod = exchangeFrame(serverSpec());
  badMethod[EXCHANGE.fields.method.offset] = Method.Max;
  const badError = exchangeFrame(serverSpec());
  badError[EXCHANGE.fields.error.offset] = ErrorCode.Max;
  const short = Buffer.alloc(64);
  short[0] = 1;
  short.writeUInt32LE(64, EXCHANGE.fields.frame_size.offset); // a frame shorter than the struct
  const shortProc = Buffer.alloc(16);
  shortProc[0] = 3;
  shortProc.writeUInt32LE(16, 4);
  const { exchanges, result } = decode(
    Buffer.concat([good, outOfFrame, insideStruct, badMethod, badError, short, shortProc, good]),
  );
  assert.equal(exchanges.length, 2, 'the good frames around the bad ones');
  assert.deepEqual(result, { exchanges: 2, procs: 0, malformed: 6 }, 'each bad frame counted');

  const untrusted = (mutate: (b: Buffer) => void, what: string) => {
    const bad = exchangeFrame(serverSpec());
    mutate(bad);
    const r = decode(Buffer.concat([good, bad, good])).result;
    assert.deepEqual(r, { exchanges: 1, procs: 0, malformed: 1 }, `${what}: the rest of the batch cannot be framed`);
  };
  untrusted((b) => b.writeUInt32LE(b.length + 4, EXCHANGE.fields.frame_size.offset), 'size not a multiple of 8');
  untrusted((b) => b.writeUInt32LE(b.length * 4, EXCHANGE.fields.frame_size.offset), 'size past the batch');
  untrusted((b) => b.writeUInt32LE(0, EXCHANGE.fields.frame_size.offset), 'size 0');
  untrusted((b) => (b[0] = 9), 'unknown type');
  assert.deepEqual(
    decode(Buffer.concat([good, Buffer.from([1, 0, 0])])).result,
    {
      exchanges: 1,
      procs: 0,
      malformed: 1,
    },
    'dangling bytes',
  );
  assert.deepEqual(decode(Buffer.alloc(0)).result, { exchanges: 0, procs: 0, malformed: 0 }, 'empty batch');
});

test('random bytes never throw', () => {
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const good = exchangeFrame(serverSpec());
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(good);
    for (let j = 0; j < 8; j++) b[rnd() * 2] = rnd();
    if (i % 3 === 0) b[0] = 1 + (rnd() % 3);
    const noise = Buffer.alloc(rnd());
    for (let j = 0; j < noise.length; j++) noise[j] = rnd();
    assert.doesNotThrow(() => {
      const { exchanges } = decode(Buffer.concat([b, noise]));
      for (const ex of exchanges) void [ex.path, ex.query, ex.host, ex.userAgent, ex.traceId, ex.peerAddress];
    }, 'random batch');
  }
});

test('IPv6 addresses are formatted per RFC 5952', () => {
  const v6 = (hex: string): string => formatAddress(AF_INET6, Buffer.from(hex.replace(/ /g, ''), 'hex'), 0);
  assert.equal(v6('2001 0db8 0000 0000 0000 0000 0000 0001'), '2001:db8::1');
  assert.equal(v6('0000 0000 0000 0000 0000 0000 0000 0001'), '::1');
  assert.equal(v6('0000 0000 0000 0000 0000 0000 0000 0000'), '::');
  assert.equal(v6('2001 0db8 0000 0001 0000 0000 0001 0001'), '2001:db8:0:1::1:1');
  assert.equal(v6('2001 0db8 0000 0000 0001 0000 0000 0001'), '2001:db8::1:0:0:1', 'leftmost longest run');
  assert.equal(v6('fe80 0000 0001 0002 0003 0004 0005 0000'), 'fe80:0:1:2:3:4:5:0', 'single zero groups stay');
  assert.equal(v6('0000 0000 0000 0000 0000 ffff 0a00 0001'), '10.0.0.1', 'IPv4-mapped');
  assert.equal(formatAddress(1, Buffer.alloc(16), 0), '', 'other families');
  const { exchanges } = decode(
    frameBatch([{ family: AF_INET6, peerAddr: [...Buffer.from('20010db8000000000000000000000001', 'hex')] }]),
  );
  assert.equal(exchanges[0].peerAddress, '2001:db8::1', 'from a frame');
});
