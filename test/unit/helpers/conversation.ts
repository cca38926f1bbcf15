/**
 * Drives a RequestPipeline with records built byte for byte as BPF would send them (first
 * 8 KiB + last 16 bytes of each read/write), each passed through the real decoder.
 */
import { decodeBatch } from '../../../src/capture/decoder';
import { Direction, Op } from '../../../src/capture/records';
import { RequestPipeline, type PipelineOptions } from '../../../src/requests/pipeline';
import type { HttpExchange } from '../../../src/requests/types';
import { TEST_BASE_NS, batchOf, connCloseRecord, connOpenRecord, dataRecord } from './records';

export interface ConnSpec {
  direction: 'server' | 'client' | 'unknown';
  pid?: number;
  localPort?: number;
  peerPort?: number;
  /** skip the CONN_OPEN record (socket older than the agent) */
  noOpen?: boolean;
}

const DIR = { server: Direction.Server, client: Direction.Client, unknown: Direction.Unknown };

export class Conversation {
  nowNs = 0;
  readonly heads: HttpExchange[] = [];
  readonly done: HttpExchange[] = [];
  readonly pipeline: RequestPipeline;
  private readonly conns = new Map<number, { direction: number; pid: number }>();
  decodeFailures = 0;

  constructor(options: PipelineOptions = {}) {
    let seed = 7;
    this.pipeline = new RequestPipeline(
      { onRequestHead: (ex) => this.heads.push(ex), onExchange: (ex) => this.done.push(ex) },
      {
        random: (buf) => {
          for (let i = 0; i < buf.length; i++) buf[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
        },
        ...options,
      },
    );
  }

  feed(record: Buffer): void {
    const r = decodeBatch(batchOf([record]), TEST_BASE_NS, (rec) => this.pipeline.handle(rec));
    if (r.records !== 1) this.decodeFailures++;
  }

  private tick(at?: number): bigint {
    this.nowNs = at ?? this.nowNs + 1000;
    return TEST_BASE_NS + BigInt(this.nowNs);
  }

  open(connId: number, spec: ConnSpec, at?: number): void {
    const pid = spec.pid ?? 100;
    this.conns.set(connId, { direction: DIR[spec.direction], pid });
    if (spec.noOpen) return;
    this.feed(
      connOpenRecord({
        connId,
        pid,
        ktimeNs: this.tick(at),
        direction: DIR[spec.direction],
        localPort: spec.localPort ?? (spec.direction === 'client' ? 41000 + (connId % 1000) : 8000),
        peerPort: spec.peerPort ?? (spec.direction === 'client' ? 9000 : 50000 + (connId % 1000)),
      }),
    );
  }

  private io(op: number, connId: number, bytes: Buffer | string, at?: number, result?: number): number {
    const c = this.conns.get(connId)!;
    this.feed(dataRecord({ connId, pid: c.pid, ktimeNs: this.tick(at), op, direction: c.direction, bytes, result }));
    return this.nowNs;
  }

  read(connId: number, bytes: Buffer | string, at?: number): number {
    return this.io(Op.Read, connId, bytes, at);
  }

  write(connId: number, bytes: Buffer | string, at?: number): number {
    return this.io(Op.Write, connId, bytes, at);
  }

  /** A read/write with no payload: 0 = EOF, < 0 = -errno */
  result(op: 'read' | 'write', connId: number, result: number, at?: number): number {
    return this.io(op === 'read' ? Op.Read : Op.Write, connId, Buffer.alloc(0), at, result);
  }

  /** Kong closes the socket; peerState says whether the peer had shut or reset it first */
  close(connId: number, at?: number, peerState = 0): number {
    const c = this.conns.get(connId)!;
    this.feed(connCloseRecord({ connId, pid: c.pid, ktimeNs: this.tick(at), direction: c.direction, peerState }));
    return this.nowNs;
  }
}

export function request(method: string, target: string, headers: Record<string, string> = {}, body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: example.test'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body && !Object.keys(headers).some((k) => /transfer-encoding|content-length/i.test(k))) {
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

export function response(status: number, body = '', headers: Record<string, string> = {}): string {
  const lines = [`HTTP/1.1 ${status} X`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (!Object.keys(headers).some((k) => /transfer-encoding|content-length/i.test(k))) {
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** A chunked body of `total` bytes in chunks of `size`, with the terminator. */
export function chunkedBody(total: number, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let left = total; left > 0; left -= size) {
    const n = Math.min(size, left);
    parts.push(Buffer.from(`${n.toString(16)}\r\n`), Buffer.alloc(n, 'a'), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Splits bytes into pieces of `size` (the writes a server would make). */
export function split(bytes: Buffer | string, size: number): Buffer[] {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}
