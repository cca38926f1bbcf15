/**
 * CPU per exchange of the JavaScript side of the data path, on synthetic frames (helpers/frames.ts):
 *
 *   metrics only:  decode -> enrich -> metrics
 *   with spans:    decode -> enrich -> metrics -> span -> OTLP encoder (every exchange sampled)
 *   with the log:  decode -> enrich -> metrics -> JSON request line (LOG_REQUESTS=true, written nowhere)
 *
 * A proxied request is two exchanges (SERVER + CLIENT): compare twice the figure per exchange with
 * the targets per request (<= 2 µs metrics only, <= 8 µs with every request exported as spans).
 * Not a test (no assertions). Measure compiled code, as the agent runs it (under tsx, every
 * imported binding is a getter call):
 *
 *   npx tsc -p tsconfig.json --outDir /tmp/kw; ln -s $PWD/node_modules /tmp/kw/node_modules
 *   node /tmp/kw/test/unit/exchange-path.measure.js [seconds per arm, default 5] [arm name filter]
 */
import { resourceFromAttributes } from '@opentelemetry/resources';
import { decodeBatch, type FrameSink } from '../../src/capture/batch-decoder';
import type { Exchange } from '../../src/capture/exchange';
import { Method } from '../../src/capture/exchange-layout';
import type { EnrichedExchange } from '../../src/enrich/enriched';
import { Enricher, type EnrichedSink } from '../../src/enrich/enricher';
import { RouteTable } from '../../src/enrich/kong/route-table';
import { createRedactor } from '../../src/enrich/redact';
import { Sampler } from '../../src/enrich/sampler';
import { createClock } from '../../src/clock';
import { Logger } from '../../src/log';
import { RequestLog } from '../../src/output/request-log';
import { HttpMetrics } from '../../src/otel/http-metrics';
import { OtlpTraceEncoder } from '../../src/otel/otlp-trace-encoder';
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

/** The outputs under measurement: metrics always, spans and their encoding or the log when asked. */
class Outputs implements EnrichedSink {
  private spans = 0;
  encodedBytes = 0;
  constructor(
    private readonly metrics: HttpMetrics,
    private readonly encoder: OtlpTraceEncoder | undefined,
    private readonly log: RequestLog | undefined,
  ) {}
  exchange(e: EnrichedExchange): void {
    this.metrics.record(e);
    this.log?.exchange(e);
    if (this.encoder === undefined || !e.sampled) return;
    // as the span queue does: encoded on arrival into the request being built
    this.encoder.add(ExchangeSpan.of(e, clock));
    if (++this.spans >= EXPORT_BATCH) this.flush();
  }
  flush(): void {
    if (this.encoder === undefined || this.spans === 0) return;
    const request = this.encoder.finish();
    this.encodedBytes += request.length;
    this.encoder.release(request); // as the exporter does once the request has been sent
    this.spans = 0;
  }
}

function arm(name: string, withSpans: boolean, withRoutes: boolean, withLog = false): void {
  if (ONLY !== undefined && !name.includes(ONLY)) return;
  const buf = batch();
  const metrics = new HttpMetrics(resourceFromAttributes({ 'service.name': 'kong' }), { name: 'kong-watcher' });
  const encoder = withSpans
    ? new OtlpTraceEncoder({ 'service.name': 'kong', 'host.name': 'bench' }, { name: 'kong-watcher', version: '0.1.0' })
    : undefined;
  const logger = new Logger({ level: 'info', json: true, write: () => undefined });
  const outputs = new Outputs(metrics, encoder, withLog ? new RequestLog(logger, clock) : undefined);
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
arm('metrics only', false, false);
arm('metrics only, 22 Kong routes', false, true);
arm('metrics + spans (all sampled)', true, false);
arm('metrics + spans, 22 Kong routes', true, true);
arm('metrics + JSON request log', false, false, true);
