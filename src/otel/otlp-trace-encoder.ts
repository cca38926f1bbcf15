/**
 * Span batches -> ExportTraceServiceRequest protobuf bytes, written directly (no message
 * objects, no generic serializer). Field numbers are those of opentelemetry/proto/trace/v1,
 * common/v1, resource/v1 and collector/trace/v1.
 *
 * Resource and scope never change for the agent's life, so their bytes are made once; every
 * batch is one ResourceSpans with one ScopeSpans. Ids are copied from the span's bytes, and each
 * span writes its attributes into the encoder (it is the span's AttributeWriter), whose keys'
 * bytes are made once. Output matches what the SDK exporter sends for the same spans (same flags,
 * kind offset, int/double choice for numbers).
 */
import type { AttributeValue, HrTime } from '@opentelemetry/api';
import {
  SPAN_ATTRIBUTE_NAMES,
  SPAN_ATTRIBUTE_REPEATS,
  type AttributeWriter,
  type ExportSpan,
  type SpanAttr,
} from './span';

export interface EncoderScope {
  name: string;
  version?: string;
}

export type EncoderAttributes = Record<string, AttributeValue | undefined>;

// Tags: (field << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
const T_SPAN_TRACE_ID = 0x0a;
const T_SPAN_SPAN_ID = 0x12;
const T_SPAN_TRACE_STATE = 0x1a;
const T_SPAN_PARENT_SPAN_ID = 0x22;
const T_SPAN_NAME = 0x2a;
const T_SPAN_KIND = 0x30;
const T_SPAN_START = 0x39;
const T_SPAN_END = 0x41;
const T_SPAN_ATTRIBUTE = 0x4a;
const T_SPAN_STATUS = 0x7a;
/** field 16, fixed32: two varint bytes */
const T_SPAN_FLAGS_0 = 0x85;
const T_SPAN_FLAGS_1 = 0x01;
const T_STATUS_MESSAGE = 0x12;
const T_STATUS_CODE = 0x18;
const T_KV_KEY = 0x0a;
const T_KV_VALUE = 0x12;
const T_ANY_STRING = 0x0a;
const T_ANY_BOOL = 0x10;
const T_ANY_INT = 0x18;
const T_ANY_DOUBLE = 0x21;
const T_ANY_ARRAY = 0x2a;
const T_ANY_BYTES = 0x3a;
const T_ARRAY_VALUE = 0x0a;
const T_REQUEST_RESOURCE_SPANS = 0x0a;
const T_RESOURCE_SPANS_RESOURCE = 0x0a;
const T_RESOURCE_SPANS_SCOPE_SPANS = 0x12;
const T_RESOURCE_ATTRIBUTE = 0x0a;
const T_SCOPE_SPANS_SCOPE = 0x0a;
const T_SCOPE_SPANS_SPAN = 0x12;
const T_SCOPE_NAME = 0x0a;
const T_SCOPE_VERSION = 0x12;

/** OTLP span flags: the low byte is W3C trace flags; bit 8 says bit 9 (parent is remote) is known. */
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

/** Span bodies are almost always under 16 KiB: two length bytes reserved, fixed up if not. */
const SPAN_LEN_RESERVE = 2;
/** tag + 5-byte length, three times: the most the batch prefix can take besides resource and scope */
const MAX_WRAPPER_BYTES = 3 * 6;
const KEY_CACHE_LIMIT = 1024;
const NS_PER_S = 1e9;
/** Encodings kept per repeating attribute, and the most bytes one may take. */
const KV_WAYS = 4;
const KV_SLOT = 128;

/**
 * Encodes batches for one resource and scope. Not re-entrant. Each encode() writes into a buffer
 * of its own, which the caller owns until it gives it back with release(): requests stay alive
 * while an export and its retries run, and reusing their memory afterwards spares a fresh
 * megabyte (and its page faults) per batch.
 */
