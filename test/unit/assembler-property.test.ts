/**
 * Byte-mutation property test of the native assembler: thousands of recorded streams (a realistic
 * proxy conversation) with bytes flipped, records cut, repeated, dropped, reordered and their
 * sizes lied about. Whatever comes in, the assembler must not crash, its state must stay within
 * its bounds, every frame must be well formed, and it must never report more exchanges than
 * there are places in the bytes where a request could start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAssembler } from '../../src/capture/native';
import { DATA, DATA_HEAD_SIZE, Direction, EventType, Op, PeerState, ProcEvent } from '../../src/capture/records';
import { isProc, readFrames } from './helpers/frame-reader';
import { chunkedBody, request, response, split } from './helpers/assembler-conversation';
import {
  TEST_BASE_NS,
  batchOf,
  connCloseRecord,
  connOpenRecord,
  dataRecord,
  luaPhaseRecord,
  procRecord,
} from './helpers/records';

const MAX_CONNECTIONS = 6;
const MAX_PENDING = 4;

class Rng {
  constructor(private seed: number) {}
  next(): number {
    this.seed = (Math.imul(this.seed, 1103515245) + 12345) >>> 0;
    return this.seed >>> 8;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

/** A recorded proxy conversation: records as BPF would send them. */
function recordedStream(): Buffer[] {
  const out: Buffer[] = [];
  let t = TEST_BASE_NS;
  const at = () => (t += 1000n);
  const io = (
    connId: number,
    op: number,
    direction: number,
    bytes: Buffer | string,
    capture?: number,
    tailUnknown?: boolean,
  ) => out.push(dataRecord({ connId, op, direction, bytes, ktimeNs: at(), capture, tailUnknown }));
  const S = Direction.Server;
  const C = Direction.Client;
  out.push(procRecord({ pid: 100, ppid: 1, event: ProcEvent.Fork, ktimeNs: at() }));
  out.push(connOpenRecord({ connId: 1, direction: S, ktimeNs: at() }));
  out.push(connOpenRecord({ connId: 2, direction: C, localPort: 41000, peerPort: 9000, ktimeNs: at() }));
  for (let i = 0; i < 3; i++) {
    io(
      1,
      Op.Read,
      S,
      request('GET', `/svc/a${i}?q=${i}`, {
        traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`,
        'X-Request-Id': `r${i}`,
      }),
    );
    io(2, Op.Write, C, request('GET', `/a${i}?q=${i}`, { 'X-Request-Id': `r${i}` }));
    io(2, Op.Read, C, response(200, `upstream ${i}`, { Server: 'gunicorn' }));
    io(1, Op.Write, S, response(200, `served ${i}`, { Via: 'kong/3.4.2', 'X-Kong-Upstream-Latency': '3' }));
    out.push(luaPhaseRecord({ connId: 1, requestPtr: 1n, phase: 2, startNs: 10n, endNs: 50n, ktimeNs: at() }));
  }
  // pipelined, chunked request body, a chunked answer in truncated pieces
  io(
    1,
    Op.Read,
    S,
    request('POST', '/svc/p', { 'Transfer-Encoding': 'chunked' }, '') +
      '5\r\nhello\r\n0\r\n\r\n' +
      request('HEAD', '/svc/h'),
  );
  io(2, Op.Write, C, request('POST', '/p', { 'Content-Length': '5' }, 'hello'));
  const chunked = Buffer.concat([
    Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'),
    chunkedBody(9000, 3000),
  ]);
  for (const p of split(chunked, 4000)) io(2, Op.Read, C, p, 700);
  for (const p of split(chunked, 5000)) io(1, Op.Write, S, p, 600, true);
  io(1, Op.Write, S, 'HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n');
  // an upgrade, garbage, an HTTP/0.9 request, a slow head, resets
  out.push(connOpenRecord({ connId: 3, direction: S, ktimeNs: at() }));
  io(3, Op.Read, S, request('GET', '/ws', { Upgrade: 'websocket' }));
  io(3, Op.Write, S, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi');
  out.push(connOpenRecord({ connId: 4, direction: S, ktimeNs: at() }));
  io(4, Op.Read, S, '\x00\x01junk\r\n\r\nGET /after HTTP/1.1\r\n\r\n');
  io(4, Op.Write, S, response(400, 'bad', { Connection: 'close' }));
  out.push(connOpenRecord({ connId: 5, direction: S, ktimeNs: at() }));
  io(5, Op.Read, S, 'GET /nine\r\n');
  io(5, Op.Write, S, '<html>nine</html>');
  out.push(connOpenRecord({ connId: 6, direction: S, ktimeNs: at() }));
  io(6, Op.Read, S, 'GET /slow HTTP/1.1\r\nHo');
  out.push(dataRecord({ connId: 6, op: Op.Read, direction: S, result: -104, ktimeNs: at() }));
  out.push(dataRecord({ connId: 5, op: Op.Read, direction: S, result: 0, ktimeNs: at() }));
  io(7, Op.Write, Direction.Unknown, request('GET', '/old'));
  io(7, Op.Read, Direction.Unknown, response(503));
  out.push(connCloseRecord({ connId: 5, ktimeNs: at() }));
  out.push(connCloseRecord({ connId: 6, ktimeNs: at(), peerState: PeerState.Reset }));
  out.push(connCloseRecord({ connId: 1, ktimeNs: at(), peerState: PeerState.Closed }));
  out.push(procRecord({ pid: 100, event: ProcEvent.Exit, ktimeNs: at() }));
  return out;
}

const ALPHABET = Buffer.from(
  'GET /HTP1.0\r\n: 0123456789abcdefHEADPOSTContent-Length:Transfer-Encoding:chunked\r\n\r\n\x00\xff',
);

function mutate(records: Buffer[], rng: Rng): Buffer[] {
  const out = records.map((r) => Buffer.from(r));
  const n = 1 + rng.below(6);
  for (let k = 0; k < n; k++) {
    const i = rng.below(out.length);
    const r = out[i];
    switch (rng.below(10)) {
      case 0: // flip payload bytes
      case 1: {
        for (let j = 1 + rng.below(4); j > 0; j--) {
          const at = rng.below(r.length);
          r[at] = rng.below(2) ? ALPHABET[rng.below(ALPHABET.length)] : rng.below(256);
        }
        break;
      }
      case 2: // cut a record
        out[i] = r.subarray(0, rng.below(r.length + 1));
        break;
      case 3: // repeat one
        out.splice(i, 0, Buffer.from(r));
        break;
      case 4: // drop one
        out.splice(i, 1);
        break;
      case 5: {
        // swap neighbours
        const j = Math.min(out.length - 1, i + 1);
        [out[i], out[j]] = [out[j], out[i]];
        break;
      }
      case 6: // lie about the bytes moved
        if (r[0] === EventType.Data && r.length >= DATA_HEAD_SIZE) {
          const choices = [0n, -104n, -11n, 1n, 7n, 100_000n, 1n << 40n, BigInt(rng.below(70_000))];
          r.writeBigInt64LE(choices[rng.below(choices.length)], DATA.fields.result.offset);
        }
        break;
      case 7: // captured_len, tail_len, flags
        if (r[0] === EventType.Data && r.length >= DATA_HEAD_SIZE) {
          const f = [DATA.fields.captured_len.offset, DATA.fields.tail_len.offset, DATA.fields.flags.offset];
          const at = f[rng.below(f.length)];
          r[at] = rng.below(256);
        }
        break;
      case 8: // op / direction / conn id
        if (r.length >= 40) r[[36, 37, 16, 20][rng.below(4)]] = rng.below(4);
        break;
      case 9: {
        // insert random text into a DATA payload
        if (r[0] !== EventType.Data || r.length < DATA_HEAD_SIZE) break;
        const extra = Buffer.alloc(rng.below(64));
        for (let j = 0; j < extra.length; j++) extra[j] = ALPHABET[rng.below(ALPHABET.length)];
        const at = DATA_HEAD_SIZE + rng.below(r.length - DATA_HEAD_SIZE + 1);
        const grown = Buffer.concat([r.subarray(0, at), extra, r.subarray(at)]);
        const captured = grown.length - DATA_HEAD_SIZE;
        if (captured <= 16384) {
          grown.writeUInt16LE(captured, DATA.fields.captured_len.offset);
          if (rng.below(2))
            grown.writeBigInt64LE(BigInt(captured + rng.below(3) * rng.below(50_000)), DATA.fields.result.offset);
          out[i] = grown;
        }
        break;
      }
    }
  }
  return out;
}

/** Where a request could start: each transfer's first byte, and each byte after an LF copied. */
function requestStarts(records: Buffer[]): number {
  let n = 0;
  for (const r of records) {
    if (r.length < DATA_HEAD_SIZE || r[0] !== EventType.Data) continue;
    if (r.readBigInt64LE(DATA.fields.result.offset) <= 0n) continue;
    n++;
    for (let i = DATA.fields.tail.offset; i < r.length; i++) if (r[i] === 0x0a) n++;
  }
  return n;
}

function check(records: Buffer[], label: string): void {
  const a = createAssembler({
    maxConnections: MAX_CONNECTIONS,
    maxPendingPerConnection: MAX_PENDING,
    pendingTimeoutNs: 5e9,
  });
  let exchanges = 0;
  const count = (b: Buffer) => {
    for (const f of readFrames(b)) {
      if (isProc(f)) continue;
      exchanges++;
      assert.ok(f.endNs >= f.startNs || f.startNs === 0, `${label}: ends before it starts`);
      assert.ok(f.flags < 0x400, `${label}: unknown flags ${f.flags}`);
    }
  };
  // one record at a time, then in one batch on a second assembler: the same result
  for (const r of records) {
    count(a.feed(batchOf([r])));
    const s = a.stats();
    assert.ok(s.connections <= MAX_CONNECTIONS, `${label}: ${s.connections} connections`);
    assert.ok(s.inFlight <= s.connections * MAX_PENDING, `${label}: ${s.inFlight} in flight on ${s.connections}`);
  }
  count(a.flushIdle(TEST_BASE_NS + 10_000_000_000n));
  count(a.flushAll(TEST_BASE_NS + 20_000_000_000n));
  const s = a.stats();
  assert.equal(s.connections, 0, `${label}: connections after flushAll`);
  assert.equal(s.inFlight, 0, `${label}: in flight after flushAll`);
  assert.ok(
    s.activeServer.every((x) => x === 0),
    `${label}: active after flushAll`,
  );
  assert.equal(s.exchanges, exchanges, `${label}: exchange counter`);
  const starts = requestStarts(records);
  assert.ok(exchanges <= starts, `${label}: ${exchanges} exchanges > ${starts} request starts`);
  const b = createAssembler({
    maxConnections: MAX_CONNECTIONS,
    maxPendingPerConnection: MAX_PENDING,
    pendingTimeoutNs: 5e9,
  });
  const batched = readFrames(b.feed(batchOf(records))).filter((f) => !isProc(f)).length;
  assert.ok(batched <= starts, `${label}: batched ${batched} > ${starts}`);
}

test('the recorded stream itself: every exchange reported, nothing malformed', () => {
  const records = recordedStream();
  const a = createAssembler({ maxConnections: MAX_CONNECTIONS, maxPendingPerConnection: MAX_PENDING });
  const frames = readFrames(a.feed(batchOf(records))).filter((f) => !isProc(f));
  assert.ok(frames.length >= 14, `exchanges: ${frames.length}`);
  assert.equal(a.stats().malformedRecords, 0);
  check(records, 'unmutated');
});

test('thousands of mutated streams: no crash, bounded state, well-formed frames, no invented exchanges', () => {
  const base = recordedStream();
  const iterations = Number(process.env.ASSEMBLER_PROPERTY_RUNS ?? '3000');
  for (let i = 0; i < iterations; i++) {
    const rng = new Rng(0x9e3779b9 ^ i);
    check(mutate(base, rng), `stream #${i}`);
  }
});

test('random bytes on every kind of socket never throw', () => {
  const rng = new Rng(99);
  const a = createAssembler({ maxConnections: 4 });
  for (let i = 0; i < 2000; i++) {
    const bytes = Buffer.alloc(rng.below(300));
    for (let k = 0; k < bytes.length; k++)
      bytes[k] = rng.below(4) ? ALPHABET[rng.below(ALPHABET.length)] : rng.below(256);
    const records = [
      dataRecord({
        connId: 1 + rng.below(6),
        op: 1 + rng.below(2),
        direction: rng.below(3),
        bytes,
        capture: 1 + rng.below(400),
        tailUnknown: rng.below(2) === 1,
      }),
    ];
    if (rng.below(20) === 0) records.push(connCloseRecord({ connId: 1 + rng.below(6), peerState: rng.below(4) }));
    readFrames(a.feed(batchOf(records)));
  }
  readFrames(a.flushAll(TEST_BASE_NS + 1n));
  assert.equal(a.stats().connections, 0);
});
