/**
 * The native addon (native/, built by node-gyp): typed once, loaded in one place.
 *
 * Capture loads the BPF programs, attaches them and drains the ring buffer on its own thread,
 * where the native assembler turns kernel records into finished exchanges; JS receives one
 * Buffer per batch of frames laid out as native/kw_exchange.h says (src/capture/exchange-layout.ts).
 * Assembler is the same assembler driven synchronously, for tests and recorded streams.
 */
import * as path from 'node:path';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface AssemblerOptions {
  /** local ports of accepted sockets whose traffic is not reported (Admin API, Manager) */
  ignoredLocalPorts?: number[];
  maxConnections?: number;
  /** requests kept per connection awaiting their answer; beyond, counted but not reported */
  maxPendingPerConnection?: number;
  pendingTimeoutNs?: number;
  idleConnectionNs?: number;
}

export interface CaptureOptions extends AssemblerOptions {
  /** ring buffer size: a power of two, at least a page */
  ringBufferBytes: number;
  /** payload bytes copied per read/write, <= 16384 (KW_MAX_CAPTURE) */
  captureBytes: number;
  /** ring fill above which BPF wakes the drain thread early */
  wakeupBytes: number;
  /** the drain thread's poll period */
  pollIntervalMs: number;
  /** 'syscalls' (tracepoints, the default) or 'libc' (uprobes on libc, ~20x the cost per hit) */
  dataPath: 'syscalls' | 'libc';
  /** a process that execs a binary of this name is reported at once (PROC frame), e.g. "nginx"; at most 15 bytes (a comm), '' for none */
  execComm: string;
  /** no BPF at all: records come from inject() (benchmarks, tests of the threaded path) */
  replay?: boolean;
  /** one call per batch of frames; `batch` is owned by JS from then on */
  onBatch(batch: Buffer, frames: number): void;
  /** libbpf's own messages start with "libbpf: ", the addon's never do: log them as they are */
  onLog(level: LogLevel, message: string): void;
}

export interface AssemblerStats {
  records: number;
  malformedRecords: number;
  exchanges: number;
  serverExchanges: number;
  clientExchanges: number;
  connections: number;
  inFlight: number;
  evicted: number;
  ignored: number;
  notHttp: number;
  protocolErrors: number;
  skippedBytes: number;
  lostHeads: number;
  orphanResponses: number;
  droppedRequests: number;
  unmatchedAttempts: number;
  processExits: number;
  /** connections followed as HTTP/2 (h2 over TLS, h2c, grpc_pass) */
  http2Connections: number;
  /** HTTP/2 connections (or directions) whose HPACK table history is unknown: headers that refer to it are missing */
  hpackLost: number;
  /** SERVER requests in flight, index = Method * 2 + (TLS ? 1 : 0) */
  activeServer: number[];
}

export interface CaptureStats {
  /** records the kernel wrote to the ring buffer (kernel counters and ring figures are 0 in replay mode) */
  events: number;
  /** records the ring buffer had no room for */
  lost: number;
  connOpened: number;
  connClosed: number;
  connMapFull: number;
  forksFollowed: number;
  /** SSL objects used with no SSL_set_fd seen (TLS connections older than the uprobes): not reported */
  tlsUnlinked: number;
  /** batches handed to onBatch */
  batches: number;
  ringUsedBytes: number;
  ringSizeBytes: number;
  /** as of the drain thread's last pass */
  assembler: AssemblerStats;
}

export interface UprobeSet {
  lua?: boolean;
  libc?: boolean;
  /**
   * the plaintext of TLS connections: nginx's ngx_ssl_recv and ngx_ssl_write when the binary has
   * both, else OpenSSL's SSL_set_fd, SSL_read[_ex] and SSL_write[_ex]
   */
  tls?: boolean;
  /** OpenSSL's calls even when nginx's are there */
  tlsOpenSsl?: boolean;
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
  /** follow this pid (and, in the kernel, every child it forks from now on) */
  addProcess(pid: number): void;
  /** stop following it and drop what the kernel keeps for it */
  removeProcess(pid: number): void;
  /**
   * throws only when nothing could be attached; missing symbols are reported. sslPath, for
   * OpenSSL's calls: the libssl the process maps, or its binary when OpenSSL is linked in
   * (default: looked up in /proc/<pid>/maps)
   */
  attachUprobes(pid: number, binaryPath: string, set: UprobeSet, libcPath?: string, sslPath?: string): AttachResult;
  detachUprobes(pid: number): void;
  /** replay mode only: records framed [u32 LE size][record], as the ring buffer holds them */
  inject(records: Buffer): void;
  stats(): CaptureStats;
  /**
   * Idempotent: detaches, drains the ring one last time, reports what is unfinished
   * (KW_ERR_AGENT_STOPPED), joins the thread, frees. `done` runs after the last batch has
   * reached onBatch.
   */
  stop(done?: () => void): void;
}

/** The assembler alone, synchronous: each call returns the frames it produced (maybe empty). */
export interface NativeAssembler {
  feed(records: Buffer): Buffer;
  flushIdle(nowNs: bigint): Buffer;
  flushAll(nowNs: bigint): Buffer;
  stats(): AssemblerStats;
}

interface NativeModule {
  Capture: new (options: CaptureOptions) => NativeCapture;
  Assembler: new (options?: AssemblerOptions) => NativeAssembler;
}

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
    onBatch: (batch: Buffer, frames: number) => {
      try {
        onBatch(batch, frames);
      } catch (err) {
        safeLog('error', `onBatch threw: ${(err as Error).stack ?? String(err)}`);
      }
    },
    onLog: safeLog,
  });
}

export function createAssembler(options: AssemblerOptions = {}): NativeAssembler {
  return new (loadNative().Assembler)(options);
}
