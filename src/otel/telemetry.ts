/**
 * The OpenTelemetry output as one EnrichedSink: RED metrics aggregated in place and exported
 * periodically, and a span per sampled exchange through the bounded queue to the OTLP gRPC (or
 * console) exporter. Sampling was decided by the enrichment stage; this only formats.
 */
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { AggregationTemporality, ConsoleMetricExporter, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { Attributes } from '@opentelemetry/api';
import type { EnrichedExchange } from '../enrich/enriched';
import type { EnrichedSink } from '../enrich/enricher';
import type { Logger } from '../log';
import { loadTelemetryConfig, type OtlpTarget, type TelemetryConfig } from './config';
import { ConsoleSpanSink } from './console-span-sink';
import type { ActiveRequests, HttpSeriesReader, RequestTotals } from './http-metrics';
import { Metrics, type SelfStats } from './metrics';
import { grpcCredentials, grpcMetadata, OtlpGrpcTraceExporter } from './otlp-grpc-trace-exporter';
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
  metricsExporter: TelemetryConfig['metricsExporter'];
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

/** Replacements for tests, and the agent's figures; anything omitted comes from `env`. */
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

  const spanSink: SpanBatcher | undefined = overrides.spanExporter
    ? objectBatches(overrides.spanExporter)
    : createSpanBatcher(config, resource.attributes, log);
  const metricExporter = overrides.metricExporter ?? createMetricExporter(config);
  if (spanSink === undefined && metricExporter === undefined) {
    log.info(
      config.exportDisabledByDefault
        ? 'OpenTelemetry export is off: set OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER) to send spans and metrics'
        : 'OpenTelemetry export is off (OTEL_TRACES_EXPORTER=none, OTEL_METRICS_EXPORTER=none)',
    );
  } else {
    log.info('OpenTelemetry export', {
      traces:
        spanSink === undefined
          ? 'none'
          : config.tracesExporter === 'otlp' && !overrides.spanExporter
            ? config.traces.url
            : config.tracesExporter,
      metrics:
        metricExporter === undefined
          ? 'none'
          : config.metricsExporter === 'otlp' && !overrides.metricExporter
            ? config.metrics.url
            : config.metricsExporter,
      sampler: config.sampler,
      ratio: config.samplerRatio,
    });
  }

  const queue =
    spanSink === undefined
      ? undefined
      : new SpanQueue(spanSink, config.queue, {
          onExportHealth(healthy, error) {
            if (healthy) log.info('span export is working');
            else
              log.warn('span export failing; spans are dropped and counted until it recovers', {
                error: error?.message,
              });
          },
        });
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
    exporter: metricExporter,
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
        metricsExporter: metricExporter === undefined ? 'none' : config.metricsExporter,
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

function createSpanBatcher(config: TelemetryConfig, resourceAttributes: Attributes, log: Log): SpanBatcher | undefined {
  if (config.tracesExporter === 'none') return undefined;
  if (config.tracesExporter === 'console') return objectBatches(new ConsoleSpanSink());
  let warned = false;
  return new OtlpGrpcTraceExporter({
    target: config.traces,
    resourceAttributes,
    scope: SCOPE,
    connections: config.queue.maxConcurrentExports,
    onRejected(rejectedSpans, message) {
      // Once at warn level: a collector that refuses spans usually refuses every batch.
      (warned ? log.debug : log.warn).call(log, 'the collector rejected spans', { rejectedSpans, message });
      warned = true;
    },
  });
}

function createMetricExporter(config: TelemetryConfig): PushMetricExporter | undefined {
  if (config.metricsExporter === 'none') return undefined;
  if (config.metricsExporter === 'console') return new ConsoleMetricExporter();
  return new OTLPMetricExporter({
    ...grpcOptions(config.metrics, 2),
    temporalityPreference: AggregationTemporality.CUMULATIVE,
  });
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