export class OtlpTraceEncoder implements AttributeWriter {
  private buf: Buffer;
  private pos = 0;
  /** the KeyValue key field of each SpanAttr */
  private readonly knownKeys: Buffer[];
  private readonly time: HrTime = [0, 0];
  /** [resource field][scope_spans tag]: the ScopeSpans length follows, per batch */
  private readonly resourcePart: Buffer;
  /** [scope field]: the first field of ScopeSpans */
  private readonly scopePart: Buffer;
  private readonly keys = new Map<string, Buffer>();
  /** SPAN_ATTRIBUTE_REPEATS: per key, the last KV_WAYS string values and their whole KeyValue bytes */
  private readonly kvValues: (string | undefined)[];
  private readonly kvBytes: Buffer;
  private readonly kvLengths: Int32Array;
  private readonly kvNext: Uint8Array;
  /** released request buffers, reused by the next request */
  private readonly free: Buffer[] = [];
  private bufferBytes: number;
  /** a request is being built in buf */
  private building = false;

  constructor(
    resourceAttributes: EncoderAttributes,
    scope: EncoderScope,
    initialBytes = 1 << 20,
    /** released buffers kept for reuse: the requests in flight at once */
    private readonly keepBuffers = 8,
  ) {
    this.bufferBytes = initialBytes;
    this.buf = Buffer.allocUnsafeSlow(initialBytes);
    // Resource and scope fields are encoded with the same writer, then kept as bytes.
    this.pos = 0;
    this.writeTag(T_RESOURCE_SPANS_RESOURCE);
    const resStart = this.beginLen(5);
    for (const key of Object.keys(resourceAttributes)) {
      const value = resourceAttributes[key];
      if (value !== undefined && value !== null) this.writeKeyValue(T_RESOURCE_ATTRIBUTE, undefined, key, value);
    }
    this.endLen(resStart, 5);
    this.writeTag(T_RESOURCE_SPANS_SCOPE_SPANS);
    const resourceLen = this.pos;
    const scopeStart = this.pos;
    this.writeTag(T_SCOPE_SPANS_SCOPE);
    const scopeBody = this.beginLen(5);
    this.writeStringField(T_SCOPE_NAME, scope.name);
    if (scope.version !== undefined && scope.version !== '') this.writeStringField(T_SCOPE_VERSION, scope.version);
    this.endLen(scopeBody, 5);
    this.resourcePart = Buffer.from(this.buf.subarray(0, resourceLen));
    this.scopePart = Buffer.from(this.buf.subarray(scopeStart, this.pos));
    this.pos = 0;
    this.knownKeys = SPAN_ATTRIBUTE_NAMES.map(keyField);
    const slots = SPAN_ATTRIBUTE_NAMES.length * KV_WAYS;
    this.kvValues = new Array<string | undefined>(slots).fill(undefined);
    this.kvBytes = Buffer.alloc(slots * KV_SLOT);
    this.kvLengths = new Int32Array(slots);
    this.kvNext = new Uint8Array(SPAN_ATTRIBUTE_NAMES.length);
    this.free.push(this.buf);
  }

  /** One ExportTraceServiceRequest carrying `spans`, ready for the wire; the caller owns it until release(). */
  encode(spans: readonly ExportSpan[]): Buffer {
    for (let i = 0; i < spans.length; i++) this.add(spans[i]);
    return this.finish();
  }

  /** Appends one span to the request being built (one is begun when none is). */
  add(span: ExportSpan): void {
    if (!this.building) this.begin();
    this.writeSpan(span);
  }

