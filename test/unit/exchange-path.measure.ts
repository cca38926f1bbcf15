/**
 * CPU per exchange of the JavaScript side of the data path, on synthetic frames (helpers/frames.ts):
 *
 *   metrics only:  decode -> enrich -> metrics
 *   with spans:    decode -> enrich -> metrics -> span -> OTLP encoder (every exchange sampled)
 *   with the log:  decode -> enrich -> metrics -> JSON request line (LOG_REQUESTS=true, written nowhere)
 *   package spans: decode -> enrich -> metrics -> span kept -> ReadableSpan view -> the SDK's
 *                  protobuf serializer and the copy its gRPC transport makes (what
 *                  @opentelemetry/exporter-trace-otlp-grpc does per span, without the network)
 *   SDK metrics:   decode -> enrich -> the SDK's histogram instruments, an attribute object per
 *                  exchange (what the in-place aggregation of src/otel/http-metrics.ts replaces)
 *
 * A proxied request is two exchanges (SERVER + CLIENT): compare twice the figure per exchange with
 * the targets per request (<= 2 µs metrics only, <= 8 µs with every request exported as spans).
 * Not a test (no assertions). Measure compiled code, as the agent runs it (under tsx, every
 * imported binding is a getter call):
 *
 *   npx tsc -p tsconfig.json --outDir /tmp/kw; ln -s $PWD/node_modules /tmp/kw/node_modules
 *   node /tmp/kw/test/unit/exchange-path.measure.js [seconds per arm, default 5] [arm name filter]
 */
import { ValueType, type Attributes, type Histogram } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { decodeBatch, type FrameSink } from '../../src/capture/batch-decoder';
import type { Exchange } from '../../src/capture/exchange';
import { Method, METHOD_NAMES } from '../../src/capture/exchange-layout';
import type { EnrichedExchange } from '../../src/enrich/enriched';
import { Enricher, type EnrichedSink } from '../../src/enrich/enricher';
import { RouteTable } from '../../src/enrich/kong/route-table';
import { createRedactor } from '../../src/enrich/redact';
import { Sampler } from '../../src/enrich/sampler';
import { createClock } from '../../src/clock';
import { Logger } from '../../src/log';
import { RequestLog } from '../../src/output/request-log';
import { HttpMetrics } from '../../src/otel/http-metrics';
import { DURATION_BUCKETS_S, SIZE_BUCKETS_BYTES } from '../../src/otel/metric-names';
import { OtlpTraceEncoder } from '../../src/otel/otlp-trace-encoder';
import { ReadableExportSpan } from '../../src/otel/readable-span';
import type { ExportSpan } from '../../src/otel/span';
import { ExchangeSpan } from '../../src/otel/spans';
import { FRAME_BASE_NS, clientSpec, exchangeFrame, serverSpec } from './helpers/frames';

const SECONDS = Number(process.argv[2] ?? 5);
const ONLY = process.argv[3];
const PAIRS_PER_BATCH = 500;
const EXPORT_BATCH = 1024;
/** The agent's clock (relative ns -> wall time, ISO text cached per second), based at the frames' base. */
const clock = createClock({
  monotonicNs: () => FRAME_BASE_NS,
  measureOffsetNs: () => 1_700_000_000_000_000_000n - FRAME_BASE_NS,
  refreshIntervalMs: 0,
});

/** A batch as a busy gateway would hand it over: SERVER frames each followed by its attempt. */
function batch(): Buffer {
  const frames: Buffer[] = [];
  const statuses = [200, 200, 200, 201, 204, 301, 404, 500, 502];
  const methods = [Method.Get, Method.Get, Method.Post, Method.Put, Method.Delete];
  for (let i = 0; i < PAIRS_PER_BATCH; i++) {
    const status = statuses[i % statuses.length];
    const server = serverSpec({
      method: methods[i % methods.length],
      status,
      path: `/api/v1/orders/${10000 + i}`,
      query: i % 3 === 0 ? `page=${i}&token=secret${i}` : undefined,
      host: `api.example.com:8000`,
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) kong-watcher-bench/1.0',
      startNs: 1_000_000 + i * 1000,
      endNs: 1_000_000 + i * 1000 + 1_500_000 + (i % 7) * 300_000,
      upstreamStartNs: 1_200_000 + i * 1000,
      upstreamEndNs: 1_000_000 + i * 1000 + 1_400_000,
      requestBodySize: (i % 5) * 200,
      responseBodySize: 1000 + i,
      connId: 1 + (i % 64),
      traceId: (i * 2654435761).toString(16).padStart(32, 'a').slice(-32),
    });
    frames.push(
      exchangeFrame(server),
      exchangeFrame(
        clientSpec(server, {
          status,
          host: `orders-${i % 4}.svc.cluster.local:8080`,
          startNs: 1_200_000 + i * 1000,
          endNs: 1_000_000 + i * 1000 + 1_400_000,
        }),
      ),
    );
  }
  return Buffer.concat(frames);
}

