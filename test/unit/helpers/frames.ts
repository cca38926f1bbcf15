/**
 * Writers of the frames the native assembler hands to JavaScript (native/kw_exchange.h, mirrored
 * in src/capture/exchange-layout.ts), byte for byte, so that decoding and every stage after it
 * are tested without the addon. Defaults describe a Kong-proxied GET and its upstream attempt.
 */
import { AF_INET, COMM_LEN } from '../../../src/capture/records';
import { EXCHANGE, ExchangeFlag, FrameType, Method, PROC_FRAME } from '../../../src/capture/exchange-layout';

/** ktime of relative time 0: times given as numbers are relative to it, as the decoder makes them. */
export const FRAME_BASE_NS = 1_000_000_000_000n;

export interface ExchangeFrameSpec {
  type?: 'server' | 'client';
  method?: number;
  /** written when given (the assembler sets it for Method.Other) */
  methodText?: string;
  error?: number;
  httpVersion?: number;
  status?: number;
  flags?: number;
  pid?: number;
  connRequest?: number;
  attempts?: number;
  attempt?: number;
  id?: number;
  parentId?: number;
  connId?: number;
  /** numbers: ns relative to FRAME_BASE_NS (0 = not seen); bigints: raw ktime */
  startNs?: number | bigint;
  requestEndNs?: number | bigint;
  responseStartNs?: number | bigint;
  endNs?: number | bigint;
  upstreamStartNs?: number | bigint;
  upstreamEndNs?: number | bigint;
  requestBodySize?: number;
  responseBodySize?: number;
  requestHeadSize?: number;
  responseHeadSize?: number;
  /** by LuaPhase value */
  luaNs?: number[];
  kongProxyLatencyMs?: number;
  kongUpstreamLatencyMs?: number;
  kongResponseLatencyMs?: number;
  grpcStatus?: number;
  family?: number;
  localPort?: number;
  peerPort?: number;
  streamId?: number;
  localAddr?: number[];
  peerAddr?: number[];
  /** hex */
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  path?: string;
  query?: string;
  host?: string;
  userAgent?: string;
  traceState?: string;
  contentType?: string;
}

const F = EXCHANGE.fields;
let seq = 0;
const hex = (n: number, width: number, lead: string) => lead + n.toString(16).padStart(width - 1, '0');

/** A fresh id triple: exchange id, trace id, span id. */
export function nextIds(): { id: number; traceId: string; spanId: string } {
  seq++;
  return { id: seq, traceId: hex(seq, 32, 'a'), spanId: hex(seq, 16, 'b') };
}

function ktime(v: number | bigint | undefined): bigint {
  if (v === undefined || v === 0) return 0n;
  return typeof v === 'bigint' ? v : FRAME_BASE_NS + BigInt(v);
}

/** One SERVER or CLIENT frame: the struct, then its strings (latin1), padded to 8 bytes. */
export function exchangeFrame(s: ExchangeFrameSpec): Buffer {
  const strings: [number, string | undefined][] = [
    [F.method_text.offset, s.methodText],
    [F.path.offset, s.path],
    [F.query.offset, s.query],
    [F.host.offset, s.host],
    [F.user_agent.offset, s.userAgent],
    [F.trace_state.offset, s.traceState],
    [F.content_type.offset, s.contentType],
  ];
  let size = EXCHANGE.size;
  for (const [, v] of strings) if (v !== undefined) size += Buffer.byteLength(v, 'latin1');
  size = Math.ceil(size / 8) * 8;
  const b = Buffer.alloc(size);
  b[F.type.offset] = s.type === 'client' ? FrameType.Client : FrameType.Server;
  b[F.method.offset] = s.method ?? Method.Get;
  b[F.error.offset] = s.error ?? 0;
  b[F.http_version.offset] = s.httpVersion ?? 11;
  b.writeUInt16LE(s.status ?? 0, F.status.offset);
  b.writeUInt16LE(s.flags ?? 0, F.flags.offset);
  b.writeUInt32LE(size, F.frame_size.offset);
  b.writeUInt32LE(s.pid ?? 100, F.pid.offset);
  b.writeUInt32LE(s.connRequest ?? 1, F.conn_request.offset);
  b.writeUInt16LE(s.attempts ?? 0, F.attempts.offset);
  b.writeUInt16LE(s.attempt ?? 0, F.attempt.offset);
  b.writeBigUInt64LE(BigInt(s.id ?? 0), F.id.offset);
  b.writeBigUInt64LE(BigInt(s.parentId ?? 0), F.parent_id.offset);
  b.writeBigUInt64LE(BigInt(s.connId ?? 1), F.conn_id.offset);
  b.writeBigUInt64LE(ktime(s.startNs), F.start_ns.offset);
  b.writeBigUInt64LE(ktime(s.requestEndNs), F.request_end_ns.offset);
  b.writeBigUInt64LE(ktime(s.responseStartNs), F.response_start_ns.offset);
  b.writeBigUInt64LE(ktime(s.endNs), F.end_ns.offset);
  b.writeBigUInt64LE(ktime(s.upstreamStartNs), F.upstream_start_ns.offset);
  b.writeBigUInt64LE(ktime(s.upstreamEndNs), F.upstream_end_ns.offset);
  b.writeBigUInt64LE(BigInt(s.requestBodySize ?? 0), F.request_body_size.offset);
  b.writeBigUInt64LE(BigInt(s.responseBodySize ?? 0), F.response_body_size.offset);
  b.writeUInt32LE(s.requestHeadSize ?? 0, F.request_head_size.offset);
  b.writeUInt32LE(s.responseHeadSize ?? 0, F.response_head_size.offset);
  (s.luaNs ?? []).forEach((ns, phase) => {
    if (ns !== undefined) b.writeBigUInt64LE(BigInt(ns), F.lua_ns.offset + phase * 8);
  });
  b.writeInt32LE(s.kongProxyLatencyMs ?? -1, F.kong_proxy_latency_ms.offset);
  b.writeInt32LE(s.kongUpstreamLatencyMs ?? -1, F.kong_upstream_latency_ms.offset);
  b.writeInt32LE(s.kongResponseLatencyMs ?? -1, F.kong_response_latency_ms.offset);
  b.writeInt16LE(s.grpcStatus ?? -1, F.grpc_status.offset);
  b[F.family.offset] = s.family ?? AF_INET;
  b.writeUInt16LE(s.localPort ?? 0, F.local_port.offset);
  b.writeUInt16LE(s.peerPort ?? 0, F.peer_port.offset);
  b.writeUInt32LE(s.streamId ?? 0, F.stream_id.offset);
  Buffer.from(s.localAddr ?? [127, 0, 0, 1]).copy(b, F.local_addr.offset);
  Buffer.from(s.peerAddr ?? [127, 0, 0, 1]).copy(b, F.peer_addr.offset);
  if (s.traceId !== undefined) Buffer.from(s.traceId, 'hex').copy(b, F.trace_id.offset);
  if (s.spanId !== undefined) Buffer.from(s.spanId, 'hex').copy(b, F.span_id.offset);
  if (s.parentSpanId !== undefined) Buffer.from(s.parentSpanId, 'hex').copy(b, F.parent_span_id.offset);
  let at = EXCHANGE.size;
  for (const [field, v] of strings) {
    if (v === undefined) continue;
    const len = b.write(v, at, 'latin1');
    b.writeUInt32LE(at, field);
    b.writeUInt32LE(len, field + 4);
    at += len;
  }
  return b;
}

