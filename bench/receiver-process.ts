/**
 * The loopback OTLP gRPC receiver (test/fixture/otlp-receiver.ts) in its own process, pinned to
 * a CPU of the bench's choice, so its work is not charged to the process being measured.
 * Counts spans without decoding them (decode: false), as a collector under load would ingest.
 * Run as a child via startReceiverProcess(); it answers "count" messages over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface ReceiverCounts {
  spans: number;
  traceRequests: number;
  metricRequests: number;
}

export interface ReceiverProcess {
  port: number;
  pid: number;
  counts(): Promise<ReceiverCounts>;
  stop(): Promise<void>;
}

type Message = { kind: 'ready'; port: number } | ({ kind: 'counts'; id: number } & ReceiverCounts);

/**
 * Always the TypeScript source under tsx: the receiver's protos sit beside its source, and a
 * compiled copy of the bench (bench/out/dist) has no protos.
 */
function sourceFile(): string {
  return __filename.endsWith('.ts')
    ? __filename
    : path.resolve(__dirname, '..', '..', '..', '..', 'bench', 'receiver-process.ts');
}

/** `port`: listen there (a receiver started again after a stop, as a collector that restarts); default any free port */
export function startReceiverProcess(cpu: string, port = 0): Promise<ReceiverProcess> {
  const child: ChildProcess = fork(sourceFile(), ['--serve', String(port)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, (c: ReceiverCounts) => void>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`OTLP receiver exited with ${code} before it listened`)));
    child.on('message', (m: Message) => {
      if (m.kind === 'counts') {
        pending.get(m.id)?.({ spans: m.spans, traceRequests: m.traceRequests, metricRequests: m.metricRequests });
        pending.delete(m.id);
        return;
      }
      require('node:child_process').execFileSync('taskset', ['-a', '-p', '-c', cpu, String(child.pid)], {
        stdio: 'ignore',
      });
      resolve({
        port: m.port,
        pid: child.pid ?? -1,
        counts: () =>
          new Promise((res) => {
            const id = nextId++;
            pending.set(id, res);
            child.send({ kind: 'count', id });
          }),
        async stop() {
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}

async function serve(): Promise<void> {
  // Loaded here only: the parent never needs gRPC.
  const { startOtlpReceiver } =
    require('../test/fixture/otlp-receiver') as typeof import('../test/fixture/otlp-receiver');
  const receiver = await startOtlpReceiver({
    decode: false,
    port: Number(process.argv[process.argv.indexOf('--serve') + 1]),
  });
  process.on('message', (m: { kind: string; id: number }) => {
    if (m.kind !== 'count') return;
    process.send!({
      kind: 'counts',
      id: m.id,
      spans: receiver.spanCount(),
      traceRequests: receiver.traceRequests(),
      metricRequests: receiver.metricRequests(),
    });
  });
  // The IPC channel closes when the parent dies, however it dies: never outlive it.
  process.once('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => {
    void receiver.stop().finally(() => process.exit(0));
  });
  process.send!({ kind: 'ready', port: receiver.port });
}

if (process.argv.includes('--serve') && require.main === module) void serve();