  /** The request of the spans added since the last finish(), ready for the wire; the caller owns it until release(). */
  finish(): Buffer {
    if (!this.building) this.begin();
    this.building = false;
    const room = this.room();
    const spansLen = this.pos - room;
    const scopeSpansLen = this.scopePart.length + spansLen;
    const resourceSpansLen = this.resourcePart.length + varintSize(scopeSpansLen) + scopeSpansLen;
    const totalPrefix =
      1 + varintSize(resourceSpansLen) + this.resourcePart.length + varintSize(scopeSpansLen) + this.scopePart.length;
    const start = room - totalPrefix;
    const end = this.pos;
    this.pos = start;
    this.buf[this.pos++] = T_REQUEST_RESOURCE_SPANS;
    this.writeVarint(resourceSpansLen);
    this.resourcePart.copy(this.buf, this.pos);
    this.pos += this.resourcePart.length;
    this.writeVarint(scopeSpansLen);
    this.scopePart.copy(this.buf, this.pos);
    this.pos += this.scopePart.length;
    this.pos = 0;
    // The buffer grew for this batch: the next ones start at this size.
    if (this.buf.length > this.bufferBytes) this.bufferBytes = this.buf.length;
    return this.buf.subarray(start, end);
  }

  /**
   * Spans go after room for the largest possible prefix; the prefix is written backwards in front
   * of them once their length is known, so nothing is moved.
   */
  private begin(): void {
    const reused = this.free.pop();
    this.buf =
      reused !== undefined && reused.length >= this.bufferBytes ? reused : Buffer.allocUnsafeSlow(this.bufferBytes);
    this.pos = this.room();
    this.building = true;
  }

  private room(): number {
    return this.resourcePart.length + this.scopePart.length + MAX_WRAPPER_BYTES;
  }

  /** Gives back what encode() returned, once nothing reads it any more (the export is over). */
  release(request: Buffer): void {
    if (this.free.length >= this.keepBuffers || request.buffer.byteLength < this.bufferBytes) return;
    this.free.push(Buffer.from(request.buffer, 0, request.buffer.byteLength));
  }

  private writeSpan(s: ExportSpan): void {
    const name = s.name;
    this.ensure(256 + name.length * 3);
    this.buf[this.pos++] = T_SCOPE_SPANS_SPAN;
    const body = this.beginLen(SPAN_LEN_RESERVE);
    const ids = s.ids;
    this.buf[this.pos++] = T_SPAN_TRACE_ID;
    this.buf[this.pos++] = 16;
    this.writeId(ids, s.traceIdAt, 16);
    this.buf[this.pos++] = T_SPAN_SPAN_ID;
    this.buf[this.pos++] = 8;
    this.writeId(ids, s.spanIdAt, 8);
    const traceState = s.traceState;
    if (traceState !== undefined && traceState !== '') this.writeStringField(T_SPAN_TRACE_STATE, traceState);
    const parentAt = s.parentSpanIdAt;
    if (parentAt >= 0) {
      this.ensure(16);
      this.buf[this.pos++] = T_SPAN_PARENT_SPAN_ID;
      this.buf[this.pos++] = 8;
      this.writeId(ids, parentAt, 8);
    }
    this.writeStringField(T_SPAN_NAME, name);
    this.ensure(32);
    this.buf[this.pos++] = T_SPAN_KIND;
    this.buf[this.pos++] = s.kind + 1; // API kinds start at INTERNAL = 0, OTLP at UNSPECIFIED = 0
    this.buf[this.pos++] = T_SPAN_START;
    this.writeHrTime(s.startTime(this.time));
    this.buf[this.pos++] = T_SPAN_END;
    this.writeHrTime(s.endTime(this.time));
    s.writeAttributes(this);
    const statusMessage = s.statusMessage;
    const statusCode = s.statusCode;
    this.ensure(32 + (statusMessage?.length ?? 0) * 3);
    this.buf[this.pos++] = T_SPAN_STATUS;
    const status = this.beginLen(1);
    if (statusMessage !== undefined && statusMessage !== '') this.writeStringField(T_STATUS_MESSAGE, statusMessage);
    if (statusCode !== 0) {
      this.buf[this.pos++] = T_STATUS_CODE;
      this.writeVarint(statusCode);
    }
    this.endLen(status, 1);
    let flags = (s.traceFlags & 0xff) | FLAG_HAS_IS_REMOTE;
    if (parentAt >= 0 && s.parentIsRemote) flags |= FLAG_IS_REMOTE;
    this.buf[this.pos++] = T_SPAN_FLAGS_0;
    this.buf[this.pos++] = T_SPAN_FLAGS_1;
    this.buf.writeUInt32LE(flags, this.pos);
    this.pos += 4;
    this.endLen(body, SPAN_LEN_RESERVE);
  }

