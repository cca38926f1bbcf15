/**
 * Pipeline microbenchmark: the agent's user-space path without the kernel. Synthetic ring-buffer
 * records, byte for byte as BPF writes them (src/capture/records.ts layouts; 4 DATA records per
 * proxied request: client request read, upstream request written, upstream response read,
 * response written, over keep-alive connections), are injected into the real native capture in
 * replay mode, so that they take the agent's own path: the drain thread's native assembly,
 * batches to JS, decode, enrichment, metrics and spans, and the OTLP gRPC exporter into a
 * loopback receiver in its own process on CPU 1. This process (the agent, as src/agent.ts wires
 * it) runs on CPU 0. Offered rates step up until spans are dropped.
 *
 * Run alone: `node --import tsx bench/pipeline.ts` (BENCH_PIPELINE_SECONDS per step, default 5;
 * BENCH_PIPELINE_RATES, req/s, comma separated). Prints progress on stderr and one
 * PIPELINE_RESULT JSON line on stdout.
 *
 * BENCH_TRACE_EXPORTER=package runs the trace export through @opentelemetry/exporter-trace-otlp-grpc
 * (our spans seen as ReadableSpans, src/otel/readable-span.ts) instead of the agent's own encoder
 * and gRPC client (`own`, the default): the A/B behind the README's choice of exporter. Measure it
 * compiled, as the agent runs: `npx tsc -p tsconfig.json --outDir bench/out/dist && node
 * bench/out/dist/bench/pipeline.js`.
 */
