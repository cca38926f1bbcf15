import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBatch, formatAddress } from '../../src/capture/decoder';
import { Direction, EventType, LuaPhase, MAX_CAPTURE, Op, type CaptureRecord } from '../../src/capture/records';
import {
  TEST_BASE_NS,
  batchOf,
  connCloseRecord,
  connOpenRecord,
  dataRecord,
  luaPhaseRecord,
  ngxRequestRecord,
} from './helpers/records';

function decode(
  batch: Buffer,
  base = TEST_BASE_NS,
): { records: CaptureRecord[]; result: ReturnType<typeof decodeBatch> } {
  const records: CaptureRecord[] = [];
  const result = decodeBatch(batch, base, (r) => records.push(r));
  return { records, result };
}

test('decodes every record type with relative times', () => {
  const batch = batchOf([
    connOpenRecord({ connId: 7, ktimeNs: TEST_BASE_NS + 5n, localPort: 8000, peerPort: 51000, pid: 42 }),
    dataRecord({ connId: 7, ktimeNs: TEST_BASE_NS + 10n, op: Op.Read, bytes: 'GET / HTTP/1.1\r\n\r\n', pid: 42 }),
    connCloseRecord({ connId: 7, ktimeNs: TEST_BASE_NS + 20n, bytesRead: 18, bytesWritten: 99 }),
    ngxRequestRecord({ connId: 7, requestPtr: 0xdeadbeef00n, startNs: TEST_BASE_NS + 11n, endNs: 0n }),
    luaPhaseRecord({
      connId: 7,
      requestPtr: 1n,
      phase: LuaPhase.Access,
      startNs: TEST_BASE_NS,
      endNs: TEST_BASE_NS + 3n,
    }),
  ]);
  const { records, result } = decode(batch);
  assert.deepEqual(result, { records: 5, malformed: 0, unknown: 0 }, 'counts');
  const [open, data, close, ngx, lua] = records;
  assert.ok(open.type === EventType.ConnOpen, 'open type');
  assert.equal(open.timeNs, 5, 'open time');
  assert.equal(open.pid, 42, 'pid');
  assert.equal(open.localAddress, '127.0.0.1', 'local address');
  assert.equal(open.peerAddress, '10.0.0.2', 'peer address');
  assert.equal(open.localPort, 8000, 'local port');
  assert.equal(open.peerPort, 51000, 'peer port');
  assert.equal(open.direction, Direction.Server, 'direction');
  assert.ok(data.type === EventType.Data, 'data type');
  assert.equal(data.timeNs, 10, 'data time');
  assert.equal(data.result, 18, 'result');
  assert.equal(data.data.toString('latin1'), 'GET / HTTP/1.1\r\n\r\n', 'payload');
  assert.equal(data.tail.toString('latin1'), 'T / HTTP/1.1\r\n\r\n', 'tail');
  assert.equal(data.data.buffer, batch.buffer, 'payload is a view of the batch (no copy)');
  assert.ok(close.type === EventType.ConnClose, 'close type');
  assert.equal(close.bytesWritten, 99, 'bytes written');
  assert.ok(ngx.type === EventType.NgxRequest, 'ngx type');
  assert.equal(ngx.requestPtr, '000000deadbeef00', 'request ptr');
  assert.equal(ngx.startNs, 11, 'ngx start');
  assert.equal(ngx.endNs, 0, 'unknown end stays 0');
  assert.ok(lua.type === EventType.LuaPhase, 'lua type');
  assert.equal(lua.phase, LuaPhase.Access, 'phase');
  assert.equal(lua.endNs, 3, 'lua end');
});

test('negative results and times before the base', () => {
  const { records } = decode(
    batchOf([dataRecord({ connId: 1, op: Op.Write, result: -104, ktimeNs: TEST_BASE_NS - 1000n })]),
  );
  assert.ok(records[0].type === EventType.Data);
  assert.equal(records[0].result, -104, 'errno kept');
  assert.equal(records[0].timeNs, -1000, 'time before base');
  assert.equal(records[0].data.length, 0, 'no payload');
});

test('ktime above 2^53 is subtracted exactly', () => {
  const base = (1n << 60n) + 123456789n;
  const { records } = decode(batchOf([dataRecord({ connId: 1, op: Op.Read, ktimeNs: base + 987654321012n })]), base);
  assert.equal(records[0].timeNs, 987654321012, 'exact relative time');
});

