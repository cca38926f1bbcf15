/**
 * TypeScript mirror of bpf/kong_watcher_events.h: constants, and the byte layout of every record
 * BPF sends. The native assembler reads these records; TypeScript only writes them, to feed
 * recorded streams to the assembler in tests and benchmarks. test/unit/records-layout.test.ts
 * compiles the header and fails when the two disagree.
 */

/** C: KW_MAX_CAPTURE */
export const MAX_CAPTURE = 16384;
/** C: KW_TAIL_LEN */
export const TAIL_LEN = 16;
/** C: KW_PID_WORDS */
export const PID_WORDS = 65536;
/** C: KW_COMM_LEN */
export const COMM_LEN = 16;
/** C: KW_DATA_* (DATA flags) */
export const DataFlag = {
  Truncated: 0x1, // KW_DATA_TRUNCATED
  TailUnknown: 0x2, // KW_DATA_TAIL_UNKNOWN
  Tls: 0x4, // KW_DATA_TLS
} as const;

/** C: enum kw_event_type */
export const EventType = {
  ConnOpen: 1, // KW_EVENT_CONN_OPEN
  Data: 2, // KW_EVENT_DATA
  ConnClose: 3, // KW_EVENT_CONN_CLOSE
  LuaPhase: 5, // KW_EVENT_LUA_PHASE
  Proc: 6, // KW_EVENT_PROC
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
  Readv: 2, // KW_SRC_READV
  Recvfrom: 3, // KW_SRC_RECVFROM
  Writev: 6, // KW_SRC_WRITEV
  Sendto: 7, // KW_SRC_SENDTO
  Sendfile: 9, // KW_SRC_SENDFILE
  LibcRead: 10, // KW_SRC_LIBC_READ
  LibcWrite: 11, // KW_SRC_LIBC_WRITE
  SslRead: 12, // KW_SRC_SSL_READ
  SslWrite: 13, // KW_SRC_SSL_WRITE
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
  Max: 8, // KW_LUA_PHASE_MAX
} as const;
export type LuaPhase = (typeof LuaPhase)[keyof typeof LuaPhase];

/** C: enum kw_proc_kind */
export const ProcEvent = {
  Fork: 1, // KW_PROC_FORK
  Exec: 2, // KW_PROC_EXEC
  Exit: 3, // KW_PROC_EXIT
} as const;
export type ProcEvent = (typeof ProcEvent)[keyof typeof ProcEvent];

/** C: enum kw_stat (indexes of the kw_stats per-CPU array) */
export const Stat = {
  Events: 0, // KW_STAT_EVENTS
  Lost: 1, // KW_STAT_LOST
  ConnOpened: 2, // KW_STAT_CONN_OPENED
  ConnClosed: 3, // KW_STAT_CONN_CLOSED
  ConnMapFull: 4, // KW_STAT_CONN_MAP_FULL
  ForksFollowed: 5, // KW_STAT_FORKS_FOLLOWED
  TlsUnlinked: 6, // KW_STAT_TLS_UNLINKED
  Max: 7, // KW_STAT_MAX
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

/** C: struct kw_proc_event */
export const PROC = {
  struct: 'kw_proc_event',
  size: 40,
  fields: {
    hdr: f(0, 16),
    ppid: f(16, 4),
    event: f(20, 1),
    _pad: f(21, 3),
    comm: f(24, COMM_LEN),
  },
} satisfies StructLayout;

export const ALL_STRUCTS: readonly StructLayout[] = [HEADER, CONN_OPEN, DATA, CONN_CLOSE, LUA_PHASE, PROC];

/** Every enum/define mirrored here, by C name, for the layout test. */
export const C_CONSTANTS: Readonly<Record<string, number>> = {
  KW_MAX_CAPTURE: MAX_CAPTURE,
  KW_TAIL_LEN: TAIL_LEN,
  KW_PID_WORDS: PID_WORDS,
  KW_COMM_LEN: COMM_LEN,
  KW_DATA_TRUNCATED: DataFlag.Truncated,
  KW_DATA_TAIL_UNKNOWN: DataFlag.TailUnknown,
  KW_DATA_TLS: DataFlag.Tls,
  KW_EVENT_CONN_OPEN: EventType.ConnOpen,
  KW_EVENT_DATA: EventType.Data,
  KW_EVENT_CONN_CLOSE: EventType.ConnClose,
  KW_EVENT_LUA_PHASE: EventType.LuaPhase,
  KW_EVENT_PROC: EventType.Proc,
  KW_DIR_UNKNOWN: Direction.Unknown,
  KW_DIR_SERVER: Direction.Server,
  KW_DIR_CLIENT: Direction.Client,
  KW_PEER_CLOSED: PeerState.Closed,
  KW_PEER_RESET: PeerState.Reset,
  KW_OP_READ: Op.Read,
  KW_OP_WRITE: Op.Write,
  ...prefixed('KW_SRC_', Source),
  ...prefixed('KW_LUA_', LuaPhase, { Max: 'KW_LUA_PHASE_MAX' }),
  ...prefixed('KW_PROC_', ProcEvent),
  ...prefixed('KW_STAT_', Stat),
};

/** {LibcRead: 10} -> {KW_SRC_LIBC_READ: 10}: the C names of a mirrored enum. */
export function prefixed(
  prefix: string,
  values: Readonly<Record<string, number>>,
  renames: Readonly<Record<string, string>> = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(values)) {
    out[renames[name] ?? prefix + name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()] = value;
  }
  return out;
}
