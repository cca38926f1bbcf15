/**
 * SpanRecord batches -> ExportTraceServiceRequest protobuf bytes, written directly (no message
 * objects, no generic serializer). Field numbers are those of opentelemetry/proto/trace/v1,
 * common/v1, resource/v1 and collector/trace/v1.
 *
 * Resource and scope never change for the agent's life, so their bytes are made once; every
 * batch is one ResourceSpans with one ScopeSpans. Output matches what the SDK exporter sends for
 * the same spans (same flags, kind offset, int/double choice for numbers).
 */
import type { AttributeValue } from '@opentelemetry/api';
import type { SpanRecord } from './spans';

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

/**
 * Encodes batches for one resource and scope. Not re-entrant (one scratch buffer); each
 * encode() returns a fresh Buffer that the caller owns.
 */
export class OtlpTraceEncoder {
  private buf: Buffer;
  private pos = 0;
  /** [resource field][scope_spans tag]: the ScopeSpans length follows, per batch */
  private readonly resourcePart: Buffer;
  /** [scope field]: the first field of ScopeSpans */
  private readonly scopePart: Buffer;
  private readonly keys = new Map<string, Buffer>();

  constructor(resourceAttributes: EncoderAttributes, scope: EncoderScope, initialBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    // Resource and scope fields are encoded with the same writer, then kept as bytes.
    this.pos = 0;
    this.writeTag(T_RESOURCE_SPANS_RESOURCE);
    const resStart = this.beginLen(5);
    for (const key of Object.keys(resourceAttributes)) {
      const value = resourceAttributes[key];
      if (value !== undefined && value !== null) this.writeKeyValue(T_RESOURCE_ATTRIBUTE, key, value, false);
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
  }

  /** One ExportTraceServiceRequest carrying `spans`, ready for the wire. */
  encode(spans: readonly SpanRecord[]): Buffer {
    // Spans go after room for the largest possible prefix; the prefix is written backwards
    // in front of them once their length is known, so nothing is moved.
    const room = this.resourcePart.length + this.scopePart.length + MAX_WRAPPER_BYTES;
    this.pos = room;
    for (let i = 0; i < spans.length; i++) this.writeSpan(spans[i]);
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
    // The grpc layer may keep the request past this call (retries), so it gets its own copy.
    const out = Buffer.allocUnsafe(end - start);
    this.buf.copy(out, 0, start, end);
    this.pos = 0;
    return out;
  }

  private writeSpan(s: SpanRecord): void {
    this.ensure(256 + s.name.length * 3);
    this.buf[this.pos++] = T_SCOPE_SPANS_SPAN;
    const body = this.beginLen(SPAN_LEN_RESERVE);
    this.buf[this.pos++] = T_SPAN_TRACE_ID;
    this.buf[this.pos++] = 16;
    this.writeHexId(s.traceId, 16);
    this.buf[this.pos++] = T_SPAN_SPAN_ID;
    this.buf[this.pos++] = 8;
    this.writeHexId(s.spanId, 8);
    if (s.traceState !== undefined && s.traceState !== '') this.writeStringField(T_SPAN_TRACE_STATE, s.traceState);
    if (s.parentSpanId !== undefined) {
      this.buf[this.pos++] = T_SPAN_PARENT_SPAN_ID;
      this.buf[this.pos++] = 8;
      this.writeHexId(s.parentSpanId, 8);
    }
    this.writeStringField(T_SPAN_NAME, s.name);
    this.buf[this.pos++] = T_SPAN_KIND;
    this.buf[this.pos++] = s.kind + 1; // API kinds start at INTERNAL = 0, OTLP at UNSPECIFIED = 0
    this.buf[this.pos++] = T_SPAN_START;
    this.writeHrTime(s.startTime);
    this.buf[this.pos++] = T_SPAN_END;
    this.writeHrTime(s.endTime);
    const attrs = s.attributeList;
    for (let i = 0; i + 1 < attrs.length; i += 2) {
      const value = attrs[i + 1];
      if (value !== undefined && value !== null) this.writeKeyValue(T_SPAN_ATTRIBUTE, attrs[i] as string, value, true);
    }
    this.ensure(32 + (s.statusMessage?.length ?? 0) * 3);
    this.buf[this.pos++] = T_SPAN_STATUS;
    const status = this.beginLen(1);
    if (s.statusMessage !== undefined && s.statusMessage !== '')
      this.writeStringField(T_STATUS_MESSAGE, s.statusMessage);
    if (s.statusCode !== 0) {
      this.buf[this.pos++] = T_STATUS_CODE;
      this.writeVarint(s.statusCode);
    }
    this.endLen(status, 1);
    let flags = (s.traceFlags & 0xff) | FLAG_HAS_IS_REMOTE;
    if (s.parentSpanId !== undefined && s.parentIsRemote) flags |= FLAG_IS_REMOTE;
    this.buf[this.pos++] = T_SPAN_FLAGS_0;
    this.buf[this.pos++] = T_SPAN_FLAGS_1;
    this.buf.writeUInt32LE(flags, this.pos);
    this.pos += 4;
    this.endLen(body, SPAN_LEN_RESERVE);
  }

  private writeKeyValue(tag: number, key: string, value: AttributeValue, cacheKey: boolean): void {
    const keyBytes = cacheKey ? this.keyBytes(key) : undefined;
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

  /** The KeyValue key field (tag, length, UTF-8) of a span attribute key, made once per key. */
  private keyBytes(key: string): Buffer | undefined {
    let b = this.keys.get(key);
    if (b === undefined) {
      if (this.keys.size >= KEY_CACHE_LIMIT) return undefined;
      const utf8 = Buffer.from(key, 'utf8');
      b = Buffer.allocUnsafe(1 + varintSize(utf8.length) + utf8.length);
      b[0] = T_KV_KEY;
      let at = 1;
      let n = utf8.length;
      while (n > 127) {
        b[at++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
      b[at++] = n;
      utf8.copy(b, at);
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

  /** Ids are hex strings from assembly; anything that is not hex leaves zero bytes, never a throw. */
  private writeHexId(hex: string, bytes: number): void {
    const buf = this.buf;
    const at = this.pos;
    this.pos += bytes;
    if (hex.length === bytes * 2) {
      let bad = 0;
      for (let i = 0; i < bytes; i++) {
        const hi = hexValue(hex.charCodeAt(2 * i));
        const lo = hexValue(hex.charCodeAt(2 * i + 1));
        bad |= hi | lo;
        buf[at + i] = (hi << 4) | lo;
      }
      if (bad >= 0) return;
    }
    buf.fill(0, at, at + bytes);
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
    this.buf.writeUInt32LE(lo, this.pos);
    this.buf.writeUInt32LE(hi, this.pos + 4);
    this.pos += 8;
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
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
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

/** 0-15 for a hex digit, -1 otherwise (either case accepted, as the SDK does). */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