  /**
   * AttributeWriter: a known key with a string value (called by the span being encoded). Lengths
   * are reserved for ASCII, which they nearly always are; other text is fixed up after.
   */
  str(key: SpanAttr, value: string): void {
    const k = this.knownKeys[key];
    if (k === undefined) return;
    if (SPAN_ATTRIBUTE_REPEATS[key]) {
      this.repeatingStr(key, k, value);
      return;
    }
    this.strKeyValue(k, value);
  }

  /** A value from a small set: copied from its last encoding, or encoded and remembered. */
  private repeatingStr(key: SpanAttr, k: Buffer, value: string): void {
    const first = key * KV_WAYS;
    const values = this.kvValues;
    for (let way = first; way < first + KV_WAYS; way++) {
      if (values[way] !== value) continue;
      const len = this.kvLengths[way];
      this.ensure(len);
      const from = this.kvBytes;
      const buf = this.buf;
      let pos = this.pos;
      for (let i = way * KV_SLOT, end = i + len; i < end; i++) buf[pos++] = from[i];
      this.pos = pos;
      return;
    }
    const start = this.pos;
    this.strKeyValue(k, value);
    const len = this.pos - start;
    if (len > KV_SLOT) return;
    const way = first + this.kvNext[key];
    this.kvNext[key] = (this.kvNext[key] + 1) % KV_WAYS;
    this.buf.copy(this.kvBytes, way * KV_SLOT, start, this.pos);
    this.kvLengths[way] = len;
    values[way] = value;
  }

  private strKeyValue(k: Buffer, value: string): void {
    const len = value.length;
    const keyLen = k.length;
    this.ensure(keyLen + len * 3 + 24);
    const buf = this.buf;
    const strReserve = varintSize(len);
    const anyLen = 1 + strReserve + len;
    const anyReserve = varintSize(anyLen);
    const kvLen = keyLen + 1 + anyReserve + anyLen;
    const kvReserve = varintSize(kvLen);
    let pos = this.pos;
    buf[pos++] = T_SPAN_ATTRIBUTE;
    const kvStart = pos + kvReserve;
    pos = kvStart;
    for (let i = 0; i < keyLen; i++) buf[pos++] = k[i];
    buf[pos++] = T_KV_VALUE;
    const anyStart = pos + anyReserve;
    pos = anyStart;
    buf[pos++] = T_ANY_STRING;
    const strStart = pos + strReserve;
    this.pos = strStart;
    this.writeUtf8(value);
    if (this.pos - strStart === len) {
      putVarint(buf, kvStart - kvReserve, kvLen);
      putVarint(buf, anyStart - anyReserve, anyLen);
      putVarint(buf, strStart - strReserve, len);
      return;
    }
    this.endLen(strStart, strReserve);
    this.endLen(anyStart, anyReserve);
    this.endLen(kvStart, kvReserve);
  }

