/**
 * Builders of raw BPF records and batches, byte for byte as the kernel side writes them
 * (bpf/kong_watcher_events.h, mirrored in src/capture/records.ts), so the native assembler and
 * everything after it can be tested on synthetic streams without a kernel.
 */
import {
  COMM_LEN,
  CONN_CLOSE,
  CONN_OPEN,
  DATA,
  DATA_HEAD_SIZE,
  DataFlag,
  Direction,
  EventType,
  LUA_PHASE,
  MAX_CAPTURE,
  Op,
  PROC,
  Source,
  TAIL_LEN,
} from '../../../src/capture/records';

export const TEST_BASE_NS = 1_000_000_000_000n;

function header(buf: Buffer, type: number, pid: number, ktimeNs: bigint): void {
  buf[0] = type;
  buf.writeUInt32LE(pid, 4);
  buf.writeBigUInt64LE(ktimeNs, 8);
}

export interface ConnOpenSpec {
  pid?: number;
  ktimeNs?: bigint;
  connId: number;
  fd?: number;
  direction?: number;
  family?: number;
  localPort?: number;
  peerPort?: number;
  localAddr?: number[];
  peerAddr?: number[];
}

export function connOpenRecord(s: ConnOpenSpec): Buffer {
  const b = Buffer.alloc(CONN_OPEN.size);
  header(b, EventType.ConnOpen, s.pid ?? 100, s.ktimeNs ?? TEST_BASE_NS);
  const fl = CONN_OPEN.fields;
  b.writeBigUInt64LE(BigInt(s.connId), fl.conn_id.offset);
  b.writeUInt32LE(s.fd ?? 10, fl.fd.offset);
  b[fl.direction.offset] = s.direction ?? Direction.Server;
  b[fl.family.offset] = s.family ?? 2;
  b.writeUInt16LE(s.localPort ?? 8000, fl.local_port.offset);
  b.writeUInt16LE(s.peerPort ?? 40000, fl.peer_port.offset);
  Buffer.from(s.localAddr ?? [127, 0, 0, 1]).copy(b, fl.local_addr.offset);
  Buffer.from(s.peerAddr ?? [10, 0, 0, 2]).copy(b, fl.peer_addr.offset);
  return b;
}

export interface DataSpec {
  pid?: number;
  ktimeNs?: bigint;
  connId: number;
  fd?: number;
  op: number;
  direction?: number;
  source?: number;
  /** bytes moved; defaults to bytes.length */
  result?: number;
  /** all bytes moved (the builder keeps the first `capture` and the last 16, as BPF does) */
  bytes?: Buffer | string;
  /** cap of captured bytes (defaults to MAX_CAPTURE) */
  capture?: number;
  /** the iovec walk was cut short: the tail is not the transfer's end (KW_DATA_TAIL_UNKNOWN) */
  tailUnknown?: boolean;
  /** plaintext of a TLS connection (KW_DATA_TLS) */
  tls?: boolean;
}

/**
 * A DATA record as BPF sends it: the first `capture` bytes; when they do not reach the end, the
 * last 16 in tail[] (tail_len 0 when data[] holds the end); TRUNCATED when the middle is missing.
 */
