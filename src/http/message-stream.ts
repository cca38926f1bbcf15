/**
 * Incremental HTTP/1.x message framing over one direction of a connection, from what BPF
 * copies per read/write: the total bytes moved, the first captured bytes and the last <= 16.
 * The middle of a large transfer is never seen, so bodies are skipped by counting, and a
 * chunked body whose framing falls into an unseen region ends where the stream's last bytes
 * are the terminating `0\r\n\r\n`. Bad input makes the stream give up, never throw.
 */
import {
  couldBeRequestStart,
  couldBeResponseStart,
  parseRequestHead,
  parseResponseHead,
  type BodyFraming,
  type HeadResult,
  type RequestHead,
  type ResponseHead,
} from './head';

export type MessageKind = 'request' | 'response';

/** Something that holds a read/write's last bytes (a DataRecord does). */
export interface TailSource {
  readonly tail: Buffer;
}

/** What a head handler may ask of the stream: another framing (HEAD requests), or to stop (101). */
export type HeadDecision = BodyFraming | 'stop' | void;

export interface MessageEvents<H> {
  /** A complete head; `firstByteNs` is the time of the read/write carrying its first byte. */
  head(head: H, firstByteNs: number): HeadDecision;
  /** The message's last byte, at the time of the read/write carrying it. */
  end(lastByteNs: number, bodySize: number): void;
  /** Bytes that are not HTTP/1.x: the stream is dead from now on. */
  error(reason: string): void;
  /** A head fell into bytes BPF did not copy: the current message cannot be followed. */
  lost(): void;
}

/**
 * The largest head followed (nginx accepts up to large_client_header_buffers, 4 x 8k by default,
 * Kong raises it). Only the first CAPTURE_BYTES of each read are copied from the kernel; the rest
 * of a bigger head is skipped by size, and its end recognised from the transfer's tail.
 */
export const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE = 4096;

const enum State {
  Idle, // between messages
  Head, // part of a head buffered
  Length, // Content-Length body
  Chunked, // chunked body, framing followed
  ChunkedLost, // chunked body, framing lost in an uncaptured region
  Close, // body until the connection closes
  Lost, // waiting for a read/write that starts with a message
  Stopped, // upgraded or not HTTP
}

const enum Chunk {
  Size,
  Ext,
  Data,
  DataEnd,
  Trailer,
}

const TERMINATOR = Buffer.from('\r\n0\r\n\r\n', 'latin1');

export class MessageStream<H extends RequestHead | ResponseHead> {
  private state = State.Idle;
  private pieces: Buffer[] = [];
  private buffered = 0;
  private headStartNs = 0;
  private remaining = 0;
  private bodySize = 0;
  private chunk = Chunk.Size;
  private chunkSize = 0;
  private chunkLine = 0;
  private trailerLineEmpty = true;
  private lastNs = 0;
  /** the stream's last bytes, whatever the message: where a lost chunked body's end is seen */
  private readonly recent = Buffer.alloc(16);
  private recentLen = 0;
  /** messages framed so far: the first one decides whether the bytes are HTTP at all */
  messages = 0;

  constructor(
    private readonly kind: MessageKind,
    private readonly events: MessageEvents<H>,
    private readonly maxHeadBytes = MAX_HEAD_BYTES,
  ) {}

  /** true while a message has begun and not ended */
  get inMessage(): boolean {
    return this.state !== State.Idle && this.state !== State.Lost && this.state !== State.Stopped;
  }

  get stopped(): boolean {
    return this.state === State.Stopped;
  }

  /** true while the current body lasts until the connection closes */
  get untilClose(): boolean {
    return this.state === State.Close;
  }

  stop(): void {
    this.state = State.Stopped;
    this.pieces = [];
  }

  /** One read/write of `result` > 0 bytes: `data` = its first bytes, `tail` = its last bytes. */
  feed(result: number, data: Buffer, tail: Buffer, timeNs: number): void {
    this.feedFrom(result, data, { tail }, timeNs);
  }

