/**
 * The Assembler class of the addon: argument checks, the record framing it reads, malformed
 * records (counted and skipped, never fatal), and the frames and counters it returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAssembler, loadNative } from '../../src/capture/native';
import { DATA, Direction, Op, ProcEvent } from '../../src/capture/records';
import { readFrames } from './helpers/frame-reader';
import { Conversation, request, response } from './helpers/assembler-conversation';
import {
  TEST_BASE_NS,
  batchOf,
  connCloseRecord,
  connOpenRecord,
  dataRecord,
  luaPhaseRecord,
  procRecord,
} from './helpers/records';

test('wrong arguments are TypeErrors', () => {
  const { Assembler } = loadNative();
  const ctor = Assembler as unknown as (o?: unknown) => unknown;
  assert.throws(() => ctor(), TypeError, 'without new');
  for (const bad of [
    5,
    'x',
    [],
    { maxConnections: 'x' },
    { maxConnections: 0 },
    { maxConnections: 1.5 },
    { maxPendingPerConnection: -1 },
    { ignoredLocalPorts: 'x' },
    { ignoredLocalPorts: [70000] },
    { pendingTimeoutNs: -1 },
    { idleConnectionNs: 0n },
  ]) {
    assert.throws(
      () => new Assembler(bad as never),
      TypeError,
      JSON.stringify(bad, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
    );
  }
  const a = createAssembler({ pendingTimeoutNs: (10n ** 15n) as unknown as number, maxConnections: 3 });
  assert.throws(() => a.feed('x' as never), TypeError, 'feed needs a Buffer');
  assert.throws(() => (a.feed as () => Buffer)(), TypeError, 'feed needs an argument');
  assert.throws(() => a.flushIdle(1 as never), TypeError, 'flushIdle needs a bigint');
  assert.throws(() => a.flushAll(-1n), TypeError, 'flushAll needs a non-negative bigint');
  assert.equal(a.feed(Buffer.alloc(0)).length, 0, 'nothing in, nothing out');
});

test('one batch of many records: frames in order, counters', () => {
  const a = createAssembler();
  const records = [connOpenRecord({ connId: 1, direction: Direction.Server })];
  let t = TEST_BASE_NS;
  for (let i = 0; i < 10; i++) {
    records.push(dataRecord({ connId: 1, op: Op.Read, ktimeNs: (t += 1000n), bytes: request('GET', `/b${i}`) }));
    records.push(dataRecord({ connId: 1, op: Op.Write, ktimeNs: (t += 1000n), bytes: response(200) }));
  }
  const frames = readFrames(a.feed(batchOf(records)));
  assert.deepEqual(
    frames.map((f) => ('path' in f ? f.path : '?')),
    Array.from({ length: 10 }, (_, i) => `/b${i}`),
  );
  const s = a.stats();
  assert.equal(s.records, 21);
  assert.equal(s.exchanges, 10);
  assert.equal(s.serverExchanges, 10);
  assert.equal(s.clientExchanges, 0);
  assert.equal(s.connections, 1);
  assert.equal(s.malformedRecords, 0);
  assert.equal(s.activeServer.length, 20, 'Method.Max * 2 slots');
});

test('malformed records are counted and skipped; the rest of the batch still counts', () => {
  const c = new Conversation();
  const good = dataRecord({ connId: 1, op: Op.Read, bytes: request('GET', '/ok') });
  const shortOpen = connOpenRecord({ connId: 1 }).subarray(0, 40);
  const shortClose = connCloseRecord({ connId: 1 }).subarray(0, 20);
  const shortLua = luaPhaseRecord({ connId: 1, requestPtr: 1n, phase: 1, startNs: 0n, endNs: 1n }).subarray(0, 50);
  const shortProc = procRecord({ pid: 1, event: ProcEvent.Exit }).subarray(0, 30);
  const headerOnly = good.subarray(0, 16);
  const overCaptured = Buffer.from(good);
  overCaptured.writeUInt16LE(good.length, DATA.fields.captured_len.offset); // more than the record holds
  const tooLongTail = Buffer.from(good);
  tooLongTail.writeUInt16LE(17, DATA.fields.tail_len.offset);
  const capturedPastResult = Buffer.from(good);
  capturedPastResult.writeBigInt64LE(3n, DATA.fields.result.offset);
  const unknownType = Buffer.from(good);
  unknownType[0] = 99;
  const ngxRequest = Buffer.alloc(56);
  ngxRequest[0] = 4; // the removed KW_EVENT_NGX_REQUEST
  const bad = [
    shortOpen,
    shortClose,
    shortLua,
    shortProc,
    headerOnly,
    overCaptured,
    tooLongTail,
    capturedPastResult,
    unknownType,
    ngxRequest,
    Buffer.alloc(3),
  ];
  c.open(1, { direction: 'server' });
  c.feed(...bad, good);
  c.write(1, response(200));
  assert.equal(c.stats().malformedRecords, bad.length, 'each bad record counted');
  assert.deepEqual(
    c.done.map((e) => [e.path, e.status]),
    [['/ok', 200]],
    'the good record after them is used',
  );
});

test('a frame size past the batch ends it; a cut size prefix too', () => {
  const a = createAssembler();
  const good = connOpenRecord({ connId: 1 });
  const batch = batchOf([good]);
  const overrun = Buffer.concat([batch, Buffer.from([0xff, 0xff, 0, 0, 1, 2, 3])]);
  a.feed(overrun);
  assert.deepEqual([a.stats().records, a.stats().malformedRecords], [2, 1]);
  a.feed(Buffer.concat([batch, Buffer.from([1, 0])]));
  assert.deepEqual([a.stats().records, a.stats().malformedRecords], [4, 2]);
});

test('PROC frames carry the event as the kernel sent it', () => {
  const a = createAssembler();
  const frames = readFrames(
    a.feed(
      batchOf([procRecord({ pid: 4242, ppid: 1, event: ProcEvent.Exec, comm: 'nginx', ktimeNs: TEST_BASE_NS + 77n })]),
    ),
  );
  assert.deepEqual(frames, [{ type: 'proc', event: ProcEvent.Exec, pid: 4242, ppid: 1, timeNs: 77, comm: 'nginx' }]);
  assert.equal(a.stats().processExits, 0, 'only exits count');
});

test('DATA without CONN_OPEN on an unknown socket of a direction BPF knows', () => {
  const a = createAssembler();
  const frames = readFrames(
    a.feed(
      batchOf([
        dataRecord({ connId: 9, op: Op.Read, direction: Direction.Server, bytes: request('GET', '/x') }),
        dataRecord({ connId: 9, op: Op.Write, direction: Direction.Server, bytes: response(200) }),
      ]),
    ),
  );
  assert.deepEqual(
    frames.map((f) => ('path' in f ? [f.direction, f.path, f.status, f.local] : f)),
    [['server', '/x', 200, undefined]],
  );
});
