/**
 * A small reader of the frames the native assembler returns (native/kw_exchange.h, through the
 * offsets of src/capture/exchange-layout.ts), for the assembler's own tests: plain objects with
 * times relative to TEST_BASE_NS and ids as hex. Every frame is checked as it is read (type,
 * size, string bounds), so a malformed frame fails the test that produced it.
 */
import assert from 'node:assert/strict';
import {
  ERROR_NAMES,
  EXCHANGE,
  ExchangeFlag,
  FrameType,
  MAX_STRINGS,
  METHOD_NAMES,
  Method,
  PROC_FRAME,
} from '../../../src/capture/exchange-layout';
import { TEST_BASE_NS } from './records';

export interface Endpoint {
  address: string;
  port: number;
}

export interface ExchangeView {
  direction: 'server' | 'client';
  /** the method as a name; for Method.Other the text as sent (or '' when unknown) */
  method: string;
  methodCode: number;
  methodText?: string;
  /** the kw_error name, '' when none */
  error: string;
  errorCode: number;
  httpVersion: number;
  status: number;
  flags: number;
  pid: number;
  connRequest: number;
  attempts: number;
  attempt: number;
  id: bigint;
  parentId: bigint;
  connId: number;
  /** ns relative to TEST_BASE_NS; 0 when not seen */
  startNs: number;
  requestEndNs: number;
  responseStartNs: number;
  endNs: number;
  upstreamStartNs: number;
  upstreamEndNs: number;
  requestBodySize: number;
  responseBodySize: number;
  requestHeadSize: number;
  responseHeadSize: number;
  luaNs: number[];
  kongProxyLatencyMs: number;
  kongUpstreamLatencyMs: number;
  kongResponseLatencyMs: number;
  grpcStatus: number;
  /** HTTP/2 stream; 0 for HTTP/1 */
  streamId: number;
  local?: Endpoint;
  peer?: Endpoint;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  path?: string;
  query?: string;
  host?: string;
  userAgent?: string;
  traceState?: string;
  contentType?: string;
  frameSize: number;
}

export interface ProcView {
  type: 'proc';
  event: number;
  pid: number;
  ppid: number;
  timeNs: number;
  comm: string;
}

export type FrameView = ExchangeView | ProcView;

export function isProc(f: FrameView): f is ProcView {
  return (f as ProcView).type === 'proc';
}

const F = EXCHANGE.fields;

function rel(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64LE(at);
  return v === 0n ? 0 : Number(v - TEST_BASE_NS);
}

function address(family: number, buf: Buffer, at: number): string {
  if (family === 2) return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(buf.readUInt16BE(at + i).toString(16));
  return parts.join(':');
}

function str(frame: Buffer, field: { offset: number }, max: number, name: string): string | undefined {
  const offset = frame.readUInt32LE(field.offset);
  const length = frame.readUInt32LE(field.offset + 4);
  if (offset === 0) {
    assert.equal(length, 0, `${name}: absent string with a length`);
    return undefined;
  }
  assert.ok(offset >= EXCHANGE.size, `${name}: string starts inside the struct (${offset})`);
  assert.ok(offset + length <= frame.length, `${name}: string past the frame (${offset}+${length} > ${frame.length})`);
  assert.ok(length <= max, `${name}: ${length} bytes > ${max}`);
  return frame.toString('latin1', offset, offset + length);
}