  /**
   * As feed, with the last bytes read from `source.tail` only when the first ones do not cover
   * the transfer: a capture record can hand itself over and make that view only when needed.
   */
  feedFrom(result: number, data: Buffer, source: TailSource, timeNs: number): void {
    if (this.state === State.Stopped || result <= 0) return;
    this.lastNs = timeNs;
    const dataLen = Math.min(data.length, result);
    let p = 0;
    while (p < result) {
      // events may stop the stream while this loop runs
      switch (this.state as State) {
        case State.Stopped:
          this.remember(result, data, source);
          return;
        case State.Lost:
          if (p === 0 && dataLen > 0 && this.couldStart(data, 0, dataLen)) {
            this.state = State.Idle;
            continue;
          }
          this.remember(result, data, source);
          return;
        case State.Idle:
        case State.Head: {
          if (this.state === State.Idle) {
            // Empty lines between messages are allowed (RFC 9112 2.2).
            while (p < dataLen && (data[p] === 0x0d || data[p] === 0x0a)) p++;
            if (p >= result) break;
          }
          const next = this.head(p, result, data, dataLen, source, timeNs);
          if (next < 0) {
            this.remember(result, data, source);
            return;
          }
          p = next;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, result - p);
          p += n;
          this.remaining -= n;
          this.bodySize += n;
          if (this.remaining === 0) this.finish(timeNs);
          break;
        }
        case State.Chunked:
          p = this.chunked(p, result, data, dataLen, source, timeNs);
          break;
        case State.ChunkedLost:
        case State.Close:
          this.bodySize += result - p;
          p = result;
          break;
      }
    }
    this.remember(result, data, source);
    if (this.state === State.ChunkedLost && this.endsWithTerminator()) this.finish(timeNs);
  }

  /** The connection is gone: a body delimited by the close ends at the last byte written. */
  close(): boolean {
    if (this.state === State.Close) {
      this.finish(this.lastNs);
      return true;
    }
    return false;
  }

  private couldStart(bytes: Buffer, start: number, end: number): boolean {
    return this.kind === 'request' ? couldBeRequestStart(bytes, start, end) : couldBeResponseStart(bytes, start, end);
  }

  /** Parses head bytes at `p`; returns where the body starts, or -1 when the rest of the feed is spent. */
  private head(p: number, result: number, data: Buffer, dataLen: number, source: TailSource, timeNs: number): number {
    if (p >= dataLen) return this.loseHead(); // the head lies in bytes that were not copied
    if (this.state === State.Idle) {
      this.headStartNs = timeNs;
      if (!this.couldStart(data, p, Math.min(dataLen, p + 24))) return this.fail('not_http');
    }
    const split = this.buffered > 0;
    const bytes = split ? Buffer.concat([...this.pieces, data.subarray(p, dataLen)]) : data;
    const start = split ? 0 : p;
    const to = split ? bytes.length : dataLen;
    const end = findHeadEnd(bytes, split ? Math.max(0, this.buffered - 3) : p, to);
    if (end < 0) {
      if (to - start >= this.maxHeadBytes) return this.fail('head_too_large');
      if (dataLen < result) {
        // Part of this transfer was not copied. When it ends the head, what was copied still
        // holds the start line and the first headers: parse those, skip the rest by size.
        if (!endsWithBlankLine(source.tail)) return this.loseHead();
        return this.truncatedHead(bytes, start, to, this.buffered + (result - p), result, timeNs);
      }
      // The head goes on in the next read/write: keep a copy, the data is a view of the batch.
      this.pieces.push(Buffer.from(data.subarray(p, dataLen)));
      this.buffered += dataLen - p;
      this.state = State.Head;
      return -1;
    }
    const headSize = end - start;
    if (headSize > this.maxHeadBytes) return this.fail('head_too_large');
    const consumedHere = headSize - this.buffered;
    return this.completeHead(bytes.toString('latin1', start, end), headSize, p + consumedHere, timeNs);
  }

  private truncatedHead(
    bytes: Buffer,
    start: number,
    to: number,
    headSize: number,
    result: number,
    timeNs: number,
  ): number {
    if (headSize > this.maxHeadBytes) return this.fail('head_too_large');
    const lastLineEnd = bytes.lastIndexOf('\r\n', to - 2, 'latin1');
    if (lastLineEnd < start) return this.loseHead();
    const text = bytes.toString('latin1', start, lastLineEnd + 2) + '\r\n';
    return this.completeHead(text, headSize, result, timeNs);
  }

  private completeHead(text: string, headSize: number, next: number, timeNs: number): number {
    if (this.buffered > 0) {
      this.pieces = [];
      this.buffered = 0;
    }
    const parsed = (
      this.kind === 'request' ? parseRequestHead(text, headSize) : parseResponseHead(text, headSize)
    ) as HeadResult<H>;
    if ('error' in parsed) return this.fail(parsed.error);
    this.messages++;
    const decision = this.events.head(parsed, this.headStartNs);
    if (decision === 'stop') {
      this.stop();
      return -1;
    }
    this.startBody(decision ?? parsed.framing, timeNs);
    return next;
  }

  private startBody(framing: BodyFraming, timeNs: number): void {
    this.bodySize = 0;
    switch (framing.kind) {
      case 'none':
        this.finish(timeNs);
        return;
      case 'length':
        this.state = State.Length;
        this.remaining = framing.length;
        return;
      case 'chunked':
        this.state = State.Chunked;
        this.chunk = Chunk.Size;
        this.chunkSize = 0;
        this.chunkLine = 0;
        return;
      case 'close':
        this.state = State.Close;
        return;
    }
  }

  private chunked(
    p: number,
    result: number,
    data: Buffer,
    dataLen: number,
    source: TailSource,
    timeNs: number,
  ): number {
    let tail: Buffer | undefined;
    while (p < result && this.state === State.Chunked) {
      if (this.chunk === Chunk.Data) {
        const n = Math.min(this.chunkSize, result - p);
        p += n;
        this.bodySize += n;
        this.chunkSize -= n;
        if (this.chunkSize === 0) this.chunk = Chunk.DataEnd;
        continue;
      }
      let c: number;
      if (p < dataLen) c = data[p];
      else if (p >= result - (tail ??= source.tail).length) c = tail[p - (result - tail.length)];
      else {
        // Framing bytes that were not copied: from here on only the terminator can end the body.
        this.state = State.ChunkedLost;
        return p;
      }
      p++;
      this.bodySize++;
      if (++this.chunkLine > MAX_CHUNK_LINE) {
        this.fail('bad_chunk');
        return result;
      }
      switch (this.chunk) {
        case Chunk.Size: {
          const digit = hexValue(c);
          if (digit >= 0) {
            if (this.chunkSize > 0x7fffffffff) {
              this.fail('bad_chunk');
              return result;
            }
            this.chunkSize = this.chunkSize * 16 + digit;
            break;
          }
          if (this.chunkLine === 1) {
            this.fail('bad_chunk');
            return result;
          }
          if (c === 0x0a) this.sizeLineDone();
          else this.chunk = Chunk.Ext;
          break;
        }
        case Chunk.Ext:
          if (c === 0x0a) this.sizeLineDone();
          break;
        case Chunk.DataEnd:
          if (c === 0x0a) {
            this.chunk = Chunk.Size;
            this.chunkLine = 0;
            this.chunkSize = 0;
          } else if (c !== 0x0d) {
            this.fail('bad_chunk');
            return result;
          }
          break;
        case Chunk.Trailer:
          if (c === 0x0a) {
            if (this.trailerLineEmpty) {
              this.finish(timeNs);
              return p;
            }
            this.trailerLineEmpty = true;
            this.chunkLine = 0;
          } else if (c !== 0x0d) {
            this.trailerLineEmpty = false;
          }
          break;
      }
    }
    return p;
  }

  private sizeLineDone(): void {
    this.chunkLine = 0;
    if (this.chunkSize === 0) {
      this.chunk = Chunk.Trailer;
      this.trailerLineEmpty = true;
    } else {
      this.chunk = Chunk.Data;
    }
  }

  private finish(timeNs: number): void {
    this.state = State.Idle;
    const size = this.bodySize;
    this.bodySize = 0;
    this.events.end(timeNs, size);
  }

  private fail(reason: string): number {
    this.stop();
    this.events.error(reason);
    return -1;
  }

  private loseHead(): number {
    if (this.buffered > 0) this.pieces = [];
    this.buffered = 0;
    this.state = State.Lost;
    this.events.lost();
    return -1;
  }

  /**
   * Keeps the last 16 bytes the stream moved, from whichever part of the record holds them.
   * Only a lost chunked body looks at them, and the read/write that loses the framing has an
   * uncaptured middle, so bytes from before it never count: nothing to keep in other states.
   */
  private remember(result: number, data: Buffer, source: TailSource): void {
    if (this.state !== State.ChunkedLost) return;
    // The kernel sends a tail only when the head capture did not reach the end of the transfer.
    const whole = data.length >= result;
    const bytes = whole ? data : source.tail;
    const n = whole ? result : bytes.length;
    if (n >= 16) {
      bytes.copy(this.recent, 0, n - 16, n);
      this.recentLen = 16;
      return;
    }
    // Bytes from before this transfer are only adjacent when the whole transfer is known.
    const keep = n === result ? Math.min(this.recentLen, 16 - n) : 0;
    this.recent.copy(this.recent, 0, this.recentLen - keep, this.recentLen);
    bytes.copy(this.recent, keep, 0, n);
    this.recentLen = keep + n;
  }

  private endsWithTerminator(): boolean {
    const n = this.recentLen;
    if (n < TERMINATOR.length) {
      // "0\r\n\r\n" alone: an empty chunked body that began in an unseen region.
      return n === 5 && this.recent.toString('latin1', 0, 5) === '0\r\n\r\n';
    }
    return this.recent.compare(TERMINATOR, 0, TERMINATOR.length, n - TERMINATOR.length, n) === 0;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Index just after the blank line ending a head in bytes[from, to), or -1. Bare LF is accepted. */
export function findHeadEnd(bytes: Buffer, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const lf = bytes.indexOf(0x0a, i);
    if (lf < 0 || lf >= to) return -1;
    if (lf + 1 < to && bytes[lf + 1] === 0x0a) return lf + 2;
    if (lf + 2 < to && bytes[lf + 1] === 0x0d && bytes[lf + 2] === 0x0a) return lf + 3;
    i = lf + 1;
  }
  return -1;
}

function endsWithBlankLine(tail: Buffer): boolean {
  const n = tail.length;
  return n >= 4 && tail[n - 4] === 0x0d && tail[n - 3] === 0x0a && tail[n - 2] === 0x0d && tail[n - 1] === 0x0a;
}
