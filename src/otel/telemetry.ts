/**
 * The OpenTelemetry output as one EnrichedSink: RED metrics aggregated in place and exported
 * (OTLP, a Prometheus scrape, the console), and a span per sampled exchange through the bounded
 * queue to the exporter the protocol names. Sampling was decided by the enrichment stage; this
 * only formats.
 *
 * Spans over OTLP/gRPC go through our own encoder and gRPC client (otlp-grpc-trace-exporter.ts:
 * the README's "Exporters" section has the A/B against the package); over OTLP/HTTP and to the
 * console through the SDK's own exporters, which see our spans as ReadableSpans.
 */
import { ConsoleSpanExporter } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter as HttpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as HttpJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as HttpProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import type { Resource } from '@opentelemetry/resources';
import { AggregationTemporality, ConsoleMetricExporter, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { EnrichedExchange } from '../enrich/enriched';
import type { EnrichedSink } from '../enrich/enricher';
import type { Logger } from '../log';
import { loadTelemetryConfig, type OtlpTarget, type TelemetryConfig } from './config';
import { ExportHealth } from './export-health';
import type { ActiveRequests, HttpSeriesReader, RequestTotals } from './http-metrics';
import { observedAgentFactory } from './http-agent';
import { Metrics, type SelfStats } from './metrics';
import { grpcCredentials, grpcMetadata, OtlpGrpcTraceExporter } from './otlp-grpc-trace-exporter';
import { SdkSpanSink } from './readable-span';
import { buildResource } from './resource';
import { SCOPE } from './scope';
import { objectBatches, SpanQueue, type SpanBatcher, type SpanSink } from './span-queue';
import { ExchangeSpan, type WallClock } from './spans';

type Env = Record<string, string | undefined>;
type Log = Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;

export interface TelemetryStats {
  spansCreated: number;
  /** exchanges not turned into spans by sampling (they are in the metrics) */
  spansSampledOut: number;
  spansExported: number;
  spansDropped: number;
  spansQueued: number;
  exportFailures: number;
  tracesExporter: TelemetryConfig['tracesExporter'];
  /** the metric exporters running, comma separated, or none */
  metricsExporter: string;
}

export interface Telemetry extends EnrichedSink {
  exchange(e: EnrichedExchange): void;
  /** spans are exported: the enrichment stage must decide sampling */
  readonly tracing: boolean;
  /** the HTTP metrics' counts, for the stats line */
  totals(): RequestTotals;
  /** the HTTP metrics' SERVER series, read in place by the live view */
  readonly httpSeries: HttpSeriesReader;
  stats(): TelemetryStats;
  /** Exports what is pending (spans and a last metric collection) within the deadline, then closes. */
  shutdown(deadlineMs: number): Promise<void>;
  readonly config: TelemetryConfig;
}

/** Replacements for tests and benchmarks, and the agent's figures; anything omitted comes from `env`. */
export interface TelemetryOverrides {
  spanExporter?: SpanSink;
  metricExporter?: PushMetricExporter;
  /** the agent's own figures, read at each metric collection */
  selfStats?: () => SelfStats;
  /** SERVER requests in flight, read at each metric collection */
  activeRequests?: ActiveRequests;
}

export function createTelemetry(env: Env, clock: WallClock, log: Log, overrides: TelemetryOverrides = {}): Telemetry {
  const { config, warnings } = loadTelemetryConfig(env);
  for (const w of warnings) log.warn(w);
  const resource = buildResource(env, config.serviceName, config.resourceAttributes);
  const health = new ExportHealth(log, 'span');

  const spanSink: SpanBatcher | undefined = overrides.spanExporter
    ? objectBatches(overrides.spanExporter)
    : createSpanBatcher(config, resource, log, health);
  const metricExporters =
    overrides.metricExporter !== undefined ? [overrides.metricExporter] : createMetricExporters(config);
  const prometheus = config.metricsExporters.includes('prometheus');
  const metricsExporter = overrides.metricExporter !== undefined ? 'otlp' : config.metricsExporters.join(',') || 'none';
  if (spanSink === undefined && metricExporters.length === 0 && !prometheus) {
    log.info(
      config.exportDisabledByDefault
        ? 'OpenTelemetry export is off: set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER) to send spans and metrics'
        : 'OpenTelemetry export is off (OTEL_TRACES_EXPORTER=none, OTEL_METRICS_EXPORTER=none)',
    );
  } else {
    log.info('OpenTelemetry export', {
      traces:
        spanSink === undefined ? 'none' : describe(config.tracesExporter, config.traces, !!overrides.spanExporter),
      metrics:
        overrides.metricExporter !== undefined
          ? 'otlp'
          : config.metricsExporters
              .map((k) =>
                k === 'prometheus'
                  ? `prometheus http://${config.prometheus.host}:${config.prometheus.port}/metrics`
                  : describe(k, config.metrics, false),
              )
              .join(', ') || 'none',
      sampler: config.sampler,
      ratio: config.samplerRatio,
    });
  }

  const queue = spanSink === undefined ? undefined : new SpanQueue(spanSink, config.queue);
  const noQueueStats = {
    queued: 0,
    exported: 0,
    dropped: 0,
    droppedQueueFull: 0,
    droppedExportFailed: 0,
    droppedShutdown: 0,
    exportFailures: 0,
    exportsInFlight: 0,
  };
  const spanStats = () => queue?.stats() ?? noQueueStats;
  const metrics = new Metrics({
    resource,
    exporters: metricExporters,
    prometheus: prometheus
      ? {
          ...config.prometheus,
          onError: (err) =>
            log.warn('the prometheus exporter could not start; /metrics is not served', {
              address: config.prometheus.host,
              port: config.prometheus.port,
              error: err.message,
            }),
        }
      : undefined,
    exportIntervalMs: config.metricExportIntervalMs,
    exportTimeoutMs: config.metricExportTimeoutMs,
    spanStats,
    selfStats: overrides.selfStats,
    activeRequests: overrides.activeRequests,
  });
  const http = metrics.http;
  let spansCreated = 0;
  let spansSampledOut = 0;
  let closed = false;

  return {
    config,
    tracing: queue !== undefined,
    exchange(e) {
      http.record(e);
      if (queue === undefined || closed) return;
      if (!e.sampled) {
        spansSampledOut++;
        return;
      }
      if (queue.dropIfFull()) return;
      spansCreated++;
      queue.push(ExchangeSpan.of(e, clock));
    },
    totals() {
      return http.totals();
    },
    httpSeries: http,
    stats() {
      const q = spanStats();
      return {
        spansCreated,
        spansSampledOut,
        spansExported: q.exported,
        spansDropped: q.dropped,
        spansQueued: q.queued,
        exportFailures: q.exportFailures,
        tracesExporter: spanSink === undefined ? 'none' : config.tracesExporter,
        metricsExporter,
      };
    },
    async shutdown(deadlineMs) {
      if (closed) return;
      closed = true;
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      await Promise.race([
        Promise.all([
          queue?.shutdown(deadlineMs),
          metrics
            .flush()
            .catch((err) => log.warn('last metric export failed', { error: (err as Error).message }))
            .then(() => metrics.shutdown())
            .catch(() => undefined),
        ]),
        deadline,
      ]);
    },
  };
}

/** For the start-up line: where an exporter sends. */
function describe(kind: string, target: OtlpTarget, overridden: boolean): string {
  if (kind !== 'otlp' || overridden) return kind;
  return `${target.url} (${target.protocol})`;
}

function createSpanBatcher(
  config: TelemetryConfig,
  resource: Resource,
  log: Log,
  health: ExportHealth,
): SpanBatcher | undefined {
  if (config.tracesExporter === 'none') return undefined;
  if (config.tracesExporter === 'console')
    return objectBatches(new SdkSpanSink(new ConsoleSpanExporter(), resource, SCOPE));
  const t = config.traces;
  if (t.protocol === 'grpc') {
    let warned = false;
    return new OtlpGrpcTraceExporter({
      target: t,
      resourceAttributes: resource.attributes,
      scope: SCOPE,
      connections: config.queue.maxConcurrentExports,
      onAttempt: health.attempt,
      onRejected(rejectedSpans, message) {
        // Once at warn level: a collector that refuses spans usually refuses every batch.
        (warned ? log.debug : log.warn).call(log, 'the collector rejected spans', { rejectedSpans, message });
        warned = true;
      },
    });
  }
  const options = {
    ...httpOptions(t, config.queue.maxConcurrentExports),
    httpAgentOptions: observedAgentFactory(health.attempt, t.rootCertificate),
  };
  const exporter =
    t.protocol === 'http/protobuf' ? new HttpProtoTraceExporter(options) : new HttpJsonTraceExporter(options);
  return objectBatches(new SdkSpanSink(exporter, resource, SCOPE));
}

function createMetricExporters(config: TelemetryConfig): PushMetricExporter[] {
  const t = config.metrics;
  const exporters: PushMetricExporter[] = [];
  for (const kind of config.metricsExporters) {
    if (kind === 'console') exporters.push(new ConsoleMetricExporter());
    if (kind !== 'otlp') continue;
    const temporalityPreference = AggregationTemporality.CUMULATIVE;
    if (t.protocol === 'grpc') {
      exporters.push(new GrpcMetricExporter({ ...grpcOptions(t, 2), temporalityPreference }));
      continue;
    }
    const options = {
      ...httpOptions(t, 2),
      httpAgentOptions: { keepAlive: true, ...(t.rootCertificate !== undefined ? { ca: t.rootCertificate } : {}) },
      temporalityPreference,
    };
    exporters.push(
      t.protocol === 'http/protobuf' ? new HttpProtoMetricExporter(options) : new HttpJsonMetricExporter(options),
    );
  }
  return exporters;
}

/** Explicit options, so what runs is what config.ts parsed (the exporter would read process.env). */
export function grpcOptions(t: OtlpTarget, concurrency: number) {
  return {
    url: t.address.startsWith('unix:') ? t.address : `${t.insecure ? 'http' : 'https'}://${t.address}`,
    credentials: grpcCredentials(t),
    metadata: grpcMetadata(t),
    compression: t.compression as never,
    timeoutMillis: t.timeoutMs,
    // Our queue caps exports in flight; a little slack so a request our queue already gave up
    // on (guard timeout) does not make the exporter refuse the next one.
    concurrencyLimit: concurrency + 2,
  };
}

function httpOptions(t: OtlpTarget, concurrency: number) {
  return {
    url: t.httpUrl,
    headers: t.headers,
    compression: t.compression as never,
    timeoutMillis: t.timeoutMs,
    concurrencyLimit: concurrency + 2,
  };
}