/** A Kong-proxied inbound request, answered by its upstream: the shape of most frames. */
export function serverSpec(over: ExchangeFrameSpec = {}): ExchangeFrameSpec {
  const ids = nextIds();
  return {
    type: 'server',
    method: Method.Get,
    httpVersion: 11,
    status: 200,
    flags: ExchangeFlag.Response | ExchangeFlag.Sampled | ExchangeFlag.Via,
    id: ids.id,
    traceId: ids.traceId,
    spanId: ids.spanId,
    attempts: 1,
    startNs: 1_000_000,
    requestEndNs: 1_100_000,
    responseStartNs: 5_000_000,
    endNs: 5_500_000,
    upstreamStartNs: 2_000_000,
    upstreamEndNs: 5_000_000,
    requestHeadSize: 80,
    responseHeadSize: 120,
    responseBodySize: 512,
    kongProxyLatencyMs: 1,
    kongUpstreamLatencyMs: 3,
    localPort: 8000,
    peerPort: 40000,
    localAddr: [127, 0, 0, 1],
    peerAddr: [127, 0, 0, 1],
    path: '/orders/42',
    query: 'limit=5&token=abc',
    host: 'api.example.com:8000',
    userAgent: 'curl/8.0',
    ...over,
  };
}

/** An upstream attempt of `server`, linked the way the assembler links it. */
export function clientSpec(server: ExchangeFrameSpec, over: ExchangeFrameSpec = {}): ExchangeFrameSpec {
  const ids = nextIds();
  return {
    type: 'client',
    method: server.method,
    httpVersion: 11,
    status: 200,
    flags: ExchangeFlag.Response | ExchangeFlag.Sampled | ExchangeFlag.ParentSpan,
    id: ids.id,
    parentId: server.id,
    traceId: server.traceId,
    spanId: ids.spanId.replace(/^b/, 'c'),
    parentSpanId: server.spanId,
    pid: server.pid,
    connId: 2,
    startNs: 2_000_000,
    requestEndNs: 2_050_000,
    responseStartNs: 4_900_000,
    endNs: 5_000_000,
    requestHeadSize: 90,
    responseHeadSize: 100,
    responseBodySize: 512,
    localPort: 50000,
    peerPort: 9000,
    localAddr: [127, 0, 0, 1],
    peerAddr: [127, 0, 0, 2],
    path: server.path,
    query: server.query,
    host: 'upstream.internal:9000',
    ...over,
  };
}

export interface ProcFrameSpec {
  event: number;
  pid: number;
  ppid?: number;
  timeNs?: number;
  comm?: string;
}

export function procFrame(s: ProcFrameSpec): Buffer {
  const P = PROC_FRAME.fields;
  const b = Buffer.alloc(PROC_FRAME.size);
  b[P.type.offset] = FrameType.Proc;
  b[P.event.offset] = s.event;
  b.writeUInt32LE(PROC_FRAME.size, P.frame_size.offset);
  b.writeUInt32LE(s.pid, P.pid.offset);
  b.writeUInt32LE(s.ppid ?? 1, P.ppid.offset);
  b.writeBigUInt64LE(ktime(s.timeNs ?? 1000), P.time_ns.offset);
  b.write((s.comm ?? 'nginx').slice(0, COMM_LEN - 1), P.comm.offset, 'latin1');
  return b;
}

/** A batch as onBatch receives it: frames back to back. */
export function frameBatch(frames: (Buffer | ExchangeFrameSpec)[]): Buffer {
  return Buffer.concat(frames.map((f) => (Buffer.isBuffer(f) ? f : exchangeFrame(f))));
}
