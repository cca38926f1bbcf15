/**
 * Drives the native assembler (the addon's Assembler class) with records built byte for byte as
 * BPF sends them, one record per feed, and reads back every frame it produces. Times are ns
 * relative to TEST_BASE_NS; each record is 1000 ns after the previous one unless `at` says.
 */
import {
  createAssembler,
  type AssemblerOptions,
  type AssemblerStats,
  type NativeAssembler,
} from '../../../src/capture/native';
import { Direction, Op } from '../../../src/capture/records';
import { isProc, readFrames, type ExchangeView, type FrameView, type ProcView } from './frame-reader';
import {
  TEST_BASE_NS,
  batchOf,
  connCloseRecord,
  connOpenRecord,
  dataRecord,
  luaPhaseRecord,
  procRecord,
} from './records';

export interface ConnSpec {
  direction: 'server' | 'client' | 'unknown';
  pid?: number;
  localPort?: number;
  peerPort?: number;
  /** skip the CONN_OPEN record (socket older than the agent) */
  noOpen?: boolean;
}

export interface IoOptions {
  at?: number;
  /** bytes the kernel copies from the start (default 16384) */
  capture?: number;
  tailUnknown?: boolean;
  tls?: boolean;
}

const DIR = { server: Direction.Server, client: Direction.Client, unknown: Direction.Unknown };

export const DEFAULT_IGNORED_PORTS = [8001, 8444, 8002, 8445];

export class Conversation {
  nowNs = 0;
  readonly assembler: NativeAssembler;
  /** every frame, in the order the assembler wrote them */
  readonly frames: FrameView[] = [];
  private readonly conns = new Map<number, { direction: number; pid: number }>();

  constructor(options: AssemblerOptions = {}) {
    this.assembler = createAssembler({ ignoredLocalPorts: DEFAULT_IGNORED_PORTS, ...options });
  }

  /** exchange frames, in order */
  get done(): ExchangeView[] {
    return this.frames.filter((f): f is ExchangeView => !isProc(f));
  }

  get procs(): ProcView[] {
    return this.frames.filter(isProc);
  }

  server(): ExchangeView[] {
    return this.done.filter((e) => e.direction === 'server');
  }

  client(): ExchangeView[] {
    return this.done.filter((e) => e.direction === 'client');
  }

  stats(): AssemblerStats {
    return this.assembler.stats();
  }

  /** Feeds records as one batch; returns the frames it produced. */
  feed(...records: Buffer[]): FrameView[] {
    const frames = readFrames(this.assembler.feed(batchOf(records)));
    this.frames.push(...frames);
    return frames;
  }

  /** Feeds raw batch bytes (possibly malformed framing). */
  feedRaw(batch: Buffer): FrameView[] {
    const frames = readFrames(this.assembler.feed(batch));
    this.frames.push(...frames);
    return frames;
  }

  tick(at?: number): bigint {
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

  private io(op: number, connId: number, bytes: Buffer | string, o: IoOptions, result?: number): number {
    const c = this.conns.get(connId);
    if (!c) throw new Error(`connection ${connId} not opened in the test`);
    this.feed(
      dataRecord({
        connId,
        pid: c.pid,
        ktimeNs: this.tick(o.at),
        op,
        direction: c.direction,
        bytes,
        result,
        capture: o.capture,
        tailUnknown: o.tailUnknown,
        tls: o.tls,
      }),
    );
    return this.nowNs;
  }

  read(connId: number, bytes: Buffer | string, o: IoOptions | number = {}): number {
    return this.io(Op.Read, connId, bytes, typeof o === 'number' ? { at: o } : o);
  }

  write(connId: number, bytes: Buffer | string, o: IoOptions | number = {}): number {
    return this.io(Op.Write, connId, bytes, typeof o === 'number' ? { at: o } : o);
  }

  /** A read/write with no payload: 0 = EOF, < 0 = -errno */
  result(op: 'read' | 'write', connId: number, result: number, at?: number): number {
    return this.io(op === 'read' ? Op.Read : Op.Write, connId, Buffer.alloc(0), { at }, result);
  }

  /** Kong closes the socket; peerState says whether the peer had shut or reset it first */
  close(connId: number, at?: number, peerState = 0): number {
    const c = this.conns.get(connId)!;
    this.feed(connCloseRecord({ connId, pid: c.pid, ktimeNs: this.tick(at), direction: c.direction, peerState }));
    return this.nowNs;
  }

  lua(connId: number, phase: number, ns: number): void {
    const c = this.conns.get(connId)!;
    this.feed(
      luaPhaseRecord({
        connId,
        pid: c.pid,
        ktimeNs: this.tick(),
        requestPtr: 1n,
        phase,
        startNs: 1000n,
        endNs: 1000n + BigInt(ns),
      }),
    );
  }

  proc(pid: number, event: number, ppid = 0, comm = 'nginx'): number {
    this.feed(procRecord({ pid, ktimeNs: this.tick(), ppid, event, comm }));
    return this.nowNs;
  }

  flushIdle(nowNs: number): FrameView[] {
    const frames = readFrames(this.assembler.flushIdle(TEST_BASE_NS + BigInt(nowNs)));
    this.frames.push(...frames);
    return frames;
  }

  flushAll(nowNs: number): FrameView[] {
    const frames = readFrames(this.assembler.flushAll(TEST_BASE_NS + BigInt(nowNs)));
    this.frames.push(...frames);
    return frames;
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