import { execFileSync } from 'node:child_process';
import { Agent } from '../src/agent';
import { decodeBatch } from '../src/capture/batch-decoder';
import { createAssembler, createCapture, type NativeCapture } from '../src/capture/native';
import {
  CONN_OPEN,
  DATA,
  DATA_HEAD_SIZE,
  Direction,
  EventType,
  HEADER,
  Op,
  Source,
  TAIL_LEN,
} from '../src/capture/records';
import { createClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { Enricher } from '../src/enrich/enricher';
import { createRedactor } from '../src/enrich/redact';
import { Sampler } from '../src/enrich/sampler';
import { Logger } from '../src/log';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { loadTelemetryConfig } from '../src/otel/config';
import { SdkSpanSink } from '../src/otel/readable-span';
import { buildResource } from '../src/otel/resource';
import { SCOPE } from '../src/otel/scope';
import { createTelemetry, grpcOptions } from '../src/otel/telemetry';
import { memory } from './proc-stats';
import { startReceiverProcess } from './receiver-process';
import type { PipelineResult } from './report';

const CONNECTIONS = 32;
const PID = 4242;
const TICK_MS = 10;
const PROXY_PORT = 8000;
const UPSTREAM_PORT = 9000;

const REQUEST = 'GET /api/bench HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk/4.1.0\r\nAccept: */*\r\n\r\n';
const UPSTREAM_REQUEST =
  'GET /api/bench HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n' +
  'X-Forwarded-Host: 127.0.0.1\r\nX-Forwarded-Port: 8000\r\nX-Real-IP: 127.0.0.1\r\nUser-Agent: wrk/4.1.0\r\nAccept: */*\r\n\r\n';
const BODY = '{"method":"GET","path":"/api/bench","bodyBytes":0}';
const UPSTREAM_RESPONSE =
  'HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 24 Nov 2026 12:00:00 GMT\r\nContent-Type: application/json\r\n' +
  `Content-Length: ${BODY.length}\r\nConnection: keep-alive\r\n\r\n${BODY}`;
const RESPONSE =
  'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' +
  `Content-Length: ${BODY.length}\r\nConnection: keep-alive\r\nDate: Tue, 24 Nov 2026 12:00:00 GMT\r\n` +
  `Via: kong/3.4.2\r\nX-Kong-Upstream-Latency: 1\r\nX-Kong-Proxy-Latency: 0\r\n\r\n${BODY}`;

function header(b: Buffer, type: number): void {
  b[HEADER.fields.type.offset] = type;
  b.writeUInt32LE(PID, HEADER.fields.pid.offset);
}

function connOpen(connId: number, fd: number, direction: number, localPort: number, peerPort: number): Buffer {
  const b = Buffer.alloc(CONN_OPEN.size);
  const f = CONN_OPEN.fields;
  header(b, EventType.ConnOpen);
  b.writeBigUInt64LE(BigInt(connId), f.conn_id.offset);
  b.writeUInt32LE(fd, f.fd.offset);
  b[f.direction.offset] = direction;
  b[f.family.offset] = 2;
  b.writeUInt16LE(localPort, f.local_port.offset);
  b.writeUInt16LE(peerPort, f.peer_port.offset);
  Buffer.from([127, 0, 0, 1]).copy(b, f.local_addr.offset);
  Buffer.from([127, 0, 0, 1]).copy(b, f.peer_addr.offset);
  return b;
}

function data(connId: number, fd: number, op: number, direction: number, text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  const tailLen = Math.min(bytes.length, TAIL_LEN);
  const b = Buffer.alloc(DATA_HEAD_SIZE + bytes.length);
  const f = DATA.fields;
  header(b, EventType.Data);
  b.writeBigUInt64LE(BigInt(connId), f.conn_id.offset);
  b.writeBigInt64LE(BigInt(bytes.length), f.result.offset);
  b.writeUInt32LE(fd, f.fd.offset);
  b[f.op.offset] = op;
  b[f.direction.offset] = direction;
  b[f.source.offset] = op === Op.Read ? Source.Recvfrom : Source.Writev;
  b.writeUInt16LE(bytes.length, f.captured_len.offset);
  b.writeUInt16LE(tailLen, f.tail_len.offset);
  bytes.copy(b, f.tail.offset, bytes.length - tailLen);
  bytes.copy(b, f.data.offset);
  return b;
}

/** Frames of a native batch: [u32 LE size][record]; remembers where each timestamp is. */
export class BatchTemplate {
  readonly buffer: Buffer;
  /** byte offset of each request's first frame, plus the end */
  readonly requestStarts: number[] = [];
  readonly timestampOffsets: number[] = [];
  readonly recordsPerRequest = 4;

  constructor(maxRequests: number) {
    const frames: Buffer[] = [];
    let at = 0;
    const push = (record: Buffer): void => {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(record.length);
      frames.push(len, record);
      this.timestampOffsets.push(at + 4 + HEADER.fields.timestamp_ns.offset);
      at += 4 + record.length;
    };
    for (let i = 0; i < maxRequests; i++) {
      this.requestStarts.push(at);
      const c = i % CONNECTIONS;
      const server = 1 + c;
      const client = 1001 + c;
      push(data(server, 100 + c, Op.Read, Direction.Server, REQUEST));
      push(data(client, 200 + c, Op.Write, Direction.Client, UPSTREAM_REQUEST));
      push(data(client, 200 + c, Op.Read, Direction.Client, UPSTREAM_RESPONSE));
      push(data(server, 100 + c, Op.Write, Direction.Server, RESPONSE));
    }
    this.requestStarts.push(at);
    this.buffer = Buffer.concat(frames);
  }

  /** A fresh batch of `n` requests (the addon hands JS a new Buffer each time), stamped from `nowNs`. */
  batch(n: number, nowNs: bigint): Buffer {
    const out = Buffer.from(this.buffer.subarray(0, this.requestStarts[n]));
    const records = n * this.recordsPerRequest;
    // 2 µs between records, ending now: ordered and plausible. Written as two u32 halves from
    // plain numbers so that stamping costs the bench little next to what it measures.
    const first = nowNs - BigInt(records * 2000);
    const hi = Number(first >> 32n);
    const lo = Number(first & 0xffffffffn);
    for (let i = 0; i < records; i++) {
      const low = lo + i * 2000;
      const at = this.timestampOffsets[i];
      out.writeUInt32LE(low % 0x100000000, at);
      out.writeUInt32LE(hi + Math.floor(low / 0x100000000), at + 4);
    }
    return out;
  }

  opens(nowNs: bigint): Buffer {
    const frames: Buffer[] = [];
    for (let c = 0; c < CONNECTIONS; c++) {
      for (const rec of [
        connOpen(1 + c, 100 + c, Direction.Server, PROXY_PORT, 40000 + c),
        connOpen(1001 + c, 200 + c, Direction.Client, 50000 + c, UPSTREAM_PORT),
      ]) {
        rec.writeBigUInt64LE(nowNs, HEADER.fields.timestamp_ns.offset);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(rec.length);
        frames.push(len, rec);
      }
    }
    return Buffer.concat(frames);
  }
}

/**
 * Where the time goes, stage by stage, on the JS thread with nothing exported: stamping the
 * synthetic records (the bench's own cost), native assembly (the Assembler binding, the code the
 * drain thread runs), then decode + enrichment + metrics, then spans built and queued.
 */
function stageCosts(template: BatchTemplate): Record<string, number> {
  const requests = 1000;
  const reps = 60;
  const clock = createClock();
  const quiet = { info() {}, debug() {}, warn() {}, error() {} };
  const discard = {
    export: (_s: unknown[], done: (r: { code: number }) => void) => done({ code: 0 }),
    shutdown: async () => undefined,
  };
  const stages = (spans: boolean) => {
    const telemetry = createTelemetry(
      {
        OTEL_TRACES_EXPORTER: spans ? 'otlp' : 'none',
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_METRICS_EXPORTER: 'none',
      },
      clock,
      quiet,
      spans ? { spanExporter: discard } : {},
    );
    const enricher = new Enricher(telemetry, {
      redactor: createRedactor(),
      sampler: spans ? new Sampler('always_on', 1) : undefined,
    });
    const sink = { exchange: (ex: Parameters<Enricher['push']>[0]) => enricher.push(ex), proc: () => undefined };
    return { telemetry, enricher, sink };
  };
  const assembler = createAssembler();
  const metrics = stages(false);
  const spans = stages(true);
  assembler.feed(template.opens(process.hrtime.bigint()));
  // The best of three: garbage collection lands in one stage or another, not in all three tries.
  const timeIt = (visit: (records: Buffer) => void): number => {
    for (let i = 0; i < reps / 3; i++) visit(template.batch(requests, process.hrtime.bigint()));
    let best = Infinity;
    for (let t = 0; t < 3; t++) {
      const start = process.cpuUsage();
      for (let i = 0; i < reps; i++) visit(template.batch(requests, process.hrtime.bigint()));
      const used = process.cpuUsage(start);
      best = Math.min(best, (used.user + used.system) / (reps * requests));
    }
    return best;
  };
  const through = (s: ReturnType<typeof stages>) => (records: Buffer) => {
    decodeBatch(assembler.feed(records), clock.baseNs, s.sink);
    s.enricher.endBatch();
  };
  const stamp = timeIt(() => undefined);
  const assembly = timeIt((b) => assembler.feed(b));
  const withMetrics = timeIt(through(metrics));
  const withSpans = timeIt(through(spans));
  void metrics.telemetry.shutdown(100);
  void spans.telemetry.shutdown(100);
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return {
    stamp: r2(stamp),
    nativeAssembly: r2(assembly - stamp),
    decodeEnrichMetrics: r2(withMetrics - assembly),
    spans: r2(withSpans - withMetrics),
    total: r2(withSpans - stamp),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function progress(message: string): void {
  process.stderr.write(`[bench:pipeline] ${message}\n`);
}

/** BENCH_TRACE_EXPORTER=package: the package's gRPC trace exporter over the agent's spans. */
function packageTraceExporter(env: Record<string, string>): SdkSpanSink {
  const { config } = loadTelemetryConfig(env);
  const resource = buildResource(env, config.serviceName, config.resourceAttributes);
  return new SdkSpanSink(
    new OTLPTraceExporter(grpcOptions(config.traces, config.queue.maxConcurrentExports)),
    resource,
    SCOPE,
  );
}

/** The agent as the command wires it, with a capture in replay mode that this bench feeds. */
async function startReplayAgent(endpoint: string): Promise<{ agent: Agent; capture: () => NativeCapture }> {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_METRIC_EXPORT_INTERVAL: '1000',
    LOG_REQUESTS: 'false',
    STATS_INTERVAL: '0',
    HEALTH_PORT: '0',
    KONG_PREFIX: '/nonexistent/kong',
  };
  const log = new Logger({ level: 'warn', json: true, write: (chunk) => process.stderr.write(chunk) });
  let capture: NativeCapture | undefined;
  const traceExporter = process.env.BENCH_TRACE_EXPORTER ?? 'own';
  if (traceExporter !== 'own' && traceExporter !== 'package') throw new Error('BENCH_TRACE_EXPORTER: own or package');
  progress(`trace exporter: ${traceExporter}`);
  const agent = new Agent(loadConfig(env), log, {
    env,
    createCapture: (options) => (capture = createCapture({ ...options, replay: true })),
    telemetry: traceExporter === 'package' ? { spanExporter: packageTraceExporter(env) } : undefined,
  });
  await agent.start();
  return { agent, capture: () => capture! };
}

async function main(): Promise<void> {
  execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const seconds = Number(process.env.BENCH_PIPELINE_SECONDS ?? '5');
  const rates = (process.env.BENCH_PIPELINE_RATES ?? '10000,25000,50000,75000,100000,125000')
    .split(',')
    .map((s) => Number(s.trim()));
  const receiver = await startReceiverProcess('1');
  const { agent, capture } = await startReplayAgent(`http://127.0.0.1:${receiver.port}`);
  const maxPerTick = Math.ceil((Math.max(...rates) * TICK_MS) / 1000) * 4;
  // At least the 1000 requests per batch the stage costs use.
  const template = new BatchTemplate(Math.max(maxPerTick, 1000));
  capture().inject(template.opens(process.hrtime.bigint()));

  const result: PipelineResult = {
    steps: [],
    sustainedSpansPerSecond: 0,
    rssPeakBytes: 0,
    recordsPerRequest: template.recordsPerRequest,
  };
  const telemetry = () => agent.telemetryStats()!;
  const exchanges = () => {
    const t = agent.requestTotals()!;
    return t.requests + t.upstreamAttempts;
  };
  for (const rate of rates) {
    const before = telemetry();
    const exchangesBefore = exchanges();
    const receivedBefore = (await receiver.counts()).spans;
    const cpuBefore = process.cpuUsage();
    const t0 = Date.now();
    let fed = 0;
    let rssPeak = 0;
    while (Date.now() - t0 < seconds * 1000) {
      const due = Math.floor(((Date.now() - t0) / 1000) * rate) - fed;
      for (let left = due; left > 0;) {
        const n = Math.min(left, maxPerTick);
        capture().inject(template.batch(n, process.hrtime.bigint()));
        fed += n;
        left -= n;
      }
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
      await sleep(TICK_MS);
    }
    const feedSeconds = (Date.now() - t0) / 1000;
    // Drained: every request assembled into spans, every span exported or dropped, and received.
    const drainDeadline = Date.now() + 15_000;
    let received = 0;
    for (;;) {
      const s = telemetry();
      received = (await receiver.counts()).spans - receivedBefore;
      const created = s.spansCreated - before.spansCreated;
      const settled = s.spansExported - before.spansExported + (s.spansDropped - before.spansDropped);
      const assembled = exchanges() - exchangesBefore >= 2 * fed;
      if (
        (assembled && settled >= created && received >= s.spansExported - before.spansExported) ||
        Date.now() > drainDeadline
      )
        break;
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
      await sleep(20);
    }
    const totalSeconds = (Date.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const s = telemetry();
    const step = {
      offeredRequestsPerSecond: rate,
      requests: fed,
      spansCreated: s.spansCreated - before.spansCreated,
      spansReceived: received,
      spansDropped: s.spansDropped - before.spansDropped,
      seconds: Math.round(totalSeconds * 1000) / 1000,
      spansPerSecond: received / totalSeconds,
      rssPeakBytes: Math.max(rssPeak, memory(process.pid)?.peakRssBytes ?? 0),
      cpuUsPerSpan: received > 0 ? (cpu.user + cpu.system) / received : 0,
    };
    result.steps.push(step);
    result.rssPeakBytes = Math.max(result.rssPeakBytes, step.rssPeakBytes);
    const kept = step.spansDropped === 0 && step.spansReceived === 2 * fed && step.spansCreated === 2 * fed;
    const keptPace = fed / feedSeconds >= rate * 0.95;
    progress(
      `${rate} req/s offered (${Math.round(fed / feedSeconds)} fed): ${step.spansCreated} spans made, ${step.spansReceived} received, ` +
        `${step.spansDropped} dropped in ${step.seconds} s = ${Math.round(step.spansPerSecond)} spans/s, ` +
        `${step.cpuUsPerSpan.toFixed(2)} µs CPU/span (drain thread and record stamping included), peak RSS ${Math.round(step.rssPeakBytes / 2 ** 20)} MiB`,
    );
    if (kept && keptPace)
      result.sustainedSpansPerSecond = Math.max(result.sustainedSpansPerSecond, step.spansPerSecond);
    if (!kept || !keptPace) break;
  }
  await agent.stop(5000);
  await receiver.stop();
  // After the steps, so that their peak RSS is the export path's alone.
  result.stageUsPerRequest = stageCosts(template);
  progress(`CPU per proxied request by stage (no export): ${JSON.stringify(result.stageUsPerRequest)}`);
  process.stdout.write(`PIPELINE_RESULT ${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`[bench:pipeline] failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
