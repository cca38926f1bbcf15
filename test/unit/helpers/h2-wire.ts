/**
 * HTTP/2 bytes for the assembler's tests, built exactly (RFC 9113 frames, RFC 7541 HPACK): frames
 * of every type with padding, priority and CONTINUATION where asked, and an HPACK encoder with its
 * own dynamic table (incremental indexing, eviction, size updates), literals sent raw. Real
 * Huffman-coded blocks come from node:http2 (test/unit/assembler-http2.test.ts records them).
 */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  Data: 0x0,
  Headers: 0x1,
  Priority: 0x2,
  RstStream: 0x3,
  Settings: 0x4,
  PushPromise: 0x5,
  Ping: 0x6,
  Goaway: 0x7,
  WindowUpdate: 0x8,
  Continuation: 0x9,
} as const;

export const Flag = { EndStream: 0x1, Ack: 0x1, EndHeaders: 0x4, Padded: 0x8, Priority: 0x20 } as const;

export const ErrorCode = { NoError: 0, ProtocolError: 1, RefusedStream: 7, Cancel: 8 } as const;

export const Setting = { HeaderTableSize: 1, EnablePush: 2, MaxConcurrentStreams: 3, InitialWindowSize: 4 } as const;

/** RFC 7541 Appendix A, index 1..61 */
export const STATIC_TABLE: readonly [string, string][] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export interface HeadersOptions {
  endStream?: boolean;
  /** pad length: PADDED flag, the byte, and that many zero bytes */
  padding?: number;
  /** PRIORITY flag with its 5 bytes */
  priority?: boolean;
  /** split the block into HEADERS + CONTINUATION frames of at most this many block bytes */
  fragment?: number;
}

/** HEADERS (+ CONTINUATION frames when `fragment` is smaller than the block). */
export function headers(streamId: number, block: Buffer, o: HeadersOptions = {}): Buffer {
  const size = o.fragment ?? Math.max(block.length, 1);
  const parts: Buffer[] = [];
  for (let i = 0; i < block.length || i === 0; i += size) parts.push(block.subarray(i, i + size));
  const out: Buffer[] = [];
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (i === 0) {
      let flags = (o.endStream ? Flag.EndStream : 0) | (last ? Flag.EndHeaders : 0);
      const pre: Buffer[] = [];
      if (o.padding !== undefined) {
        flags |= Flag.Padded;
        pre.push(Buffer.from([o.padding]));
      }
      if (o.priority) {
        flags |= Flag.Priority;
        pre.push(Buffer.from([0x80, 0, 0, 0, 15]));
      }
      const pad = Buffer.alloc(o.padding ?? 0);
      out.push(frame(FrameType.Headers, flags, streamId, Buffer.concat([...pre, part, pad])));
    } else {
      out.push(frame(FrameType.Continuation, last ? Flag.EndHeaders : 0, streamId, part));
    }
  });
  return Buffer.concat(out);
}

export function continuation(streamId: number, fragment: Buffer, endHeaders: boolean): Buffer {
  return frame(FrameType.Continuation, endHeaders ? Flag.EndHeaders : 0, streamId, fragment);
}

export function data(
  streamId: number,
  body: Buffer | string | number,
  o: { endStream?: boolean; padding?: number } = {},
): Buffer {
  const bytes = typeof body === 'number' ? Buffer.alloc(body, 'd') : Buffer.from(body);
  let flags = o.endStream ? Flag.EndStream : 0;
  if (o.padding === undefined) return frame(FrameType.Data, flags, streamId, bytes);
  flags |= Flag.Padded;
  return frame(
    FrameType.Data,
    flags,
    streamId,
    Buffer.concat([Buffer.from([o.padding]), bytes, Buffer.alloc(o.padding)]),
  );
}

export function settings(entries: [number, number][] = [], ack = false): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.Settings, ack ? Flag.Ack : 0, 0, payload);
}

export function settingsAck(): Buffer {
  return settings([], true);
}

export function rstStream(streamId: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FrameType.RstStream, 0, streamId, p);
}

