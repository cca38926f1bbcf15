/**
 * The MeterProvider: HTTP metrics from the in-place aggregate (HttpMetrics), the agent's own
 * health as observable instruments, one periodic reader with cumulative temporality.
 */
import { ValueType } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { HttpMetrics } from './http-metrics';
import { metricByName } from './metric-names';
import { ATTR_CPU_MODE } from './semconv';
import type { PodResolver, RouteResolver } from './spans';
import type { SpanQueueStats } from './span-queue';
import { SCOPE } from './scope';

/** Figures the agent reports about itself; totals since start, except the gauges. */
export interface AgentStats {
  eventsReceived?: number;
  eventsLost?: number;
  /** 0..1 at the last drain */
  ringbufFill?: number;
  processesMonitored?: number;
}

export interface MetricsOptions {
  resource: Resource;
  /** undefined: metrics are aggregated (the stats line reads them) but never exported */
  exporter?: PushMetricExporter;
  exportIntervalMs: number;
  exportTimeoutMs: number;
  routes?: RouteResolver;
  pods?: PodResolver;
  spanStats: () => SpanQueueStats;
}

export class Metrics {
  readonly http: HttpMetrics;
  private readonly provider?: MeterProvider;
  private readonly agent: Required<AgentStats> = {
    eventsReceived: 0,
    eventsLost: 0,
    ringbufFill: 0,
    processesMonitored: 0,
  };

  constructor(opts: MetricsOptions) {
    this.http = new HttpMetrics(opts.resource, SCOPE, opts.routes, opts.pods);
    if (opts.exporter === undefined) return;
    const reader = new PeriodicExportingMetricReader({
      exporter: opts.exporter,
      exportIntervalMillis: opts.exportIntervalMs,
      exportTimeoutMillis: Math.min(opts.exportTimeoutMs, opts.exportIntervalMs),
      metricProducers: [this.http],
    });
    this.provider = new MeterProvider({ resource: opts.resource, readers: [reader] });
    this.registerSelfMetrics(opts.spanStats);
  }

  recordAgentStats(stats: AgentStats): void {
    if (stats.eventsReceived !== undefined) this.agent.eventsReceived = stats.eventsReceived;
    if (stats.eventsLost !== undefined) this.agent.eventsLost = stats.eventsLost;
    if (stats.ringbufFill !== undefined) this.agent.ringbufFill = stats.ringbufFill;
    if (stats.processesMonitored !== undefined) this.agent.processesMonitored = stats.processesMonitored;
  }

  agentStats(): Required<AgentStats> {
    return { ...this.agent };
  }

  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }

  private registerSelfMetrics(spanStats: () => SpanQueueStats): void {
    const meter = this.provider!.getMeter(SCOPE.name, SCOPE.version);
    const opts = (name: string, valueType = ValueType.INT) => {
      const m = metricByName(name);
      return { description: m.description, unit: m.unit, valueType };
    };
    const counter = (name: string, read: () => number) =>
      meter.createObservableCounter(name, opts(name)).addCallback((r) => r.observe(read()));
    counter('kong_watcher.events.received', () => this.agent.eventsReceived);
    counter('kong_watcher.events.lost', () => this.agent.eventsLost);
    counter('kong_watcher.spans.exported', () => spanStats().exported);
    counter('kong_watcher.export.failures', () => spanStats().exportFailures);
    meter.createObservableCounter('kong_watcher.spans.dropped', opts('kong_watcher.spans.dropped')).addCallback((r) => {
      const s = spanStats();
      r.observe(s.droppedQueueFull, { reason: 'queue_full' });
      r.observe(s.droppedExportFailed, { reason: 'export_failed' });
    });
    meter
      .createObservableGauge('kong_watcher.ringbuf.fill', opts('kong_watcher.ringbuf.fill', ValueType.DOUBLE))
      .addCallback((r) => r.observe(this.agent.ringbufFill));
    meter
      .createObservableGauge('kong_watcher.processes.monitored', opts('kong_watcher.processes.monitored'))
      .addCallback((r) => r.observe(this.agent.processesMonitored));
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