function routes(): RouteTable {
  const t = new RouteTable();
  const list = [];
  for (let i = 0; i < 20; i++) {
    list.push({ id: `r${i}`, name: `route-${i}`, paths: [`/api/v${i}/things`], service: { id: 's1' } });
  }
  list.push({ id: 'orders', name: 'orders', paths: ['/api/v1/orders'], service: { id: 's1' } });
  list.push({ id: 'users', name: 'users', paths: ['~/api/v1/users/\\d+$'], regex_priority: 5, service: { id: 's1' } });
  t.load(list, [{ id: 's1', name: 'shop' }]);
  return t;
}

type SpanPath = 'own' | 'package' | undefined;
const RESOURCE = resourceFromAttributes({ 'service.name': 'kong', 'host.name': 'bench' });
const SCOPE = { name: 'kong-watcher', version: '0.1.0' };

/** The HTTP metrics as an SDK user would record them: five histograms, attributes built per exchange. */
class SdkInstruments {
  private readonly duration: Histogram;
  private readonly requestBody: Histogram;
  private readonly responseBody: Histogram;
  private readonly proxy: Histogram;
  private readonly upstream: Histogram;
  private readonly client: Histogram;
  constructor() {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 1e9,
    });
    const meter = new MeterProvider({ resource: RESOURCE, readers: [reader] }).getMeter('kong-watcher');
    const seconds = {
      unit: 's',
      valueType: ValueType.DOUBLE,
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    };
    const bytes = { unit: 'By', valueType: ValueType.INT, advice: { explicitBucketBoundaries: SIZE_BUCKETS_BYTES } };
    this.duration = meter.createHistogram('http.server.request.duration', seconds);
    this.requestBody = meter.createHistogram('http.server.request.body.size', bytes);
    this.responseBody = meter.createHistogram('http.server.response.body.size', bytes);
    this.proxy = meter.createHistogram('kong.latency.proxy', seconds);
    this.upstream = meter.createHistogram('kong.latency.upstream', seconds);
    this.client = meter.createHistogram('http.client.request.duration', seconds);
  }
  record(e: EnrichedExchange): void {
    const ex = e.ex;
    if (!ex.isServer) {
      const attrs: Attributes = {
        'http.request.method': METHOD_NAMES[ex.method],
        'http.response.status_code': ex.status,
      };
      if (e.upstream !== undefined) attrs['server.address'] = e.upstream.address;
      if (e.errorType !== undefined) attrs['error.type'] = e.errorType;
      this.client.record(e.durationNs / 1e9, attrs);
      return;
    }
    const attrs: Attributes = {
      'http.request.method': METHOD_NAMES[ex.method],
      'url.scheme': ex.tls ? 'https' : 'http',
      'http.response.status_code': ex.status,
      'kong.response.source': e.responseSourceName,
    };
    if (e.route?.route !== undefined) attrs['http.route'] = e.route.route;
    if (e.errorType !== undefined) attrs['error.type'] = e.errorType;
    this.duration.record(e.durationNs / 1e9, attrs);
    this.requestBody.record(ex.requestBodySize, attrs);
    this.responseBody.record(ex.responseBodySize, attrs);
    if (e.hasUpstreamSplit) {
      this.proxy.record(e.beforeUpstreamNs / 1e9, attrs);
      this.upstream.record(e.upstreamNs / 1e9, attrs);
    } else {
      this.proxy.record(e.durationNs / 1e9, attrs);
    }
  }
}