export function goaway(lastStreamId: number, code: number, debug = ''): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(lastStreamId, 0);
  p.writeUInt32BE(code, 4);
  return frame(FrameType.Goaway, 0, 0, Buffer.concat([p, Buffer.from(debug)]));
}

export function ping(ack = false): Buffer {
  return frame(FrameType.Ping, ack ? Flag.Ack : 0, 0, Buffer.alloc(8, 7));
}

export function windowUpdate(streamId: number, increment: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(increment);
  return frame(FrameType.WindowUpdate, 0, streamId, p);
}

export function priorityFrame(streamId: number): Buffer {
  return frame(FrameType.Priority, 0, streamId, Buffer.from([0, 0, 0, 0, 16]));
}

export function pushPromise(streamId: number, promised: number, block: Buffer): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(promised);
  return frame(FrameType.PushPromise, Flag.EndHeaders, streamId, Buffer.concat([p, block]));
}

/** How a field is written: incremental indexing (the default), without indexing, never indexed. */
export type FieldMode = 'index' | 'plain' | 'never';
export type Field = [name: string, value: string, mode?: FieldMode];

function int(prefixBits: number, first: number, v: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (v < max) return [first | v];
  const out = [first | max];
  v -= max;
  while (v >= 128) {
    out.push(0x80 | (v & 0x7f));
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function str(s: string): number[] {
  const b = Buffer.from(s, 'latin1');
  return [...int(7, 0, b.length), ...b];
}

/** An HPACK encoder with its dynamic table, literals raw (no Huffman). */
export class HpackEncoder {
  private table: [string, string][] = [];
  private size = 0;
  private pendingUpdate: number | undefined;

  constructor(private maxSize = 4096) {}

  /** A dynamic table size update at the start of the next block (the peer allowed `size`). */
  resize(size: number): void {
    this.maxSize = size;
    this.pendingUpdate = size;
    this.evict();
  }

  get entries(): number {
    return this.table.length;
  }

  encode(fields: Field[]): Buffer {
    const out: number[] = [];
    if (this.pendingUpdate !== undefined) {
      out.push(...int(5, 0x20, this.pendingUpdate));
      this.pendingUpdate = undefined;
    }
    for (const [name, value, mode = 'index'] of fields) {
      const exact = this.find(name, value);
      if (exact > 0 && mode === 'index') {
        out.push(...int(7, 0x80, exact));
        continue;
      }
      const nameIndex = this.find(name);
      if (mode === 'index') {
        out.push(...int(6, 0x40, nameIndex));
      } else {
        out.push(...int(4, mode === 'never' ? 0x10 : 0x00, nameIndex));
      }
      if (nameIndex === 0) out.push(...str(name));
      out.push(...str(value));
      if (mode === 'index') this.add(name, value);
    }
    return Buffer.from(out);
  }

  /** 1-based HPACK index of the field (or of its name when value is undefined); 0 when absent. */
  private find(name: string, value?: string): number {
    const s = STATIC_TABLE.findIndex(([n, v]) => n === name && (value === undefined || v === value));
    if (s >= 0) return s + 1;
    const d = this.table.findIndex(([n, v]) => n === name && (value === undefined || v === value));
    return d >= 0 ? STATIC_TABLE.length + 1 + d : 0;
  }

  private add(name: string, value: string): void {
    const entry = name.length + value.length + 32;
    if (entry > this.maxSize) {
      this.table = [];
      this.size = 0;
      return;
    }
    this.table.unshift([name, value]);
    this.size += entry;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize && this.table.length > 0) {
      const [n, v] = this.table.pop()!;
      this.size -= n.length + v.length + 32;
    }
  }
}

/** Request fields as curl sends them over h2, plus extra ones. */
export function requestFields(
  method: string,
  path: string,
  extra: Field[] = [],
  authority = 'kong.test:8443',
  scheme = 'https',
): Field[] {
  return [[':method', method], [':path', path], [':scheme', scheme], [':authority', authority], ...extra];
}

/** Response fields as nginx writes them over h2 (never indexed status text, plain headers). */
export function responseFields(status: number, extra: Field[] = []): Field[] {
  return [[':status', String(status)], ...extra];
}
