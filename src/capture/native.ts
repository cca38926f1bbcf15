/**
 * The native capture addon (native/, built by node-gyp): typed once, loaded in one place.
 * It loads the BPF programs, attaches them, drains the ring buffer off the JS thread and calls
 * onBatch once per batch of frames [u32 LE size][record] (see src/capture/decoder.ts).
 */
import * as path from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface CaptureOptions {
  /** ring buffer size: a power of two, at least a page; default 16 MiB */
  ringBufferBytes: number;
  /** payload bytes copied per read/write, <= 16384 (KW_MAX_CAPTURE) */
  captureBytes: number;
  /** ring fill above which BPF wakes the drain thread early; default 256 KiB */
  wakeupBytes: number;
  /** the drain thread's poll period; default 10 */
  pollIntervalMs: number;
  /** 'syscalls' (tracepoints, the default) or 'libc' (uprobes on libc, ~20x the cost per hit) */
  dataPath: 'syscalls' | 'libc';
  /** one call per batch; `batch` is owned by JS from then on */
  onBatch(batch: Buffer, count: number): void;
  onLog(level: LogLevel, message: string): void;
}

export interface CaptureStats {
  events: number;
  lost: number;
  hookHits: number;
  connOpened: number;
  connClosed: number;
  connMapFull: number;
  batches: number;
  ringUsedBytes: number;
  ringSizeBytes: number;
}

export interface UprobeSet {
  nginx?: boolean;
  lua?: boolean;
  libc?: boolean;
}

export interface AttachResult {
  /** "symbol@file", "symbol (return)@file" */
  attached: string[];
  /** "symbol: why" */
  missing: string[];
}

export interface NativeCapture {
  /** open, size the ring, load, attach the tracepoints, start the drain thread */
  start(): void;
  /** role: 1 = master, 2 = worker */
  addProcess(pid: number, role: 1 | 2): void;
  removeProcess(pid: number): void;
  /** throws only when nothing could be attached; missing symbols are reported */
  attachUprobes(pid: number, binaryPath: string, set: UprobeSet, libcPath?: string): AttachResult;
  detachUprobes(pid: number): void;
  stats(): CaptureStats;
  /**
   * Idempotent: detaches, drains the ring one last time, joins the thread, frees. Batches queued
   * before it returns still reach onBatch on the next turns of the event loop.
   */
  stop(): void;
}

interface NativeModule {
  Capture: new (options: CaptureOptions) => NativeCapture;
}

export const DEFAULT_CAPTURE_OPTIONS = {
  ringBufferBytes: 16 * 1024 * 1024,
  captureBytes: 16384,
  wakeupBytes: 256 * 1024,
  pollIntervalMs: 10,
  dataPath: 'syscalls',
} as const satisfies Partial<CaptureOptions>;

let loaded: NativeModule | undefined;

/** The places a built addon can be: from the source tree (tsx) and from dist/ (tsc output). */
function candidatePaths(): string[] {
  const name = path.join('build', 'Release', 'kong_watcher.node');
  return [
    path.resolve(__dirname, '..', '..', name),
    path.resolve(__dirname, '..', '..', '..', name),
    path.resolve(process.cwd(), name),
  ];
}

export function loadNative(): NativeModule {
  if (loaded) return loaded;
  const failures: string[] = [];
  for (const candidate of candidatePaths()) {
    try {
      loaded = require(candidate) as NativeModule;
      return loaded;
    } catch (err) {
      failures.push(`${candidate}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    `kong-watcher native addon not found or not loadable; build it with "npm run build:bpf && npm run build:native". Tried:\n  ${failures.join('\n  ')}`,
  );
}

/**
 * Callbacks run on the JS thread from native code: an exception there would become an
 * uncaught exception, so it is reported through onLog instead.
 */
export function createCapture(options: CaptureOptions): NativeCapture {
  const { onBatch, onLog } = options;
  const safeLog = (level: LogLevel, message: string): void => {
    try {
      onLog(level, message);
    } catch {
      // A failing logger has nowhere left to report to.
    }
  };
  const native = loadNative();
  return new native.Capture({
    ...options,
    onBatch: (batch: Buffer, count: number) => {
      try {
        onBatch(batch, count);
      } catch (err) {
        safeLog('error', `onBatch threw: ${(err as Error).stack ?? String(err)}`);
      }
    },
    onLog: safeLog,
  });
}
