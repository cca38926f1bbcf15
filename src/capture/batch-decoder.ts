/**
 * Native batch -> Exchange objects and process events. A batch is consecutive frames laid out as
 * native/kw_exchange.h says; each frame's frame_size steps to the next.
 *
 * Every length is checked against the frame and the batch: a bad frame is counted and skipped,
 * never thrown, because one corrupt frame must not cost the rest of the batch (or the agent). A
 * frame whose own size cannot be trusted ends the batch, since nothing after it can be framed.
 */
import { COMM_LEN, type ProcEvent } from './records';
import { EXCHANGE, ErrorCode, FrameType, Method, PROC_FRAME } from './exchange-layout';
import { EXCHANGE_SIZE, Exchange, STRING_FIELDS } from './exchange';

/** A kernel process event (fork, exec, exit of a followed process, or an exec of execComm). */
export interface ProcFrame {
  event: ProcEvent;
  pid: number;
  ppid: number;
  /** relative monotonic ns, as exchange times */
  timeNs: number;
  comm: string;
}

/** Where decoded frames go, in batch order. */
export interface FrameSink {
  /** The exchange views `batch` until detach(): keeping it longer keeps the batch alive. */
  exchange(ex: Exchange): void;
  proc(frame: ProcFrame): void;
}

export interface DecodeResult {
  exchanges: number;
  procs: number;
  /** frames skipped, or the rest of a batch given up, because their sizes did not add up */
  malformed: number;
}

const TWO_32 = 4294967296;
const T_SERVER = FrameType.Server;
const T_CLIENT = FrameType.Client;
const T_PROC = FrameType.Proc;
const X_FRAME_SIZE = EXCHANGE.fields.frame_size.offset;
const X_METHOD = EXCHANGE.fields.method.offset;
const X_ERROR = EXCHANGE.fields.error.offset;
const P = PROC_FRAME.fields;
const P_SIZE = PROC_FRAME.size;
const P_FRAME_SIZE = P.frame_size.offset;
const STRINGS = Object.values(STRING_FIELDS);
const STRING_COUNT = STRINGS.length;
const METHOD_MAX = Method.Max;
const ERROR_MAX = ErrorCode.Max;

/** Calls the sink once per valid frame, in batch order. */
export function decodeBatch(batch: Buffer, clockBaseNs: bigint, sink: FrameSink): DecodeResult {
  const baseHi = Number(clockBaseNs >> 32n);
  const baseLo = Number(clockBaseNs & 0xffffffffn);
  // One view per batch: its reads compile to plain loads, Buffer's readers check every call.
  const view = new DataView(batch.buffer, batch.byteOffset, batch.length);
  const result: DecodeResult = { exchanges: 0, procs: 0, malformed: 0 };
  const end = batch.length;
  let at = 0;
  while (at < end) {
    const left = end - at;
    const type = batch[at];
    let size: number;
    if (type === T_SERVER || type === T_CLIENT) {
      if (left < X_FRAME_SIZE + 4) break;
      size = view.getUint32(at + X_FRAME_SIZE, true);
    } else if (type === T_PROC) {
      if (left < P_FRAME_SIZE + 4) break;
      size = view.getUint32(at + P_FRAME_SIZE, true);
    } else {
      break;
    }
    if (size === 0 || (size & 7) !== 0 || size > left) break;
    const frameAt = at;
    at += size;
    if (type === T_PROC) {
      if (size < P_SIZE) {
        result.malformed++;
        continue;
      }
      sink.proc(procFrame(view, batch, frameAt, baseHi, baseLo));
      result.procs++;
      continue;
    }
    if (!exchangeFrameValid(view, batch, frameAt, size)) {
      result.malformed++;
      continue;
    }
    sink.exchange(new Exchange(view, batch, frameAt, size, baseHi, baseLo));
    result.exchanges++;
  }
  if (at < end) result.malformed++;
  return result;
}

/** The struct fits, the enums are known, and every string lies in the frame after the struct. */
function exchangeFrameValid(view: DataView, batch: Buffer, at: number, size: number): boolean {
  if (size < EXCHANGE_SIZE) return false;
  if (batch[at + X_METHOD] >= METHOD_MAX || batch[at + X_ERROR] >= ERROR_MAX) return false;
  for (let i = 0; i < STRING_COUNT; i++) {
    const field = at + STRINGS[i];
    const offset = view.getUint32(field, true);
    if (offset === 0) continue;
    const length = view.getUint32(field + 4, true);
    if (offset < EXCHANGE_SIZE || offset > size || length > size - offset) return false;
  }
  return true;
}

function procFrame(view: DataView, batch: Buffer, at: number, baseHi: number, baseLo: number): ProcFrame {
  const commAt = at + P.comm.offset;
  let commEnd = commAt;
  while (commEnd < commAt + COMM_LEN && batch[commEnd] !== 0) commEnd++;
  const lo = view.getUint32(at + P.time_ns.offset, true);
  const hi = view.getUint32(at + P.time_ns.offset + 4, true);
  return {
    event: batch[at + P.event.offset] as ProcEvent,
    pid: view.getUint32(at + P.pid.offset, true),
    ppid: view.getUint32(at + P.ppid.offset, true),
    timeNs: lo === 0 && hi === 0 ? 0 : (hi - baseHi) * TWO_32 + (lo - baseLo),
    comm: batch.toString('latin1', commAt, commEnd),
  };
}