function readExchange(frame: Buffer): ExchangeView {
  const type = frame[F.type.offset];
  const methodCode = frame[F.method.offset];
  const errorCode = frame[F.error.offset];
  assert.ok(methodCode < Method.Max, `method ${methodCode}`);
  assert.ok(errorCode < ERROR_NAMES.length, `error ${errorCode}`);
  const flags = frame.readUInt16LE(F.flags.offset);
  const methodText = str(frame, F.method_text, MAX_STRINGS.KW_MAX_METHOD_TEXT, 'method_text');
  const family = frame[F.family.offset];
  const lua: number[] = [];
  for (let i = 0; i < 8; i++) lua.push(Number(frame.readBigUInt64LE(F.lua_ns.offset + i * 8)));
  const hex = (at: number, n: number) => frame.toString('hex', at, at + n);
  return {
    direction: type === FrameType.Server ? 'server' : 'client',
    method: methodCode === Method.Other ? (methodText ?? '') : METHOD_NAMES[methodCode],
    methodCode,
    methodText,
    error: ERROR_NAMES[errorCode],
    errorCode,
    httpVersion: frame[F.http_version.offset],
    status: frame.readUInt16LE(F.status.offset),
    flags,
    pid: frame.readUInt32LE(F.pid.offset),
    connRequest: frame.readUInt32LE(F.conn_request.offset),
    attempts: frame.readUInt16LE(F.attempts.offset),
    attempt: frame.readUInt16LE(F.attempt.offset),
    id: frame.readBigUInt64LE(F.id.offset),
    parentId: frame.readBigUInt64LE(F.parent_id.offset),
    connId: Number(frame.readBigUInt64LE(F.conn_id.offset)),
    startNs: rel(frame, F.start_ns.offset),
    requestEndNs: rel(frame, F.request_end_ns.offset),
    responseStartNs: rel(frame, F.response_start_ns.offset),
    endNs: rel(frame, F.end_ns.offset),
    upstreamStartNs: rel(frame, F.upstream_start_ns.offset),
    upstreamEndNs: rel(frame, F.upstream_end_ns.offset),
    requestBodySize: Number(frame.readBigUInt64LE(F.request_body_size.offset)),
    responseBodySize: Number(frame.readBigUInt64LE(F.response_body_size.offset)),
    requestHeadSize: frame.readUInt32LE(F.request_head_size.offset),
    responseHeadSize: frame.readUInt32LE(F.response_head_size.offset),
    luaNs: lua,
    kongProxyLatencyMs: frame.readInt32LE(F.kong_proxy_latency_ms.offset),
    kongUpstreamLatencyMs: frame.readInt32LE(F.kong_upstream_latency_ms.offset),
    kongResponseLatencyMs: frame.readInt32LE(F.kong_response_latency_ms.offset),
    grpcStatus: frame.readInt16LE(F.grpc_status.offset),
    streamId: frame.readUInt32LE(F.stream_id.offset),
    local:
      family === 0
        ? undefined
        : { address: address(family, frame, F.local_addr.offset), port: frame.readUInt16LE(F.local_port.offset) },
    peer:
      family === 0
        ? undefined
        : { address: address(family, frame, F.peer_addr.offset), port: frame.readUInt16LE(F.peer_port.offset) },
    traceId: hex(F.trace_id.offset, 16),
    spanId: hex(F.span_id.offset, 8),
    parentSpanId: flags & ExchangeFlag.ParentSpan ? hex(F.parent_span_id.offset, 8) : undefined,
    path: str(frame, F.path, MAX_STRINGS.KW_MAX_TARGET, 'path'),
    query: str(frame, F.query, MAX_STRINGS.KW_MAX_TARGET, 'query'),
    host: str(frame, F.host, MAX_STRINGS.KW_MAX_HOST, 'host'),
    userAgent: str(frame, F.user_agent, MAX_STRINGS.KW_MAX_USER_AGENT, 'user_agent'),
    traceState: str(frame, F.trace_state, MAX_STRINGS.KW_MAX_TRACE_STATE, 'trace_state'),
    contentType: str(frame, F.content_type, MAX_STRINGS.KW_MAX_CONTENT_TYPE, 'content_type'),
    frameSize: frame.length,
  };
}

function readProc(frame: Buffer): ProcView {
  const f = PROC_FRAME.fields;
  const comm = frame.subarray(f.comm.offset, f.comm.offset + f.comm.size);
  const nul = comm.indexOf(0);
  return {
    type: 'proc',
    event: frame[f.event.offset],
    pid: frame.readUInt32LE(f.pid.offset),
    ppid: frame.readUInt32LE(f.ppid.offset),
    timeNs: rel(frame, f.time_ns.offset),
    comm: comm.toString('latin1', 0, nul < 0 ? comm.length : nul),
  };
}

/** Every frame of a batch, checked. */
export function readFrames(batch: Buffer): FrameView[] {
  const out: FrameView[] = [];
  let at = 0;
  while (at < batch.length) {
    assert.ok(batch.length - at >= 8, `frame header past the batch at ${at}`);
    const type = batch[at];
    const size = type === FrameType.Proc ? batch.readUInt32LE(at + 4) : batch.readUInt32LE(at + F.frame_size.offset);
    assert.ok(size % 8 === 0, `frame size ${size} not a multiple of 8`);
    assert.ok(at + size <= batch.length, `frame of ${size} past the batch at ${at}`);
    const frame = batch.subarray(at, at + size);
    if (type === FrameType.Proc) {
      assert.equal(size, PROC_FRAME.size, 'proc frame size');
      out.push(readProc(frame));
    } else {
      assert.ok(type === FrameType.Server || type === FrameType.Client, `frame type ${type}`);
      assert.ok(size >= EXCHANGE.size, `exchange frame of ${size}`);
      out.push(readExchange(frame));
    }
    at += size;
  }
  return out;
}
