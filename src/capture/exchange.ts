/**
 * One finished exchange as the native assembler reported it (native/kw_exchange.h): numbers are
 * read when the frame is decoded; strings, hex ids and formatted addresses only when an output
 * first asks for them, then kept. The frame stays where it arrived (a view into its batch) until
 * detach() copies it, which whatever keeps an exchange past its batch must call.
 *
 * Times are monotonic nanoseconds relative to the clock base (src/clock.ts); 0 = not seen.
 */
import { EXCHANGE, ExchangeFlag, FrameType, Method, METHOD_NAMES } from './exchange-layout';
import { formatAddress } from './address';

const F = EXCHANGE.fields;
export const EXCHANGE_SIZE = EXCHANGE.size;
const TWO_32 = 4294967296;

const O_TYPE = F.type.offset;
const O_METHOD = F.method.offset;
const O_ERROR = F.error.offset;
const O_HTTP_VERSION = F.http_version.offset;
const O_STATUS = F.status.offset;
const O_FLAGS = F.flags.offset;
const O_PID = F.pid.offset;
const O_CONN_REQUEST = F.conn_request.offset;
const O_ATTEMPTS = F.attempts.offset;
const O_ATTEMPT = F.attempt.offset;
const O_ID = F.id.offset;
const O_PARENT_ID = F.parent_id.offset;
const O_CONN_ID = F.conn_id.offset;
const O_START = F.start_ns.offset;
const O_REQUEST_END = F.request_end_ns.offset;
const O_RESPONSE_START = F.response_start_ns.offset;
const O_END = F.end_ns.offset;
const O_UPSTREAM_START = F.upstream_start_ns.offset;
const O_UPSTREAM_END = F.upstream_end_ns.offset;
const O_REQUEST_BODY = F.request_body_size.offset;
const O_RESPONSE_BODY = F.response_body_size.offset;
const O_REQUEST_HEAD = F.request_head_size.offset;
const O_RESPONSE_HEAD = F.response_head_size.offset;
const O_LUA = F.lua_ns.offset;
const LUA_PHASES = F.lua_ns.size / 8;
const O_KONG_PROXY = F.kong_proxy_latency_ms.offset;
const O_KONG_UPSTREAM = F.kong_upstream_latency_ms.offset;
const O_KONG_RESPONSE = F.kong_response_latency_ms.offset;
const O_GRPC_STATUS = F.grpc_status.offset;
const O_FAMILY = F.family.offset;
const O_LOCAL_PORT = F.local_port.offset;
const O_PEER_PORT = F.peer_port.offset;
const O_STREAM_ID = F.stream_id.offset;
const O_LOCAL_ADDR = F.local_addr.offset;
const O_PEER_ADDR = F.peer_addr.offset;
/** Offsets of the ids inside a frame: spans copy them from there as bytes. */
export const TRACE_ID_OFFSET = F.trace_id.offset;
export const SPAN_ID_OFFSET = F.span_id.offset;
export const PARENT_SPAN_ID_OFFSET = F.parent_span_id.offset;
/** Offsets of the kw_str fields, for the decoder's checks and for byte-level readers. */
export const STRING_FIELDS = {
  methodText: F.method_text.offset,
  path: F.path.offset,
  query: F.query.offset,
  host: F.host.offset,
  userAgent: F.user_agent.offset,
  traceState: F.trace_state.offset,
  contentType: F.content_type.offset,
} as const;
const S_METHOD_TEXT = STRING_FIELDS.methodText;
const S_PATH = STRING_FIELDS.path;
const S_QUERY = STRING_FIELDS.query;
const S_HOST = STRING_FIELDS.host;
const S_USER_AGENT = STRING_FIELDS.userAgent;
const S_TRACE_STATE = STRING_FIELDS.traceState;
const S_CONTENT_TYPE = STRING_FIELDS.contentType;

const F_TLS = ExchangeFlag.Tls;
const F_PARENT_SPAN = ExchangeFlag.ParentSpan;
const T_SERVER = FrameType.Server;
const M_OTHER = Method.Other;

const GRPC_CONTENT_TYPE = Buffer.from('application/grpc', 'latin1');

/** "not read yet" for the memoized strings (undefined means absent). */
const UNREAD = null;

