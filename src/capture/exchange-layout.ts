/**
 * TypeScript mirror of native/kw_exchange.h: the frames the native assembler hands to JS, one
 * batch per Buffer. Every frame is a fixed struct followed by its strings; strings are
 * {offset, length} from the frame's first byte, offset 0 meaning absent.
 * test/unit/records-layout.test.ts compiles the header and fails when the two disagree.
 */
import { prefixed, type StructLayout } from './records';

const f = (offset: number, size: number) => ({ offset, size });

/** C: enum kw_frame_type */
export const FrameType = {
  Server: 1, // KW_FRAME_SERVER
  Client: 2, // KW_FRAME_CLIENT
  Proc: 3, // KW_FRAME_PROC
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** C: enum kw_method; index = value */
export const Method = {
  Other: 0, // KW_METHOD_OTHER
  Get: 1, // KW_METHOD_GET
  Head: 2, // KW_METHOD_HEAD
  Post: 3, // KW_METHOD_POST
  Put: 4, // KW_METHOD_PUT
  Delete: 5, // KW_METHOD_DELETE
  Connect: 6, // KW_METHOD_CONNECT
  Options: 7, // KW_METHOD_OPTIONS
  Trace: 8, // KW_METHOD_TRACE
  Patch: 9, // KW_METHOD_PATCH
  Max: 10, // KW_METHOD_MAX
} as const;
export type Method = (typeof Method)[keyof typeof Method];

/** http.request.method by Method value: the semantic conventions' "_OTHER" for anything else. */
export const METHOD_NAMES: readonly string[] = [
  '_OTHER',
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
];

/** C: enum kw_error */
export const ErrorCode = {
  None: 0, // KW_ERR_NONE
  ClientClosed: 1, // KW_ERR_CLIENT_CLOSED
  UpstreamClosed: 2, // KW_ERR_UPSTREAM_CLOSED
  ConnectionReset: 3, // KW_ERR_CONNECTION_RESET
  ReadError: 4, // KW_ERR_READ_ERROR
  WriteError: 5, // KW_ERR_WRITE_ERROR
  IncompleteResponse: 6, // KW_ERR_INCOMPLETE_RESPONSE
  IncompleteRequest: 7, // KW_ERR_INCOMPLETE_REQUEST
  ProtocolError: 8, // KW_ERR_PROTOCOL_ERROR
  Timeout: 9, // KW_ERR_TIMEOUT
  Evicted: 10, // KW_ERR_EVICTED
  ProcessExited: 11, // KW_ERR_PROCESS_EXITED
  AgentStopped: 12, // KW_ERR_AGENT_STOPPED
  Max: 13, // KW_ERR_MAX
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The error codes as outputs name them (error_code, error.type), by ErrorCode value. */
export const ERROR_NAMES: readonly string[] = [
  '',
  'client_closed',
  'upstream_closed',
  'connection_reset',
  'read_error',
  'write_error',
  'incomplete_response',
  'incomplete_request',
  'protocol_error',
  'timeout',
  'evicted',
  'process_exited',
  'agent_stopped',
];

/** C: KW_EX_* (kw_exchange.flags) */
export const ExchangeFlag = {
  Response: 0x0001, // KW_EX_RESPONSE
  Tls: 0x0002, // KW_EX_TLS
  CallerContext: 0x0004, // KW_EX_CALLER_CONTEXT
  Sampled: 0x0008, // KW_EX_SAMPLED
  ParentSpan: 0x0010, // KW_EX_PARENT_SPAN
  ServerKong: 0x0020, // KW_EX_SERVER_KONG
  Via: 0x0040, // KW_EX_VIA
  Upgraded: 0x0080, // KW_EX_UPGRADED
  Truncated: 0x0100, // KW_EX_TRUNCATED
  CallerSampledSet: 0x0200, // KW_EX_CALLER_SAMPLED_SET
} as const;

/** C: KW_MAX_* string bounds */
export const MAX_STRINGS = {
  KW_MAX_METHOD_TEXT: 64,
  KW_MAX_TARGET: 8192,
  KW_MAX_HOST: 256,
  KW_MAX_USER_AGENT: 512,
  KW_MAX_TRACE_STATE: 512,
  KW_MAX_CONTENT_TYPE: 128,
} as const;

/** C: struct kw_str */
export const STR = {
  struct: 'kw_str',
  size: 8,
  fields: { offset: f(0, 4), length: f(4, 4) },
} satisfies StructLayout;

/** C: struct kw_exchange */
export const EXCHANGE = {
  struct: 'kw_exchange',
  size: 328,
  fields: {
    type: f(0, 1),
    method: f(1, 1),
    error: f(2, 1),
    http_version: f(3, 1),
    status: f(4, 2),
    flags: f(6, 2),
    frame_size: f(8, 4),
    pid: f(12, 4),
    conn_request: f(16, 4),
    attempts: f(20, 2),
    attempt: f(22, 2),
    id: f(24, 8),
    parent_id: f(32, 8),
    conn_id: f(40, 8),
    start_ns: f(48, 8),
    request_end_ns: f(56, 8),
    response_start_ns: f(64, 8),
    end_ns: f(72, 8),
    upstream_start_ns: f(80, 8),
    upstream_end_ns: f(88, 8),
    request_body_size: f(96, 8),
    response_body_size: f(104, 8),
    request_head_size: f(112, 4),
    response_head_size: f(116, 4),
    lua_ns: f(120, 64),
    kong_proxy_latency_ms: f(184, 4),
    kong_upstream_latency_ms: f(188, 4),
    kong_response_latency_ms: f(192, 4),
    grpc_status: f(196, 2),
    family: f(198, 1),
    _pad0: f(199, 1),
    local_port: f(200, 2),
    peer_port: f(202, 2),
    stream_id: f(204, 4),
    local_addr: f(208, 16),
    peer_addr: f(224, 16),
    trace_id: f(240, 16),
    span_id: f(256, 8),
    parent_span_id: f(264, 8),
    method_text: f(272, 8),
    path: f(280, 8),
    query: f(288, 8),
    host: f(296, 8),
    user_agent: f(304, 8),
    trace_state: f(312, 8),
    content_type: f(320, 8),
  },
} satisfies StructLayout;

/** C: struct kw_proc_frame */
export const PROC_FRAME = {
  struct: 'kw_proc_frame',
  size: 40,
  fields: {
    type: f(0, 1),
    event: f(1, 1),
    _pad: f(2, 2),
    frame_size: f(4, 4),
    pid: f(8, 4),
    ppid: f(12, 4),
    time_ns: f(16, 8),
    comm: f(24, 16),
  },
} satisfies StructLayout;

export const EXCHANGE_STRUCTS: readonly StructLayout[] = [STR, EXCHANGE, PROC_FRAME];

/** Every enum/define of native/kw_exchange.h, by C name, for the layout test. */
export const EXCHANGE_CONSTANTS: Readonly<Record<string, number>> = {
  ...prefixed('KW_FRAME_', FrameType),
  ...prefixed('KW_METHOD_', Method),
  ...prefixed('KW_ERR_', ErrorCode),
  ...prefixed('KW_EX_', ExchangeFlag),
  ...MAX_STRINGS,
};