  /**
   * AttributeWriter: a known key with a string given as latin1 bytes (a frame's path or user
   * agent), copied as they are when ASCII, each byte >= 0x80 as its two-byte UTF-8 form.
   */
  latin1(key: SpanAttr, src: Uint8Array, at: number, length: number): void {
    const k = this.knownKeys[key];
    if (k === undefined) return;
    const end = at + length;
    let high = 0;
    for (let i = at; i < end; i++) if (src[i] >= 0x80) high++;
    const strLen = length + high;
    const keyLen = k.length;
    const anyLen = 1 + varintSize(strLen) + strLen;
    const kvLen = keyLen + 1 + varintSize(anyLen) + anyLen;
    this.ensure(kvLen + 8);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = T_SPAN_ATTRIBUTE;
    putVarint(buf, pos, kvLen);
    pos += varintSize(kvLen);
    for (let i = 0; i < keyLen; i++) buf[pos++] = k[i];
    buf[pos++] = T_KV_VALUE;
    putVarint(buf, pos, anyLen);
    pos += varintSize(anyLen);
    buf[pos++] = T_ANY_STRING;
    putVarint(buf, pos, strLen);
    pos += varintSize(strLen);
    if (high === 0) {
      for (let i = at; i < end; i++) buf[pos++] = src[i];
    } else {
      for (let i = at; i < end; i++) {
        const c = src[i];
        if (c < 0x80) {
          buf[pos++] = c;
        } else {
          buf[pos++] = 0xc0 | (c >> 6);
          buf[pos++] = 0x80 | (c & 0x3f);
        }
      }
    }
    this.pos = pos;
  }

  /** AttributeWriter: a known key with an integer value. */
  int(key: SpanAttr, value: number): void {
    const k = this.knownKeys[key];
    if (k === undefined) return;
    const keyLen = k.length;
    const anyLen = value >= 0 && value <= Number.MAX_SAFE_INTEGER ? 1 + varintSize(value) : 0;
    const kvLen = keyLen + 2 + anyLen;
    // The general path for what the fast one does not cover: negative, fractional, or a long key.
    if (anyLen === 0 || kvLen > 127 || !Number.isInteger(value)) {
      this.writeKeyValue(T_SPAN_ATTRIBUTE, k, '', value);
      return;
    }
    this.ensure(keyLen + 24);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = T_SPAN_ATTRIBUTE;
    buf[pos++] = kvLen;
    for (let i = 0; i < keyLen; i++) buf[pos++] = k[i];
    buf[pos++] = T_KV_VALUE;
    buf[pos++] = anyLen;
    buf[pos++] = T_ANY_INT;
    this.pos = pos;
    this.writeVarint(value);
  }

  /** AttributeWriter: any key and value (null and undefined are left out, as the SDK does). */
  any(key: string, value: AttributeValue): void {
    if (value !== undefined && value !== null) this.writeKeyValue(T_SPAN_ATTRIBUTE, this.keyBytes(key), key, value);
  }

  /** keyBytes: the key field made once; undefined: `key` is written as it is. */
  private writeKeyValue(tag: number, keyBytes: Buffer | undefined, key: string, value: AttributeValue): void {
    const keyLen = keyBytes !== undefined ? keyBytes.length : 2 + key.length;
    // Lengths are reserved from a guess (strings are usually ASCII); endLen fixes a wrong one.
    const anyGuess = anyValueSizeGuess(value);
    const anyReserve = varintSize(anyGuess);
    const kvReserve = varintSize(keyLen + 1 + anyReserve + anyGuess);
    this.ensure(keyLen + 16);
    this.buf[this.pos++] = tag;
    const kv = this.beginLen(kvReserve);
    if (keyBytes !== undefined) {
      const buf = this.buf;
      const at = this.pos;
      if (keyBytes.length <= 64) {
        for (let i = 0; i < keyBytes.length; i++) buf[at + i] = keyBytes[i];
      } else {
        keyBytes.copy(buf, at);
      }
      this.pos += keyBytes.length;
    } else {
      this.writeStringField(T_KV_KEY, key);
    }
    this.ensure(16);
    this.buf[this.pos++] = T_KV_VALUE;
    const any = this.beginLen(anyReserve);
    this.writeAnyValueBody(value);
    this.endLen(any, anyReserve);
    this.endLen(kv, kvReserve);
  }

