/**
 * Trace identity of exchanges: continue the caller's W3C or B3 context when a request carries
 * one, otherwise start a new trace; every exchange gets its own new span id. Ids come from a
 * pooled crypto-random buffer: one syscall per few hundred ids, not one per id.
 */
import { randomFillSync } from 'node:crypto';
import type { TraceIds } from './types';

/** A caller's context read from request headers. */
export interface IncomingContext {
  traceId?: string;
  spanId?: string;
  sampled?: boolean;
  traceState?: string;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);
const MAX_TRACESTATE = 512;

/** 1 for lower-case hex digits, by character code. */
const LOWER_HEX = new Uint8Array(128);
for (const c of '0123456789abcdef') LOWER_HEX[c.charCodeAt(0)] = 1;

function isLowerHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || LOWER_HEX[c] !== 1) return false;
  }
  return true;
}

/**
 * W3C traceparent: undefined unless valid (version ff, all-zero ids, wrong lengths are refused).
 * `vv-{32 hex}-{16 hex}-ff`, then for versions after 00 optionally "-" and anything on one line.
 * Checked by hand rather than by a regular expression: every request that carries one pays it.
 */
export function parseTraceparent(value: string): IncomingContext | undefined {
  const v = value.trim();
  const n = v.length;
  if (n < 55 || v.charCodeAt(2) !== 0x2d || v.charCodeAt(35) !== 0x2d || v.charCodeAt(52) !== 0x2d) return undefined;
  if (!isLowerHex(v, 0, 2) || !isLowerHex(v, 3, 35) || !isLowerHex(v, 36, 52) || !isLowerHex(v, 53, 55)) {
    return undefined;
  }
  if (n > 55) {
    // Version 00 has exactly four fields; later versions may append more after a dash.
    if (v.charCodeAt(55) !== 0x2d) return undefined;
    for (let i = 56; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029) return undefined;
    }
  }
  const version = v.slice(0, 2);
  if (version === 'ff') return undefined;
  if (version === '00' && n > 55) return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  if (traceId === ZERO32 || spanId === ZERO16) return undefined;
  // The sampled flag is bit 0 of the flags byte: the low bit of its second hex digit.
  const low = v.charCodeAt(54);
  return { traceId, spanId, sampled: ((low <= 0x39 ? low - 0x30 : low - 0x57) & 1) === 1 };
}

/** B3 single header: `{trace}-{span}[-{sampling}[-{parent}]]`, or only a sampling decision. */
export function parseB3Single(value: string): IncomingContext | undefined {
  const v = value.trim().toLowerCase();
  if (v === '0') return { sampled: false };
  if (v === '1' || v === 'd') return { sampled: true };
  const parts = v.split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const traceId = b3TraceId(parts[0]);
  const spanId = parts[1];
  if (!traceId || !HEX16.test(spanId) || spanId === ZERO16) return undefined;
  let sampled: boolean | undefined;
  if (parts.length >= 3) {
    if (parts[2] === '1' || parts[2] === 'd') sampled = true;
    else if (parts[2] === '0') sampled = false;
    else return undefined;
  }
  if (parts.length === 4 && !HEX16.test(parts[3])) return undefined;
  return { traceId, spanId, sampled };
}

/** B3 multi headers (x-b3-traceid, x-b3-spanid, x-b3-sampled, x-b3-flags). */
export function parseB3Multi(headers: Record<string, string>): IncomingContext | undefined {
  let sampled: boolean | undefined;
  const flag = headers['x-b3-sampled']?.trim().toLowerCase();
  if (flag === '1' || flag === 'true') sampled = true;
  else if (flag === '0' || flag === 'false') sampled = false;
  if (headers['x-b3-flags']?.trim() === '1') sampled = true; // debug implies sampled
  const rawTrace = headers['x-b3-traceid'];
  const rawSpan = headers['x-b3-spanid'];
  if (rawTrace === undefined || rawSpan === undefined) return sampled === undefined ? undefined : { sampled };
  const traceId = b3TraceId(rawTrace.trim().toLowerCase());
  const spanId = rawSpan.trim().toLowerCase();
  if (!traceId || !HEX16.test(spanId) || spanId === ZERO16) return sampled === undefined ? undefined : { sampled };
  return { traceId, spanId, sampled };
}