test('truncated payload: captured head and tail, result is the full size', () => {
  const bytes = Buffer.alloc(100_000, 'x');
  bytes.write('0\r\n\r\n', bytes.length - 5);
  const { records } = decode(batchOf([dataRecord({ connId: 1, op: Op.Write, bytes })]));
  assert.ok(records[0].type === EventType.Data);
  assert.equal(records[0].result, 100_000, 'result');
  assert.equal(records[0].data.length, MAX_CAPTURE, 'captured');
  assert.equal(records[0].flags & 1, 1, 'truncated flag');
  assert.ok(records[0].tail.toString('latin1').endsWith('0\r\n\r\n'), 'tail');
});

test('garbled frames are counted and skipped, never thrown', () => {
  const good = dataRecord({ connId: 1, op: Op.Read, bytes: 'abc' });
  const tooShort = Buffer.alloc(8); // shorter than the common header
  const unknown = Buffer.alloc(16);
  unknown[0] = 99;
  const shortOpen = connOpenRecord({ connId: 2 }).subarray(0, 40);
  const lying = dataRecord({ connId: 3, op: Op.Read, bytes: 'abcdef' });
  lying.writeUInt16LE(5000, 40); // captured_len beyond the frame
  const badTail = dataRecord({ connId: 4, op: Op.Read, bytes: 'abcdef' });
  badTail.writeUInt16LE(17, 42);
  const batch = batchOf([good, tooShort, unknown, shortOpen, lying, badTail, good]);
  const { records, result } = decode(batch);
  assert.equal(records.length, 2, 'the two good records');
  assert.deepEqual(result, { records: 2, malformed: 4, unknown: 1 }, 'counts');

  // A frame size running past the batch ends it.
  const overrun = Buffer.concat([batchOf([good]), Buffer.from([0xff, 0xff, 0, 0, 1, 2, 3])]);
  assert.deepEqual(decode(overrun).result, { records: 1, malformed: 1, unknown: 0 }, 'overrun');
  // A dangling partial size prefix.
  assert.deepEqual(decode(Buffer.concat([batchOf([good]), Buffer.from([1, 0])])).result, {
    records: 1,
    malformed: 1,
    unknown: 0,
  });
  assert.deepEqual(decode(Buffer.alloc(0)).result, { records: 0, malformed: 0, unknown: 0 }, 'empty batch');
  // Zero-size frames.
  assert.deepEqual(decode(Buffer.alloc(12)).result, { records: 0, malformed: 3, unknown: 0 }, 'zero frames');
});

test('random bytes never throw', () => {
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (let i = 0; i < 2000; i++) {
    const len = rnd() * 4;
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = rnd();
    if (len >= 4) b.writeUInt32LE(rnd() % 128, 0);
    assert.doesNotThrow(() => decodeBatch(b, TEST_BASE_NS, () => {}), 'random batch');
  }
});

test('IPv6 addresses are formatted per RFC 5952', () => {
  const v6 = (hex: string): string => formatAddress(10, Buffer.from(hex.replace(/ /g, ''), 'hex'), 0);
  assert.equal(v6('2001 0db8 0000 0000 0000 0000 0000 0001'), '2001:db8::1');
  assert.equal(v6('0000 0000 0000 0000 0000 0000 0000 0001'), '::1');
  assert.equal(v6('0000 0000 0000 0000 0000 0000 0000 0000'), '::');
  assert.equal(v6('2001 0db8 0000 0001 0000 0000 0001 0001'), '2001:db8:0:1::1:1');
  assert.equal(v6('2001 0db8 0000 0000 0001 0000 0000 0001'), '2001:db8::1:0:0:1', 'leftmost longest run');
  assert.equal(v6('fe80 0000 0001 0002 0003 0004 0005 0000'), 'fe80:0:1:2:3:4:5:0', 'single zero groups stay');
  assert.equal(v6('0000 0000 0000 0000 0000 ffff 0a00 0001'), '10.0.0.1', 'IPv4-mapped');
  assert.equal(formatAddress(1, Buffer.alloc(16), 0), '', 'other families');
});