  /** The body of an AnyValue; the caller wrote the tag and handles the length. */
  private writeAnyValueBody(value: AttributeValue): void {
    switch (typeof value) {
      case 'string':
        this.writeStringField(T_ANY_STRING, value);
        return;
      case 'number':
        this.ensure(16);
        if (Number.isInteger(value)) {
          this.buf[this.pos++] = T_ANY_INT;
          this.writeInt64(value);
        } else {
          this.buf[this.pos++] = T_ANY_DOUBLE;
          this.buf.writeDoubleLE(value, this.pos);
          this.pos += 8;
        }
        return;
      case 'boolean':
        this.ensure(4);
        this.buf[this.pos++] = T_ANY_BOOL;
        this.buf[this.pos++] = value ? 1 : 0;
        return;
    }
    if (value instanceof Uint8Array) {
      this.ensure(value.length + 8);
      this.buf[this.pos++] = T_ANY_BYTES;
      this.writeVarint(value.length);
      this.buf.set(value, this.pos);
      this.pos += value.length;
      return;
    }
    if (Array.isArray(value)) {
      this.ensure(8);
      this.buf[this.pos++] = T_ANY_ARRAY;
      const arr = this.beginLen(5);
      for (const item of value as unknown[]) {
        this.ensure(8);
        this.buf[this.pos++] = T_ARRAY_VALUE;
        const any = this.beginLen(1);
        // The SDK sends an empty AnyValue for null/undefined array items; so do we.
        if (item !== undefined && item !== null) this.writeAnyValueBody(item as AttributeValue);
        this.endLen(any, 1);
      }
      this.endLen(arr, 5);
    }
  }

  /** The key field of an attribute key outside SpanAttr, made once per key (up to a bound). */
  private keyBytes(key: string): Buffer | undefined {
    let b = this.keys.get(key);
    if (b === undefined) {
      if (this.keys.size >= KEY_CACHE_LIMIT) return undefined;
      b = keyField(key);
      this.keys.set(key, b);
    }
    return b;
  }

  private writeStringField(tag: number, s: string): void {
    const len = s.length;
    this.ensure(len * 3 + 8);
    this.buf[this.pos++] = tag;
    // Reserved for ASCII; a multi-byte string whose length needs another byte is moved once.
    const reserve = varintSize(len);
    const body = this.beginLen(reserve);
    this.writeUtf8(s);
    this.endLen(body, reserve);
  }