function b3TraceId(value: string): string | undefined {
  const id = value.length === 16 ? `${ZERO16}${value}` : value;
  return HEX32.test(id) && id !== ZERO32 ? id : undefined;
}

/** The caller's context: W3C first (what Kong's OTel plugin prefers), then B3 single, then B3 multi. */
export function incomingContext(headers: Record<string, string>): IncomingContext | undefined {
  const tp = headers['traceparent'];
  if (tp !== undefined) {
    const ctx = parseTraceparent(tp);
    if (ctx) {
      const state = headers['tracestate'];
      if (state !== undefined && state.length <= MAX_TRACESTATE && state.trim() !== '') ctx.traceState = state.trim();
      return ctx;
    }
  }
  const b3 = headers['b3'];
  const single = b3 === undefined ? undefined : parseB3Single(b3);
  if (single?.traceId) return single;
  const multi = parseB3Multi(headers);
  if (multi?.traceId) return multi;
  return single ?? multi;
}

/** Random ids from a pooled buffer. */
export class IdGenerator {
  private pool: Buffer;
  private at: number;

  constructor(
    private readonly fill: (buf: Buffer) => void = (buf) => randomFillSync(buf),
    poolSize = 4096,
  ) {
    this.pool = Buffer.alloc(poolSize);
    this.at = poolSize;
  }

  traceId(): string {
    let id = this.hex(16);
    while (id === ZERO32) id = this.hex(16);
    return id;
  }

  spanId(): string {
    let id = this.hex(8);
    while (id === ZERO16) id = this.hex(8);
    return id;
  }

  private hex(bytes: number): string {
    if (this.at + bytes > this.pool.length) {
      this.fill(this.pool);
      this.at = 0;
    }
    const s = this.pool.toString('hex', this.at, this.at + bytes);
    this.at += bytes;
    return s;
  }
}

/** Ids of an inbound (SERVER) exchange from its request headers. */
export function serverIds(
  headers: Record<string, string>,
  ids: IdGenerator,
  ctx: IncomingContext | undefined = incomingContext(headers),
): TraceIds {
  if (ctx?.traceId) {
    return {
      traceId: ctx.traceId,
      spanId: ids.spanId(),
      parentSpanId: ctx.spanId,
      sampled: ctx.sampled ?? true,
      traceState: ctx.traceState,
      remoteParent: true,
    };
  }
  return { traceId: ids.traceId(), spanId: ids.spanId(), sampled: ctx?.sampled ?? true, remoteParent: false };
}

/**
 * Ids of an upstream (CLIENT) exchange. With a parent: its trace, the parent's span as parent.
 * When the upstream request carries a context of the same trace whose span is not the caller's
 * (Kong's OTel plugin injected its own span), that span id is this exchange's: then the upstream's
 * own spans hang under this CLIENT span. A parent that started its own trace adopts the trace id
 * Kong propagated, so that the whole call tree shares one trace.
 */
export function clientIds(
  parent: TraceIds | undefined,
  headers: Record<string, string>,
  ids: IdGenerator,
  ctx: IncomingContext | undefined = incomingContext(headers),
): TraceIds {
  if (!parent) {
    if (ctx?.traceId) {
      return {
        traceId: ctx.traceId,
        spanId: ctx.spanId!,
        sampled: ctx.sampled ?? true,
        traceState: ctx.traceState,
        remoteParent: false,
      };
    }
    return { traceId: ids.traceId(), spanId: ids.spanId(), sampled: true, remoteParent: false };
  }
  if (ctx?.traceId && ctx.spanId && ctx.traceId !== parent.traceId && !parent.remoteParent) {
    parent.traceId = ctx.traceId;
  }
  const propagated =
    ctx?.traceId === parent.traceId && ctx.spanId !== undefined && ctx.spanId !== parent.parentSpanId
      ? ctx.spanId
      : undefined;
  return {
    traceId: parent.traceId,
    spanId: propagated ?? ids.spanId(),
    parentSpanId: parent.spanId,
    sampled: parent.sampled,
    traceState: parent.traceState,
    remoteParent: false,
  };
}
