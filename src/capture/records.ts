/**
 * TypeScript mirror of bpf/kong_watcher_events.h: constants, and the byte layout of every
 * record BPF sends. test/unit/records-layout.test.ts compiles the header and fails when the
 * two disagree, so a change to the header cannot silently misread records.
 */

/** C: KW_MAX_CAPTURE */
export const MAX_CAPTURE = 16384;
/** C: KW_TAIL_LEN */
export const TAIL_LEN = 16;
/** C: KW_DATA_TRUNCATED (DATA flags) */
export const DATA_TRUNCATED = 0x1;

/** C: enum kw_event_type */
export const EventType = {
  ConnOpen: 1, // KW_EVENT_CONN_OPEN
  Data: 2, // KW_EVENT_DATA
  ConnClose: 3, // KW_EVENT_CONN_CLOSE
  NgxRequest: 4, // KW_EVENT_NGX_REQUEST
  LuaPhase: 5, // KW_EVENT_LUA_PHASE
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** C: enum kw_direction */
export const Direction = {
  Unknown: 0, // KW_DIR_UNKNOWN
  Server: 1, // KW_DIR_SERVER
  Client: 2, // KW_DIR_CLIENT
} as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** kw_conn_close_event.peer_state bits */
export const PeerState = {
  Closed: 1, // KW_PEER_CLOSED
  Reset: 2, // KW_PEER_RESET
} as const;

/** C: enum kw_op */
export const Op = {
  Read: 1, // KW_OP_READ
  Write: 2, // KW_OP_WRITE
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** C: enum kw_source */
export const Source = {
  Read: 1, // KW_SRC_READ
  Readv: 2, // KW_SRC_READV
  Recvfrom: 3, // KW_SRC_RECVFROM
  Recvmsg: 4, // KW_SRC_RECVMSG
  Write: 5, // KW_SRC_WRITE
  Writev: 6, // KW_SRC_WRITEV
  Sendto: 7, // KW_SRC_SENDTO
  Sendmsg: 8, // KW_SRC_SENDMSG
  Sendfile: 9, // KW_SRC_SENDFILE
  LibcRead: 10, // KW_SRC_LIBC_READ
  LibcWrite: 11, // KW_SRC_LIBC_WRITE
} as const;
export type Source = (typeof Source)[keyof typeof Source];

/** C: enum kw_lua_phase */
export const LuaPhase = {
  Rewrite: 1, // KW_LUA_REWRITE
  Access: 2, // KW_LUA_ACCESS
  Content: 3, // KW_LUA_CONTENT
  HeaderFilter: 4, // KW_LUA_HEADER_FILTER
  BodyFilter: 5, // KW_LUA_BODY_FILTER
  Log: 6, // KW_LUA_LOG
  Balancer: 7, // KW_LUA_BALANCER
} as const;
export type LuaPhase = (typeof LuaPhase)[keyof typeof LuaPhase];

/** C: enum kw_stat (indexes of the kw_stats per-CPU array) */
export const Stat = {
  Events: 0, // KW_STAT_EVENTS
  Lost: 1, // KW_STAT_LOST
  HookHits: 2, // KW_STAT_HOOK_HITS
  ConnOpened: 3, // KW_STAT_CONN_OPENED
  ConnClosed: 4, // KW_STAT_CONN_CLOSED
  ConnMapFull: 5, // KW_STAT_CONN_MAP_FULL
  Max: 6, // KW_STAT_MAX
} as const;
export type Stat = (typeof Stat)[keyof typeof Stat];

/** Address families as BPF reports them (Linux values). */
export const AF_INET = 2;
export const AF_INET6 = 10;

export interface FieldLayout {
  offset: number;
  size: number;
}

/** One C struct: its name, sizeof, and every field by its C name (padding included). */
export interface StructLayout {
  struct: string;
  size: number;
  fields: Record<string, FieldLayout>;
}

const f = (offset: number, size: number): FieldLayout => ({ offset, size });

/** C: struct kw_event_header */
export const HEADER = {
  struct: 'kw_event_header',
  size: 16,
  fields: { type: f(0, 1), _pad: f(1, 3), pid: f(4, 4), timestamp_ns: f(8, 8) },
} satisfies StructLayout;

/** C: struct kw_conn_open_event */
export const CONN_OPEN = {
  struct: 'kw_conn_open_event',
  size: 72,
  fields: {
    hdr: f(0, 16),
    conn_id: f(16, 8),
    fd: f(24, 4),
    direction: f(28, 1),
    family: f(29, 1),
    local_port: f(30, 2),
    peer_port: f(32, 2),
    _pad: f(34, 6),
    local_addr: f(40, 16),
    peer_addr: f(56, 16),
  },
} satisfies StructLayout;

/** C: struct kw_data_event. Only the first DATA_HEAD_SIZE + captured_len bytes are sent. */
export const DATA = {
  struct: 'kw_data_event',
  size: 64 + MAX_CAPTURE,
  fields: {
    hdr: f(0, 16),
    conn_id: f(16, 8),
    result: f(24, 8),
    fd: f(32, 4),
    op: f(36, 1),
    direction: f(37, 1),
    source: f(38, 1),
    flags: f(39, 1),
    captured_len: f(40, 2),
    tail_len: f(42, 2),
    _pad: f(44, 4),
    tail: f(48, TAIL_LEN),
    data: f(64, MAX_CAPTURE),
  },
} satisfies StructLayout;

/** Bytes of a DATA record before its payload: the smallest valid DATA frame. */
export const DATA_HEAD_SIZE = DATA.fields.data.offset;

/** C: struct kw_conn_close_event */
export const CONN_CLOSE = {
  struct: 'kw_conn_close_event',
  size: 48,
  fields: {
    hdr: f(0, 16),
    conn_id: f(16, 8),
    fd: f(24, 4),
    direction: f(28, 1),
    peer_state: f(29, 1),
    _pad: f(30, 2),
    bytes_read: f(32, 8),
    bytes_written: f(40, 8),
  },
} satisfies StructLayout;

/** C: struct kw_ngx_request_event */
export const NGX_REQUEST = {
  struct: 'kw_ngx_request_event',
  size: 56,
  fields: {
    hdr: f(0, 16),
    conn_id: f(16, 8),
    request_ptr: f(24, 8),
    start_ns: f(32, 8),
    end_ns: f(40, 8),
    fd: f(48, 4),
    _pad: f(52, 4),
  },
} satisfies StructLayout;

/** C: struct kw_lua_phase_event */
export const LUA_PHASE = {
  struct: 'kw_lua_phase_event',
  size: 56,
  fields: {
    hdr: f(0, 16),
    conn_id: f(16, 8),
    request_ptr: f(24, 8),
    start_ns: f(32, 8),
    end_ns: f(40, 8),
    fd: f(48, 4),
    phase: f(52, 1),
    _pad: f(53, 3),
  },
} satisfies StructLayout;

/** C: struct kw_process_info (a map value written by user space, not a record) */
export const PROCESS_INFO = {
  struct: 'kw_process_info',
  size: 8,
  fields: { role: f(0, 4), flags: f(4, 4) },
} satisfies StructLayout;

export const ALL_STRUCTS: readonly StructLayout[] = [
  HEADER,
  CONN_OPEN,
  DATA,
  CONN_CLOSE,
  NGX_REQUEST,
  LUA_PHASE,
  PROCESS_INFO,
];

/** Every enum/define mirrored here, by C name, for the layout test. */
export const C_CONSTANTS: Readonly<Record<string, number>> = {
  KW_MAX_CAPTURE: MAX_CAPTURE,
  KW_TAIL_LEN: TAIL_LEN,
  KW_DATA_TRUNCATED: DATA_TRUNCATED,
  KW_EVENT_CONN_OPEN: EventType.ConnOpen,
  KW_EVENT_DATA: EventType.Data,
  KW_EVENT_CONN_CLOSE: EventType.ConnClose,
  KW_EVENT_NGX_REQUEST: EventType.NgxRequest,
  KW_EVENT_LUA_PHASE: EventType.LuaPhase,
  KW_DIR_UNKNOWN: Direction.Unknown,
  KW_DIR_SERVER: Direction.Server,
  KW_DIR_CLIENT: Direction.Client,
  KW_PEER_CLOSED: PeerState.Closed,
  KW_PEER_RESET: PeerState.Reset,
  KW_OP_READ: Op.Read,
  KW_OP_WRITE: Op.Write,
  KW_SRC_READ: Source.Read,
  KW_SRC_READV: Source.Readv,
  KW_SRC_RECVFROM: Source.Recvfrom,
  KW_SRC_RECVMSG: Source.Recvmsg,
  KW_SRC_WRITE: Source.Write,
  KW_SRC_WRITEV: Source.Writev,
  KW_SRC_SENDTO: Source.Sendto,
  KW_SRC_SENDMSG: Source.Sendmsg,
  KW_SRC_SENDFILE: Source.Sendfile,
  KW_SRC_LIBC_READ: Source.LibcRead,
  KW_SRC_LIBC_WRITE: Source.LibcWrite,
  KW_LUA_REWRITE: LuaPhase.Rewrite,
  KW_LUA_ACCESS: LuaPhase.Access,
  KW_LUA_CONTENT: LuaPhase.Content,
  KW_LUA_HEADER_FILTER: LuaPhase.HeaderFilter,
  KW_LUA_BODY_FILTER: LuaPhase.BodyFilter,
  KW_LUA_LOG: LuaPhase.Log,
  KW_LUA_BALANCER: LuaPhase.Balancer,
  KW_STAT_EVENTS: Stat.Events,
  KW_STAT_LOST: Stat.Lost,
  KW_STAT_HOOK_HITS: Stat.HookHits,
  KW_STAT_CONN_OPENED: Stat.ConnOpened,
  KW_STAT_CONN_CLOSED: Stat.ConnClosed,
  KW_STAT_CONN_MAP_FULL: Stat.ConnMapFull,
  KW_STAT_MAX: Stat.Max,
};

/** Decoded records. Times are ns relative to the clock base (see src/clock.ts). */
interface RecordBase {
  pid: number;
  /** ktime - clockBaseNs */
  timeNs: number;
  connId: number;
}

export interface ConnOpenRecord extends RecordBase {
  type: typeof EventType.ConnOpen;
  fd: number;
  direction: Direction;
  /** AF_INET / AF_INET6; other families leave the addresses empty */
  family: number;
  localAddress: string;
  localPort: number;
  peerAddress: string;
  peerPort: number;
}

export interface DataRecord extends RecordBase {
  type: typeof EventType.Data;
  fd: number;
  /** syscall result: bytes moved, 0 = EOF, < 0 = -errno */
  result: number;
  op: Op;
  direction: Direction;
  source: Source;
  flags: number;
  /** the first captured_len bytes moved: a view into the batch, copy before keeping it */
  data: Buffer;
  /** the last tail_len bytes moved: a view into the batch, copy before keeping it */
  tail: Buffer;
}

export interface ConnCloseRecord extends RecordBase {
  type: typeof EventType.ConnClose;
  fd: number;
  direction: Direction;
  /** PeerState bits */
  peerState: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface NgxRequestRecord extends RecordBase {
  type: typeof EventType.NgxRequest;
  fd: number;
  /** the ngx_http_request_t address as a hex string: identity only */
  requestPtr: string;
  /** relative ns like timeNs; 0 when the kernel did not see that moment */
  startNs: number;
  endNs: number;
}

export interface LuaPhaseRecord extends RecordBase {
  type: typeof EventType.LuaPhase;
  fd: number;
  requestPtr: string;
  phase: LuaPhase;
  startNs: number;
  endNs: number;
}

export type CaptureRecord = ConnOpenRecord | DataRecord | ConnCloseRecord | NgxRequestRecord | LuaPhaseRecord;

/** Linux errno values the request stage tells apart. */
export const Errno = {
  EPIPE: 32,
  ECONNRESET: 104,
  ETIMEDOUT: 110,
  ECONNABORTED: 103,
  EAGAIN: 11,
  EINTR: 4,
} as const;
