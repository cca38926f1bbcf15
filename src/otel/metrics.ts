/**
 * The MeterProvider: HTTP metrics from the in-place aggregate (HttpMetrics), the agent's own
 * figures as observable instruments read once per collection, and a reader per exporter: a
 * periodic one with cumulative temporality for each push exporter (OTLP, console), the
 * Prometheus exporter for a scrape.
 */
import { ValueType, type Observable } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import { HttpMetrics, type ActiveRequests } from './http-metrics';
import { metricByName } from './metric-names';
import { CollectorNamedPrometheusExporter } from './prometheus-exporter';
import { ATTR_CPU_MODE } from './semconv';
import type { SpanQueueStats } from './span-queue';
import { SCOPE } from './scope';

/** The agent's figures about itself: totals since start, except the gauges. */
export interface SelfStats {
  /** kernel records taken by the native assembler */
  eventsReceived: number;
  /** records the ring buffer had no room for */
  eventsLost: number;
  /** 0..1 at the last drain */
  ringbufFill: number;
  processesMonitored: number;
  /** records and frames whose sizes did not add up */
  decodeErrors: number;
  /** connections followed now */
  connections: number;
  evictedConnections: number;
  protocolErrors: number;
  droppedRequests: number;
  unmatchedAttempts: number;
}

export const NO_SELF_STATS: SelfStats = {
  eventsReceived: 0,
  eventsLost: 0,
  ringbufFill: 0,
  processesMonitored: 0,
  decodeErrors: 0,
  connections: 0,
  evictedConnections: 0,
  protocolErrors: 0,
  droppedRequests: 0,
  unmatchedAttempts: 0,
};

export interface MetricsOptions {
  resource: Resource;
  /** none, and no prometheus: metrics are aggregated (the stats line reads them) but never exported */
  exporters: PushMetricExporter[];
  /** serve /metrics for a scrape */
  prometheus?: { host: string; port: number; onError(err: Error): void };
  exportIntervalMs: number;
  exportTimeoutMs: number;
  spanStats: () => SpanQueueStats;
  selfStats?: () => SelfStats;
  activeRequests?: ActiveRequests;
}

/** Self metrics: each reads one field of SelfStats. */
const SELF_COUNTERS: [string, keyof SelfStats][] = [
  ['kong_watcher.events.received', 'eventsReceived'],
  ['kong_watcher.events.lost', 'eventsLost'],
  ['kong_watcher.decode.errors', 'decodeErrors'],
  ['kong_watcher.connections.evicted', 'evictedConnections'],
  ['kong_watcher.http.protocol_errors', 'protocolErrors'],
  ['kong_watcher.requests.dropped', 'droppedRequests'],
  ['kong_watcher.upstream.unmatched', 'unmatchedAttempts'],
];
const SELF_GAUGES: [string, keyof SelfStats, ValueType][] = [
  ['kong_watcher.ringbuf.fill', 'ringbufFill', ValueType.DOUBLE],
  ['kong_watcher.processes.monitored', 'processesMonitored', ValueType.INT],
  ['kong_watcher.connections', 'connections', ValueType.INT],
];

export class Metrics {
  readonly http: HttpMetrics;
  private readonly provider?: MeterProvider;

  constructor(opts: MetricsOptions) {
    this.http = new HttpMetrics(opts.resource, SCOPE, opts.activeRequests);
    const readers: MetricReader[] = opts.exporters.map(
      (exporter) =>
        new PeriodicExportingMetricReader({
          exporter,
          exportIntervalMillis: opts.exportIntervalMs,
          exportTimeoutMillis: Math.min(opts.exportTimeoutMs, opts.exportIntervalMs),
          metricProducers: [this.http],
        }),
    );
    if (opts.prometheus !== undefined) {
      readers.push(new CollectorNamedPrometheusExporter({ ...opts.prometheus, metricProducers: [this.http] }));
    }
    if (readers.length === 0) return;
    this.provider = new MeterProvider({ resource: opts.resource, readers });
    this.registerSelfMetrics(opts.spanStats, opts.selfStats ?? (() => NO_SELF_STATS));
  }

  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }

  private registerSelfMetrics(spanStats: () => SpanQueueStats, selfStats: () => SelfStats): void {
    const meter = this.provider!.getMeter(SCOPE.name, SCOPE.version);
    const opts = (name: string, valueType = ValueType.INT) => {
      const m = metricByName(name);
      return { description: m.description, unit: m.unit, valueType };
    };
    const self: [Observable, keyof SelfStats][] = [
      ...SELF_COUNTERS.map(([name, field]): [Observable, keyof SelfStats] => [
        meter.createObservableCounter(name, opts(name)),
        field,
      ]),
      ...SELF_GAUGES.map(([name, field, type]): [Observable, keyof SelfStats] => [
        meter.createObservableGauge(name, opts(name, type)),
        field,
      ]),
    ];
    // One read of the agent's figures per collection, shared by every instrument.
    meter.addBatchObservableCallback(
      (r) => {
        const s = selfStats();
        for (const [instrument, field] of self) r.observe(instrument, s[field]);
      },
      self.map(([instrument]) => instrument),
    );
    const exported = meter.createObservableCounter('kong_watcher.spans.exported', opts('kong_watcher.spans.exported'));
    const failures = meter.createObservableCounter(
      'kong_watcher.export.failures',
      opts('kong_watcher.export.failures'),
    );
    const dropped = meter.createObservableCounter('kong_watcher.spans.dropped', opts('kong_watcher.spans.dropped'));
    meter.addBatchObservableCallback(
      (r) => {
        const s = spanStats();
        r.observe(exported, s.exported);
        r.observe(failures, s.exportFailures);
        r.observe(dropped, s.droppedQueueFull, { reason: 'queue_full' });
        r.observe(dropped, s.droppedExportFailed, { reason: 'export_failed' });
        r.observe(dropped, s.droppedShutdown, { reason: 'shutdown' });
      },
      [exported, failures, dropped],
    );
    meter.createObservableCounter('process.cpu.time', opts('process.cpu.time', ValueType.DOUBLE)).addCallback((r) => {
      const cpu = process.cpuUsage();
      r.observe(cpu.user / 1e6, { [ATTR_CPU_MODE]: 'user' });
      r.observe(cpu.system / 1e6, { [ATTR_CPU_MODE]: 'system' });
    });
    meter
      .createObservableUpDownCounter('process.memory.usage', opts('process.memory.usage'))
      .addCallback((r) => r.observe(process.memoryUsage.rss()));
  }
}