/** The outputs under measurement: metrics always (in place, or the SDK's), spans one way or the other, or the log. */
class Outputs implements EnrichedSink {
  private spans = 0;
  private readonly kept: ExportSpan[] = [];
  encodedBytes = 0;
  constructor(
    private readonly metrics: HttpMetrics | SdkInstruments,
    private readonly spanPath: SpanPath,
    private readonly encoder: OtlpTraceEncoder | undefined,
    private readonly log: RequestLog | undefined,
  ) {}
  exchange(e: EnrichedExchange): void {
    this.metrics.record(e);
    this.log?.exchange(e);
    if (this.spanPath === undefined || !e.sampled) return;
    const span = ExchangeSpan.of(e, clock);
    if (this.spanPath === 'own') {
      // as the span queue does: encoded on arrival into the request being built
      this.encoder!.add(span);
    } else {
      // as objectBatches does for a SpanSink: the span outlives its batch's turn
      span.retain();
      this.kept.push(span);
    }
    if (++this.spans >= EXPORT_BATCH) this.flush();
  }
  flush(): void {
    if (this.spans === 0) return;
    if (this.spanPath === 'own') {
      const request = this.encoder!.finish();
      this.encodedBytes += request.length;
      this.encoder!.release(request); // as the exporter does once the request has been sent
    } else if (this.spanPath === 'package') {
      const bytes = ProtobufTraceSerializer.serializeRequest(
        this.kept.map((s) => new ReadableExportSpan(s, RESOURCE, SCOPE)),
      )!;
      this.encodedBytes += Buffer.from(bytes).length; // the package's gRPC transport copies it
      this.kept.length = 0;
    }
    this.spans = 0;
  }
}

function arm(name: string, spanPath: SpanPath, withRoutes: boolean, withLog = false, sdkMetrics = false): void {
  if (ONLY !== undefined && !name.includes(ONLY)) return;
  const withSpans = spanPath !== undefined;
  const buf = batch();
  const metrics = sdkMetrics ? new SdkInstruments() : new HttpMetrics(RESOURCE, SCOPE);
  const encoder =
    spanPath === 'own' ? new OtlpTraceEncoder({ 'service.name': 'kong', 'host.name': 'bench' }, SCOPE) : undefined;
  const logger = new Logger({ level: 'info', json: true, write: () => undefined });
  const outputs = new Outputs(metrics, spanPath, encoder, withLog ? new RequestLog(logger, clock) : undefined);
  const enricher = new Enricher(outputs, {
    redactor: createRedactor(),
    routes: withRoutes ? routes() : undefined,
    sampler: withSpans ? new Sampler('parentbased_always_on', 1) : undefined,
  });
  const sink: FrameSink = { exchange: (ex: Exchange) => enricher.push(ex), proc: () => undefined };
  const run = (batches: number): number => {
    let exchanges = 0;
    for (let b = 0; b < batches; b++) {
      exchanges += decodeBatch(buf, FRAME_BASE_NS, sink).exchanges;
      enricher.endBatch();
    }
    outputs.flush();
    logger.flush();
    return exchanges;
  };
  run(200); // warm up: optimised code, grown tables
  outputs.encodedBytes = 0;
  if (typeof global.gc === 'function') global.gc();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let exchanges = 0;
  while (Number(process.hrtime.bigint() - t0) < SECONDS * 1e9) exchanges += run(20);
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = cpu.user + cpu.system;
  const rssMiB = Math.round(process.memoryUsage.rss() / 1048576);
  console.log(
    `${name.padEnd(34)} ${(cpuUs / exchanges).toFixed(3)} µs CPU/exchange  ${(wallNs / 1000 / exchanges).toFixed(3)} µs wall/exchange  ` +
      `${Math.round(exchanges / (wallNs / 1e9) / 1000)}k exchanges/s  rss ${rssMiB} MiB` +
      (withSpans ? `  ${(outputs.encodedBytes / exchanges).toFixed(0)} B/span on the wire` : ''),
  );
}

console.log(
  `node ${process.version}, ${SECONDS} s per arm, ${PAIRS_PER_BATCH * 2} exchanges per batch (SERVER + CLIENT)`,
);
arm('metrics only', undefined, false);
arm('metrics only, 22 Kong routes', undefined, true);
arm('metrics (SDK instruments), 22 Kong routes', undefined, true, false, true);
arm('metrics + spans (all sampled)', 'own', false);
arm('metrics + spans, 22 Kong routes', 'own', true);
arm('metrics + spans (package serializer)', 'package', false);
arm('metrics + JSON request log', undefined, false, true);