/**
 * Where detached frames are copied, one after the other: a slab is kept alive by the exchanges in
 * it, which are queued spans, so it is freed as they are exported. One copy per frame, no
 * allocation per frame.
 */
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

/** network.protocol.version by http_version */
export function protocolVersion(httpVersion: number): string | undefined {
  switch (httpVersion) {
    case 10:
      return '1.0';
    case 11:
      return '1.1';
    case 20:
      return '2';
    case 9:
      return '0.9';
  }
  return undefined;
}

export class Exchange {
  readonly type: number;
  /** Method value (src/capture/exchange-layout.ts) */
  readonly method: number;
  /** ErrorCode value; 0 = ended normally */
  readonly error: number;
  /** 9, 10, 11, 20 */
  readonly httpVersion: number;
  /** 0 when no final response head was seen */
  readonly status: number;
  /** ExchangeFlag bits */
  readonly flags: number;
  readonly pid: number;
  readonly connRequest: number;
  /** SERVER: upstream attempts linked to it */
  readonly attempts: number;
  /** CLIENT: 0-based position among its SERVER's attempts */
  readonly attempt: number;
  readonly id: number;
  /** CLIENT: the SERVER exchange's id; 0 when it matched none */
  readonly parentId: number;
  readonly connId: number;
  readonly startNs: number;
  readonly requestEndNs: number;
  readonly responseStartNs: number;
  readonly endNs: number;
  /** SERVER: first byte of its first attempt; 0 when no attempt was seen */
  readonly upstreamStartNs: number;
  /** SERVER: last byte of its last attempt; 0 when not seen */
  readonly upstreamEndNs: number;
  readonly requestBodySize: number;
  readonly responseBodySize: number;
  readonly requestHeadSize: number;
  readonly responseHeadSize: number;
  /** Kong's latency headers in whole ms; -1 when absent */
  readonly kongProxyLatencyMs: number;
  readonly kongUpstreamLatencyMs: number;
  readonly kongResponseLatencyMs: number;
  /** -1 when absent */
  readonly grpcStatus: number;
  /** AF_INET, AF_INET6, or 0 when the socket is unknown */
  readonly family: number;
  readonly localPort: number;
  readonly peerPort: number;
  /** HTTP/2 stream id; 0 for HTTP/1 */
  readonly streamId: number;

  private buf: Buffer;
  private at: number;
  private readonly size: number;
  private detached = false;
  private _methodText: string | undefined | null = UNREAD;
  private _path: string | undefined | null = UNREAD;
  private _query: string | undefined | null = UNREAD;
  private _host: string | undefined | null = UNREAD;
  private _userAgent: string | undefined | null = UNREAD;
  private _traceState: string | undefined | null = UNREAD;
  private _traceId: string | null = UNREAD;
  private _spanId: string | null = UNREAD;
  private _parentSpanId: string | undefined | null = UNREAD;
  private _localAddress: string | undefined | null = UNREAD;
  private _peerAddress: string | undefined | null = UNREAD;

  /**
   * Reads a frame the decoder has checked (sizes, string bounds, enums). `view` spans the same
   * bytes as `buf`; baseHi/baseLo are the clock base's u32 halves.
   */
  constructor(view: DataView, buf: Buffer, at: number, size: number, baseHi: number, baseLo: number) {
    this.buf = buf;
    this.at = at;
    this.size = size;
    this.type = buf[at + O_TYPE];
    this.method = buf[at + O_METHOD];
    this.error = buf[at + O_ERROR];
    this.httpVersion = buf[at + O_HTTP_VERSION];
    this.status = view.getUint16(at + O_STATUS, true);
    this.flags = view.getUint16(at + O_FLAGS, true);
    this.pid = view.getUint32(at + O_PID, true);
    this.connRequest = view.getUint32(at + O_CONN_REQUEST, true);
    this.attempts = view.getUint16(at + O_ATTEMPTS, true);
    this.attempt = view.getUint16(at + O_ATTEMPT, true);
    this.id = u64(view, at + O_ID);
    this.parentId = u64(view, at + O_PARENT_ID);
    this.connId = u64(view, at + O_CONN_ID);
    this.startNs = relNs(view, at + O_START, baseHi, baseLo);
    this.requestEndNs = relNs(view, at + O_REQUEST_END, baseHi, baseLo);
    this.responseStartNs = relNs(view, at + O_RESPONSE_START, baseHi, baseLo);
    this.endNs = relNs(view, at + O_END, baseHi, baseLo);
    this.upstreamStartNs = relNs(view, at + O_UPSTREAM_START, baseHi, baseLo);
    this.upstreamEndNs = relNs(view, at + O_UPSTREAM_END, baseHi, baseLo);
    this.requestBodySize = u64(view, at + O_REQUEST_BODY);
    this.responseBodySize = u64(view, at + O_RESPONSE_BODY);
    this.requestHeadSize = view.getUint32(at + O_REQUEST_HEAD, true);
    this.responseHeadSize = view.getUint32(at + O_RESPONSE_HEAD, true);
    this.kongProxyLatencyMs = view.getInt32(at + O_KONG_PROXY, true);
    this.kongUpstreamLatencyMs = view.getInt32(at + O_KONG_UPSTREAM, true);
    this.kongResponseLatencyMs = view.getInt32(at + O_KONG_RESPONSE, true);
    this.grpcStatus = view.getInt16(at + O_GRPC_STATUS, true);
    this.family = buf[at + O_FAMILY];
    this.localPort = view.getUint16(at + O_LOCAL_PORT, true);
    this.peerPort = view.getUint16(at + O_PEER_PORT, true);
    this.streamId = view.getUint32(at + O_STREAM_ID, true);
  }