export function dataRecord(s: DataSpec): Buffer {
  const bytes = typeof s.bytes === 'string' ? Buffer.from(s.bytes, 'latin1') : (s.bytes ?? Buffer.alloc(0));
  const result = s.result ?? bytes.length;
  const moved = result > 0 ? Math.min(result, bytes.length) : 0;
  const captured = Math.min(moved, s.capture ?? MAX_CAPTURE);
  const tailLen = captured < moved ? Math.min(moved, TAIL_LEN) : 0;
  const b = Buffer.alloc(DATA_HEAD_SIZE + captured);
  header(b, EventType.Data, s.pid ?? 100, s.ktimeNs ?? TEST_BASE_NS);
  const fl = DATA.fields;
  b.writeBigUInt64LE(BigInt(s.connId), fl.conn_id.offset);
  b.writeBigInt64LE(BigInt(result), fl.result.offset);
  b.writeUInt32LE(s.fd ?? 10, fl.fd.offset);
  b[fl.op.offset] = s.op;
  b[fl.direction.offset] = s.direction ?? Direction.Server;
  b[fl.source.offset] = s.source ?? (s.op === Op.Read ? Source.Recvfrom : Source.Writev);
  let flags = result > captured ? DataFlag.Truncated : 0;
  if (s.tailUnknown) flags |= DataFlag.TailUnknown;
  if (s.tls) flags |= DataFlag.Tls;
  b[fl.flags.offset] = flags;
  b.writeUInt16LE(captured, fl.captured_len.offset);
  b.writeUInt16LE(tailLen, fl.tail_len.offset);
  if (tailLen > 0) {
    // A walk cut short copies the end of an earlier iovec: any bytes but the real last ones.
    const tailFrom = s.tailUnknown ? Math.max(0, Math.floor(moved / 2) - tailLen) : moved - tailLen;
    bytes.copy(b, fl.tail.offset, tailFrom, tailFrom + tailLen);
  }
  bytes.copy(b, fl.data.offset, 0, captured);
  return b;
}

export function connCloseRecord(s: {
  pid?: number;
  ktimeNs?: bigint;
  connId: number;
  fd?: number;
  direction?: number;
  peerState?: number;
  bytesRead?: number;
  bytesWritten?: number;
}): Buffer {
  const b = Buffer.alloc(CONN_CLOSE.size);
  header(b, EventType.ConnClose, s.pid ?? 100, s.ktimeNs ?? TEST_BASE_NS);
  const fl = CONN_CLOSE.fields;
  b.writeBigUInt64LE(BigInt(s.connId), fl.conn_id.offset);
  b.writeUInt32LE(s.fd ?? 10, fl.fd.offset);
  b[fl.direction.offset] = s.direction ?? Direction.Server;
  b[fl.peer_state.offset] = s.peerState ?? 0;
  b.writeBigUInt64LE(BigInt(s.bytesRead ?? 0), fl.bytes_read.offset);
  b.writeBigUInt64LE(BigInt(s.bytesWritten ?? 0), fl.bytes_written.offset);
  return b;
}

export function luaPhaseRecord(s: {
  pid?: number;
  ktimeNs?: bigint;
  connId: number;
  requestPtr: bigint;
  phase: number;
  startNs: bigint;
  endNs: bigint;
  fd?: number;
}): Buffer {
  const b = Buffer.alloc(LUA_PHASE.size);
  header(b, EventType.LuaPhase, s.pid ?? 100, s.ktimeNs ?? TEST_BASE_NS);
  const fl = LUA_PHASE.fields;
  b.writeBigUInt64LE(BigInt(s.connId), fl.conn_id.offset);
  b.writeBigUInt64LE(s.requestPtr, fl.request_ptr.offset);
  b.writeBigUInt64LE(s.startNs, fl.start_ns.offset);
  b.writeBigUInt64LE(s.endNs, fl.end_ns.offset);
  b.writeUInt32LE(s.fd ?? 10, fl.fd.offset);
  b[fl.phase.offset] = s.phase;
  return b;
}

/** A process event: hdr.pid is the process it is about. */
export function procRecord(s: { pid: number; ktimeNs?: bigint; ppid?: number; event: number; comm?: string }): Buffer {
  const b = Buffer.alloc(PROC.size);
  header(b, EventType.Proc, s.pid, s.ktimeNs ?? TEST_BASE_NS);
  const fl = PROC.fields;
  b.writeUInt32LE(s.ppid ?? 0, fl.ppid.offset);
  b[fl.event.offset] = s.event;
  Buffer.from(s.comm ?? 'nginx', 'latin1').copy(b, fl.comm.offset, 0, COMM_LEN - 1);
  return b;
}

/** [u32 LE size][record] for each record, no padding: the native batch format. */
export function batchOf(records: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(r.length);
    parts.push(len, r);
  }
  return Buffer.concat(parts);
}