  /** ASCII is cheaper to copy in JS than through the native write, up to a few hundred chars. */
  private writeUtf8(s: string): void {
    const buf = this.buf;
    const start = this.pos;
    const len = s.length;
    if (len <= 256) {
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          this.pos = start + buf.write(s, start, len * 3, 'utf8');
          return;
        }
        buf[start + i] = c;
      }
      this.pos = start + len;
      return;
    }
    this.pos = start + buf.write(s, start, len * 3, 'utf8');
  }

  /** Ids are bytes of the span's own; bytes out of range leave zeros, never a throw. */
  private writeId(ids: Uint8Array, at: number, bytes: number): void {
    const buf = this.buf;
    const to = this.pos;
    this.pos += bytes;
    if (at >= 0 && at + bytes <= ids.length) {
      for (let i = 0; i < bytes; i++) buf[to + i] = ids[at + i];
    } else {
      buf.fill(0, to, to + bytes);
    }
  }

  /** [seconds, nanoseconds] -> fixed64 unix ns, exact beyond 2^53 without BigInt. */
  private writeHrTime(t: readonly [number, number]): void {
    const sec = t[0] >= 0 ? t[0] : 0;
    const nsec = t[1] >= 0 ? t[1] : 0;
    // sec * 1e9 + nsec split into 32-bit halves with every intermediate below 2^53.
    const sHi = Math.floor(sec / 65536);
    const sLo = sec - sHi * 65536;
    const a = sLo * NS_PER_S + nsec; // < 2^47
    const b = sHi * NS_PER_S; // the part to shift left by 16
    const bHi = Math.floor(b / 65536);
    const c = (b - bHi * 65536) * 65536 + a;
    const cHi = Math.floor(c / 4294967296);
    const lo = c - cHi * 4294967296;
    const hi = (bHi + cHi) >>> 0;
    const buf = this.buf;
    const at = this.pos;
    buf[at] = lo;
    buf[at + 1] = lo >>> 8;
    buf[at + 2] = lo >>> 16;
    buf[at + 3] = lo >>> 24;
    buf[at + 4] = hi;
    buf[at + 5] = hi >>> 8;
    buf[at + 6] = hi >>> 16;
    buf[at + 7] = hi >>> 24;
    this.pos = at + 8;
  }

  private writeTag(tag: number): void {
    this.ensure(8);
    this.buf[this.pos++] = tag;
  }

  private writeVarint(n: number): void {
    const buf = this.buf;
    if (n < 0x80) {
      buf[this.pos++] = n;
      return;
    }
    if (n <= 0x7fffffff) {
      while (n > 0x7f) {
        buf[this.pos++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
      buf[this.pos++] = n;
      return;
    }
    while (n > 0x7f) {
      buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
  }

  /** int64 varint: negative values are ten bytes of two's complement, as protobuf wants. */
  private writeInt64(n: number): void {
    if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
      this.writeVarint(n);
      return;
    }
    // 2^63 as a double: anything at or beyond it saturates, as a float-to-int64 cast would.
    const clamped = Math.max(Math.min(n, 2 ** 63 - 1024), -(2 ** 63));
    let v = BigInt.asUintN(64, BigInt(Math.trunc(clamped)));
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /** Reserves `reserve` bytes for a length; returns where the body starts. */
  private beginLen(reserve: number): number {
    this.pos += reserve;
    return this.pos;
  }

  /** Writes the body's length in front of it, moving the body when the reserve was not exact. */
  private endLen(bodyStart: number, reserve: number): void {
    const len = this.pos - bodyStart;
    const need = varintSize(len);
    let lenAt = bodyStart - reserve;
    if (need !== reserve) {
      if (need > reserve) this.ensure(need - reserve);
      const newBody = lenAt + need;
      this.buf.copyWithin(newBody, bodyStart, this.pos);
      this.pos = newBody + len;
    }
    const buf = this.buf;
    let n = len;
    while (n > 0x7f) {
      buf[lenAt++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[lenAt] = n;
  }

  /** Room for `n` more bytes; the scratch grows by doubling and stays at its largest size. */
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/** A varint at `at` whose size was reserved exactly (varintSize(n) bytes). */
function putVarint(buf: Buffer, at: number, n: number): void {
  while (n > 0x7f) {
    buf[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[at] = n;
}

export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 0x800000000) return 5;
  if (n < 0x40000000000) return 6;
  if (n < 0x2000000000000) return 7;
  if (n < 0x100000000000000) return 8;
  return 9;
}

/** The AnyValue body size if strings are ASCII; exact for numbers and booleans. */
function anyValueSizeGuess(value: AttributeValue): number {
  switch (typeof value) {
    case 'string':
      return 1 + varintSize(value.length) + value.length;
    case 'number':
      if (!Number.isInteger(value)) return 9;
      return value >= 0 ? 1 + varintSize(value) : 11;
    case 'boolean':
      return 2;
  }
  return 64;
}

/** The KeyValue key field of an attribute key: tag, length, UTF-8 bytes. */
function keyField(key: string): Buffer {
  const utf8 = Buffer.from(key, 'utf8');
  const b = Buffer.allocUnsafe(1 + varintSize(utf8.length) + utf8.length);
  b[0] = T_KV_KEY;
  let at = 1;
  let n = utf8.length;
  while (n > 127) {
    b[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[at++] = n;
  utf8.copy(b, at);
  return b;
}
