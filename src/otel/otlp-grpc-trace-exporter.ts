/**
 * The span exporter for OTEL_TRACES_EXPORTER=otlp over gRPC: each span is encoded by
 * OtlpTraceEncoder into the request being built as it arrives, and each request is sent as a
 * TraceService/Export unary call with grpc-js. The request bytes are handed to grpc-js as they are
 * (identity serializer), so nothing re-serializes them.
 *
 * Retries follow the OTLP specification: only transient gRPC codes, exponential backoff with
 * jitter, all within the target's timeout, so one batch never outlives it.
 */
import {
  Client,
  credentials,
  Metadata,
  status as GrpcStatus,
  type ChannelCredentials,
  type ChannelOptions,
  type ServiceError,
} from '@grpc/grpc-js';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { OtlpTarget } from './config';
import { OtlpTraceEncoder, type EncoderAttributes, type EncoderScope } from './otlp-trace-encoder';
import type { SpanBatcher } from './span-queue';
import type { ExportSpan } from './span';

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** The codes the OTLP specification calls retryable for gRPC. */
const RETRYABLE = new Set<number>([
  GrpcStatus.CANCELLED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.RESOURCE_EXHAUSTED,
  GrpcStatus.ABORTED,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.DATA_LOSS,
]);

const BACKOFF_INITIAL_MS = 250;
const BACKOFF_MAX_MS = 5000;
const BACKOFF_MULTIPLIER = 2;

const identity = (b: Buffer): Buffer => b;

/** TLS or plaintext for a target, as config.ts resolved it (also used for the metrics exporter). */
export function grpcCredentials(t: OtlpTarget): ChannelCredentials {
  return t.insecure ? credentials.createInsecure() : credentials.createSsl(t.rootCertificate ?? null);
}

/** OTEL_EXPORTER_OTLP_*HEADERS as gRPC metadata (keys must be lowercase there). */
export function grpcMetadata(t: OtlpTarget): Metadata {
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(t.headers)) metadata.set(k.toLowerCase(), v);
  return metadata;
}

export interface TraceExporterOptions {
  target: OtlpTarget;
  resourceAttributes: EncoderAttributes;
  scope: EncoderScope;
  /** gRPC connections to spread exports over (1-8; default 1): set to the exports in flight */
  connections?: number;
  /** the collector accepted the request but refused some spans (OTLP partial success) */
  onRejected?(rejectedSpans: number, message: string): void;
  /** each attempt as it ends, retries included: export health is known without waiting for the retries */
  onAttempt?(ok: boolean, error?: Error): void;
}

export class OtlpGrpcTraceExporter implements SpanBatcher<Buffer> {
  private readonly clients: Client[] = [];
  private next = 0;
  private readonly metadata: Metadata;
  private readonly encoder: OtlpTraceEncoder;
  private readonly timeoutMs: number;
  /** retries waiting for their backoff, with what ends them at shutdown */
  private readonly retries = new Map<NodeJS.Timeout, () => void>();
  private closed = false;

  constructor(private readonly options: TraceExporterOptions) {
    const t = options.target;
    const channelOptions: ChannelOptions = {
      'grpc.primary_user_agent': 'kong-watcher/0.1.0',
      // A collector that restarts should get spans again within seconds, not grpc-js's 2 minutes.
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 5000,
      'grpc.max_send_message_length': -1,
    };
    if (t.compression === 'gzip') channelOptions['grpc.default_compression_algorithm'] = 2;
    // One connection per concurrent export: an HTTP/2 connection's flow-control window is
    // shared by its streams, and a receiver with small windows (grpc-js's are 64 KiB) then
    // caps throughput at one window per round trip, however many exports are in flight.
    const connections = Math.max(1, Math.min(options.connections ?? 1, 8));
    if (connections > 1) channelOptions['grpc.use_local_subchannel_pool'] = 1;
    const creds = grpcCredentials(t);
    for (let i = 0; i < connections; i++) this.clients.push(new Client(t.address, creds, channelOptions));
    this.metadata = grpcMetadata(t);
    this.encoder = new OtlpTraceEncoder(options.resourceAttributes, options.scope);
    this.timeoutMs = t.timeoutMs;
  }

  add(span: ExportSpan): void {
    this.encoder.add(span);
  }

  take(): Buffer {
    return this.encoder.finish();
  }

  export(body: Buffer, resultCallback: (result: ExportResult) => void): void {
    if (this.closed) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    this.send(body, Date.now() + this.timeoutMs, 0, (result) => {
      // grpc-js has framed (copied) the request by the time the call ends.
      this.encoder.release(body);
      resultCallback(result);
    });
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    for (const [timer, giveUp] of this.retries) {
      clearTimeout(timer);
      giveUp();
    }
    this.retries.clear();
    for (const c of this.clients) c.close();
  }

  private send(body: Buffer, deadline: number, attempt: number, done: (result: ExportResult) => void): void {
    const client = this.clients[this.next];
    this.next = (this.next + 1) % this.clients.length;
    client.makeUnaryRequest<Buffer, Buffer>(
      EXPORT_PATH,
      identity,
      identity,
      body,
      this.metadata.clone(),
      { deadline },
      (err: ServiceError | null, response?: Buffer) => {
        if (err === null || err === undefined) {
          this.options.onAttempt?.(true);
          if (response !== undefined && response.length > 0) this.partialSuccess(response);
          done({ code: ExportResultCode.SUCCESS });
          return;
        }
        this.options.onAttempt?.(false, err);
        const delay = backoffMs(attempt);
        if (!this.closed && RETRYABLE.has(err.code) && Date.now() + delay < deadline) {
          const timer = setTimeout(() => {
            this.retries.delete(timer);
            this.send(body, deadline, attempt + 1, done);
          }, delay);
          timer.unref();
          this.retries.set(timer, () => done({ code: ExportResultCode.FAILED, error: err }));
          return;
        }
        done({ code: ExportResultCode.FAILED, error: err });
      },
    );
  }

  /** ExportTraceServiceResponse { partial_success = 1 { rejected_spans = 1; error_message = 2 } } */
  private partialSuccess(response: Buffer): void {
    try {
      const ps = field(response, 1);
      if (ps === undefined || typeof ps === 'number') return;
      const rejected = field(ps, 1);
      const message = field(ps, 2);
      const n = typeof rejected === 'number' ? rejected : 0;
      const text = message instanceof Buffer ? message.toString('utf8') : '';
      if (n > 0 || text !== '') this.options.onRejected?.(n, text);
    } catch {
      // A response we cannot read still means the request was accepted.
    }
  }
}

/** With ±20% jitter so that exports failing together do not retry together. */
function backoffMs(attempt: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * BACKOFF_MULTIPLIER ** attempt);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** The last occurrence of a varint or length-delimited field, enough for the small response. */
function field(buf: Buffer, wanted: number): number | Buffer | undefined {
  let at = 0;
  let found: number | Buffer | undefined;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (at >= buf.length) throw new Error('truncated varint');
      const b = buf[at++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
      if (mul > 2 ** 63) throw new Error('varint too long');
    }
  };
  while (at < buf.length) {
    const key = varint();
    const fieldNo = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const v = varint();
      if (fieldNo === wanted) found = v;
    } else if (wire === 2) {
      const len = varint();
      if (at + len > buf.length) throw new Error('truncated field');
      if (fieldNo === wanted) found = buf.subarray(at, at + len);
      at += len;
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return found;
}