  get isServer(): boolean {
    return this.type === T_SERVER;
  }

  get tls(): boolean {
    return (this.flags & F_TLS) !== 0;
  }

  /** The bytes holding this exchange's frame, and where it starts in them (ids are read from there). */
  get frame(): Buffer {
    return this.buf;
  }

  get frameAt(): number {
    return this.at;
  }

  /**
   * Copies the frame out of its batch so that keeping this exchange (a queued span) does not keep
   * the whole batch alive. Strings already read are kept; the rest are read from the copy. A frame
   * that is its whole batch (or already a copy) stays where it is: nothing else would be kept.
   */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    const size = this.size;
    if (this.at === 0 && this.buf.length === size) return;
    if (size > SLAB_BYTES / 8) {
      const own = Buffer.allocUnsafe(size);
      this.buf.copy(own, 0, this.at, this.at + size);
      this.buf = own;
      this.at = 0;
      return;
    }
    if (slabUsed + size > SLAB_BYTES) {
      slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      slabUsed = 0;
    }
    this.buf.copy(slab, slabUsed, this.at, this.at + size);
    this.buf = slab;
    this.at = slabUsed;
    slabUsed += size;
  }

  /** The method as sent, when it is not one of the nine (Method.Other) */
  get methodText(): string | undefined {
    if (this._methodText === UNREAD) this._methodText = this.str(S_METHOD_TEXT);
    return this._methodText;
  }

  /** The method as the request line had it: the name for the nine, the text for any other. */
  get methodOriginal(): string {
    return this.method === M_OTHER ? (this.methodText ?? METHOD_NAMES[M_OTHER]) : METHOD_NAMES[this.method];
  }

  /** request-target up to '?' */
  get path(): string | undefined {
    if (this._path === UNREAD) this._path = this.str(S_PATH);
    return this._path;
  }

  /** after '?', unredacted; undefined when the target had no '?' */
  get query(): string | undefined {
    if (this._query === UNREAD) this._query = this.str(S_QUERY);
    return this._query;
  }

  /** Host (HTTP/1) or :authority (HTTP/2), as sent */
  get host(): string | undefined {
    if (this._host === UNREAD) this._host = this.str(S_HOST);
    return this._host;
  }

  get userAgent(): string | undefined {
    if (this._userAgent === UNREAD) this._userAgent = this.str(S_USER_AGENT);
    return this._userAgent;
  }

  /** W3C tracestate that came with the caller's context */
  get traceState(): string | undefined {
    if (this._traceState === UNREAD) this._traceState = this.str(S_TRACE_STATE);
    return this._traceState;
  }

  /** Not memoized: no output reads it on the per-exchange path. */
  get contentType(): string | undefined {
    return this.str(S_CONTENT_TYPE);
  }

  /** A gRPC call: the request's Content-Type is application/grpc (or application/grpc+proto, ...). Read from the bytes. */
  get isGrpc(): boolean {
    const offset = this.buf.readUInt32LE(this.at + S_CONTENT_TYPE);
    if (offset === 0) return false;
    const length = this.buf.readUInt32LE(this.at + S_CONTENT_TYPE + 4);
    const start = this.at + offset;
    if (
      length < GRPC_CONTENT_TYPE.length ||
      this.buf.compare(GRPC_CONTENT_TYPE, 0, GRPC_CONTENT_TYPE.length, start, start + GRPC_CONTENT_TYPE.length) !== 0
    ) {
      return false;
    }
    // "application/grpc" alone or followed by "+codec" / ";params" (not "application/grpc-web")
    const next = length === GRPC_CONTENT_TYPE.length ? -1 : this.buf[start + GRPC_CONTENT_TYPE.length];
    return next === -1 || next === 0x2b || next === 0x3b;
  }

  /** 32 lowercase hex chars */
  get traceId(): string {
    if (this._traceId === UNREAD)
      this._traceId = this.buf.toString('hex', this.at + TRACE_ID_OFFSET, this.at + TRACE_ID_OFFSET + 16);
    return this._traceId;
  }

  /** 16 lowercase hex chars: this exchange's span */
  get spanId(): string {
    if (this._spanId === UNREAD)
      this._spanId = this.buf.toString('hex', this.at + SPAN_ID_OFFSET, this.at + SPAN_ID_OFFSET + 8);
    return this._spanId;
  }

  /** the caller's span (SERVER) or the SERVER exchange's span (CLIENT); undefined when none */
  get parentSpanId(): string | undefined {
    if (this._parentSpanId === UNREAD) {
      this._parentSpanId =
        (this.flags & F_PARENT_SPAN) === 0
          ? undefined
          : this.buf.toString('hex', this.at + PARENT_SPAN_ID_OFFSET, this.at + PARENT_SPAN_ID_OFFSET + 8);
    }
    return this._parentSpanId;
  }

  get localAddress(): string | undefined {
    if (this._localAddress === UNREAD) this._localAddress = this.address(O_LOCAL_ADDR);
    return this._localAddress;
  }

  get peerAddress(): string | undefined {
    if (this._peerAddress === UNREAD) this._peerAddress = this.address(O_PEER_ADDR);
    return this._peerAddress;
  }

  /** SERVER: ns spent in one Lua phase (LuaPhase value) before the answer ended; 0 when not measured */
  luaNs(phase: number): number {
    if (phase < 0 || phase >= LUA_PHASES) return 0;
    const at = this.at + O_LUA + phase * 8;
    return this.buf.readUInt32LE(at + 4) * TWO_32 + this.buf.readUInt32LE(at);
  }

  /** SERVER: the sum of luaNs over every phase; 0 without the Lua uprobes */
  luaTotalNs(): number {
    let total = 0;
    for (let phase = 0; phase < LUA_PHASES; phase++) total += this.luaNs(phase);
    return total;
  }

  /** Start and length of a string field's bytes in `frame`, or length -1 when absent. */
  stringStart(field: number): number {
    return this.at + this.buf.readUInt32LE(this.at + field);
  }

  stringLength(field: number): number {
    return this.buf.readUInt32LE(this.at + field) === 0 ? -1 : this.buf.readUInt32LE(this.at + field + 4);
  }

  private str(field: number): string | undefined {
    const buf = this.buf;
    const offset = buf.readUInt32LE(this.at + field);
    if (offset === 0) return undefined;
    const start = this.at + offset;
    return buf.toString('latin1', start, start + buf.readUInt32LE(this.at + field + 4));
  }

  private address(field: number): string | undefined {
    return this.family === 0 ? undefined : formatAddress(this.family, this.buf, this.at + field) || undefined;
  }
}

/** u64 as a number: exact below 2^53, which ids, connection ids and byte counts stay under. */
function u64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * TWO_32 + view.getUint32(at, true);
}

/**
 * ktime -> ns since the clock base. The base split in two u32 halves keeps the subtraction in
 * plain numbers, exact even when ktime itself is above 2^53 (hosts up for more than 104 days).
 * 0 (not seen) stays 0: the base is taken before capture starts, so no real time is 0.
 */
function relNs(view: DataView, at: number, baseHi: number, baseLo: number): number {
  const lo = view.getUint32(at, true);
  const hi = view.getUint32(at + 4, true);
  if (lo === 0 && hi === 0) return 0;
  return (hi - baseHi) * TWO_32 + (lo - baseLo);
}
