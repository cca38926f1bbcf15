/**
 * Native batch -> typed records. A batch is consecutive frames [u32 LE size][record], no padding.
 * Every length is checked against the frame and the batch: a bad frame is counted and skipped,
 * never thrown, because one corrupt record must not cost the rest of the batch (or the agent).
 */
import {
  AF_INET,
  AF_INET6,
  CONN_CLOSE,
  CONN_OPEN,
  DATA,
  DATA_HEAD_SIZE,
  EventType,
  HEADER,
  LUA_PHASE,
  MAX_CAPTURE,
  NGX_REQUEST,
  TAIL_LEN,
  type CaptureRecord,
  type DataRecord,
  type Direction,
  type LuaPhase,
  type Op,
  type Source,
} from './records';

export interface DecodeResult {
  /** records handed to the visitor */
  records: number;
  /** frames whose sizes did not add up (skipped; a frame overrunning the batch ends it) */
  malformed: number;
  /** well-formed frames of a type this build does not know (skipped) */
  unknown: number;
}

const FRAME_PREFIX = 4;
const TWO_32 = 4294967296;

const H_TYPE = HEADER.fields.type.offset;
const H_PID = HEADER.fields.pid.offset;
const H_TS = HEADER.fields.timestamp_ns.offset;

// Plain locals: no property lookups through the module's exports on the per-record path.
const T_CONN_OPEN = EventType.ConnOpen;
const T_DATA = EventType.Data;
const T_CONN_CLOSE = EventType.ConnClose;
const T_NGX_REQUEST = EventType.NgxRequest;
const T_LUA_PHASE = EventType.LuaPhase;
const DATA_MIN = DATA_HEAD_SIZE;
const CONN_OPEN_SIZE = CONN_OPEN.size;
const CONN_CLOSE_SIZE = CONN_CLOSE.size;
const NGX_REQUEST_SIZE = NGX_REQUEST.size;
const LUA_PHASE_SIZE = LUA_PHASE.size;
const HEADER_SIZE = HEADER.size;
const MAX_DATA = MAX_CAPTURE;
const MAX_TAIL = TAIL_LEN;

const O = CONN_OPEN.fields;
const D = DATA.fields;
const C = CONN_CLOSE.fields;
const N = NGX_REQUEST.fields;
const L = LUA_PHASE.fields;
const C_BYTES_READ = C.bytes_read.offset;
const C_BYTES_WRITTEN = C.bytes_written.offset;
const C_CONN_ID = C.conn_id.offset;
const C_DIRECTION = C.direction.offset;
const C_PEER_STATE = C.peer_state.offset;
const C_FD = C.fd.offset;
const D_CAPTURED_LEN = D.captured_len.offset;
const D_CONN_ID = D.conn_id.offset;
const D_DIRECTION = D.direction.offset;
const D_FD = D.fd.offset;
const D_FLAGS = D.flags.offset;
const D_OP = D.op.offset;
const D_RESULT = D.result.offset;
const D_SOURCE = D.source.offset;
const D_TAIL = D.tail.offset;
const D_TAIL_LEN = D.tail_len.offset;
const L_CONN_ID = L.conn_id.offset;
const L_END_NS = L.end_ns.offset;
const L_FD = L.fd.offset;
const L_PHASE = L.phase.offset;
const L_REQUEST_PTR = L.request_ptr.offset;
const L_START_NS = L.start_ns.offset;
const N_CONN_ID = N.conn_id.offset;
const N_END_NS = N.end_ns.offset;
const N_FD = N.fd.offset;
const N_REQUEST_PTR = N.request_ptr.offset;
const N_START_NS = N.start_ns.offset;
const O_CONN_ID = O.conn_id.offset;
const O_DIRECTION = O.direction.offset;
const O_FAMILY = O.family.offset;
const O_FD = O.fd.offset;
const O_LOCAL_ADDR = O.local_addr.offset;
const O_LOCAL_PORT = O.local_port.offset;
const O_PEER_ADDR = O.peer_addr.offset;
const O_PEER_PORT = O.peer_port.offset;

/**
 * Calls `visit` once per valid record, in batch order. Buffers in DATA records are views into
 * `batch` (no copy): a visitor that keeps bytes past its return must copy them.
 */
export function decodeBatch(batch: Buffer, clockBaseNs: bigint, visit: (record: CaptureRecord) => void): DecodeResult {
  // The base split in two u32 halves keeps the per-record subtraction in plain numbers, exact
  // even when ktime itself is above 2^53 (hosts up for more than 104 days).
  const baseHi = Number(clockBaseNs >> 32n);
  const baseLo = Number(clockBaseNs & 0xffffffffn);
  // One view per batch: its reads compile to plain loads, Buffer's readers check every call.
  const view = new DataView(batch.buffer, batch.byteOffset, batch.length);
  const rel = (at: number): number =>
    (view.getUint32(at + 4, true) - baseHi) * TWO_32 + (view.getUint32(at, true) - baseLo);
  const relOrZero = (at: number): number =>
    batch.readUInt32LE(at) === 0 && batch.readUInt32LE(at + 4) === 0 ? 0 : rel(at);

  const result: DecodeResult = { records: 0, malformed: 0, unknown: 0 };
  const end = batch.length;
  let pos = 0;
  while (pos < end) {
    if (end - pos < FRAME_PREFIX) {
      result.malformed++;
      break;
    }
    const size = view.getUint32(pos, true);
    const at = pos + FRAME_PREFIX;
    if (size > end - at) {
      // The size itself is suspect, so nothing after it can be framed.
      result.malformed++;
      break;
    }
    pos = at + size;
    if (size < HEADER_SIZE) {
      result.malformed++;
      continue;
    }
    const type = batch[at + H_TYPE];
    const pid = view.getUint32(at + H_PID, true);
    const timeNs = rel(at + H_TS);
    switch (type) {
      case T_DATA: {
        if (size < DATA_MIN) break;
        const capturedLen = view.getUint16(at + D_CAPTURED_LEN, true);
        const tailLen = view.getUint16(at + D_TAIL_LEN, true);
        if (capturedLen > MAX_DATA || tailLen > MAX_TAIL || DATA_MIN + capturedLen > size) break;
        const dataAt = at + DATA_MIN;
        visit(
          new DecodedData(
            pid,
            timeNs,
            view.getUint32(at + D_CONN_ID + 4, true) * TWO_32 + view.getUint32(at + D_CONN_ID, true),
            view.getUint32(at + D_FD, true),
            view.getInt32(at + D_RESULT + 4, true) * TWO_32 + view.getUint32(at + D_RESULT, true),
            batch[at + D_OP] as Op,
            batch[at + D_DIRECTION] as Direction,
            batch[at + D_SOURCE] as Source,
            batch[at + D_FLAGS],
            batch.subarray(dataAt, dataAt + capturedLen),
            batch,
            at + D_TAIL,
            tailLen,
          ),
        );
        result.records++;
        continue;
      }
      case T_CONN_OPEN: {
        if (size < CONN_OPEN_SIZE) break;
        const family = batch[at + O_FAMILY];
        visit({
          type: T_CONN_OPEN,
          pid,
          timeNs,
          connId: readU64(batch, at + O_CONN_ID),
          fd: batch.readUInt32LE(at + O_FD),
          direction: batch[at + O_DIRECTION] as Direction,
          family,
          localAddress: formatAddress(family, batch, at + O_LOCAL_ADDR),
          localPort: batch.readUInt16LE(at + O_LOCAL_PORT),
          peerAddress: formatAddress(family, batch, at + O_PEER_ADDR),
          peerPort: batch.readUInt16LE(at + O_PEER_PORT),
        });
        result.records++;
        continue;
      }
      case T_CONN_CLOSE: {
        if (size < CONN_CLOSE_SIZE) break;
        visit({
          type: T_CONN_CLOSE,
          pid,
          timeNs,
          connId: readU64(batch, at + C_CONN_ID),
          fd: batch.readUInt32LE(at + C_FD),
          direction: batch[at + C_DIRECTION] as Direction,
          peerState: batch[at + C_PEER_STATE],
          bytesRead: readU64(batch, at + C_BYTES_READ),
          bytesWritten: readU64(batch, at + C_BYTES_WRITTEN),
        });
        result.records++;
        continue;
      }
      case T_NGX_REQUEST: {
        if (size < NGX_REQUEST_SIZE) break;
        visit({
          type: T_NGX_REQUEST,
          pid,
          timeNs,
          connId: readU64(batch, at + N_CONN_ID),
          fd: batch.readUInt32LE(at + N_FD),
          requestPtr: readHex64(batch, at + N_REQUEST_PTR),
          startNs: relOrZero(at + N_START_NS),
          endNs: relOrZero(at + N_END_NS),
        });
        result.records++;
        continue;
      }
      case T_LUA_PHASE: {
        if (size < LUA_PHASE_SIZE) break;
        visit({
          type: T_LUA_PHASE,
          pid,
          timeNs,
          connId: readU64(batch, at + L_CONN_ID),
          fd: batch.readUInt32LE(at + L_FD),
          requestPtr: readHex64(batch, at + L_REQUEST_PTR),
          phase: batch[at + L_PHASE] as LuaPhase,
          startNs: relOrZero(at + L_START_NS),
          endNs: relOrZero(at + L_END_NS),
        });
        result.records++;
        continue;
      }
      default:
        result.unknown++;
        continue;
    }
    // A known type whose frame is too short for it, or whose lengths overrun the frame.
    result.malformed++;
  }
  return result;
}

/**
 * A DATA record whose tail view is made when first asked for: it is only read when the captured
 * head does not reach the end of the transfer, and a view costs as much as the rest of decoding.
 */
class DecodedData implements DataRecord {
  readonly type = T_DATA;
  private tailView: Buffer | undefined;

  constructor(
    readonly pid: number,
    readonly timeNs: number,
    readonly connId: number,
    readonly fd: number,
    readonly result: number,
    readonly op: Op,
    readonly direction: Direction,
    readonly source: Source,
    readonly flags: number,
    readonly data: Buffer,
    private readonly batch: Buffer,
    private readonly tailAt: number,
    private readonly tailLen: number,
  ) {}

  get tail(): Buffer {
    return (this.tailView ??= this.batch.subarray(this.tailAt, this.tailAt + this.tailLen));
  }
}

/** u64 as a number: exact below 2^53, which conn ids and byte counts stay under. */
function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * TWO_32 + buf.readUInt32LE(at);
}

function readHex64(buf: Buffer, at: number): string {
  return (
    buf
      .readUInt32LE(at + 4)
      .toString(16)
      .padStart(8, '0') + buf.readUInt32LE(at).toString(16).padStart(8, '0')
  );
}

/** Network-order address bytes -> text; IPv4-mapped IPv6 is shown as the IPv4 address it is. */
export function formatAddress(family: number, buf: Buffer, at: number): string {
  if (family === AF_INET) return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
  if (family !== AF_INET6) return '';
  let mapped = buf[at + 10] === 0xff && buf[at + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = buf[at + i] === 0;
  if (mapped) return `${buf[at + 12]}.${buf[at + 13]}.${buf[at + 14]}.${buf[at + 15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(at + i));
  // RFC 5952: the longest run (leftmost on ties) of two or more zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
