/**
 * OTEL_METRICS_EXPORTER=prometheus: /metrics served by @opentelemetry/exporter-prometheus, with the
 * names and labels the OpenTelemetry Collector's prometheus exporter writes for the same metrics
 * (otel-collector.yaml). A dashboard or alert then reads the same series whether Prometheus
 * scrapes the agent or the collector:
 *
 *  - names carry the unit and type suffixes (src/otel/prometheus-names.ts):
 *    `http_server_request_duration_seconds`, not the package's `http_server_request_duration`;
 *  - every resource attribute is a label, as with the collector's
 *    resource_to_telemetry_conversion (`service_name`, `k8s_pod_name`, ...); a data point's own
 *    attribute of the same name wins (a node-wide agent labels each Kong's pod).
 *
 * Both are done on the collected data, before the package's serializer writes it.
 */
import type { Attributes } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import {
  DataPointType,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { MetricKind } from './metric-names';
import { prometheusName } from './prometheus-names';

export interface PrometheusExporterOptions {
  host: string;
  port: number;
  metricProducers: MetricProducer[];
  /** the server could not listen (port taken, address not local) */
  onError(err: Error): void;
}

export class CollectorNamedPrometheusExporter extends PrometheusExporter {
  constructor(options: PrometheusExporterOptions) {
    super({ host: options.host, port: options.port, metricProducers: options.metricProducers }, (err) => {
      if (err) options.onError(err as Error);
    });
  }

  override async collect(options?: Parameters<PrometheusExporter['collect']>[0]): Promise<CollectionResult> {
    const result = await super.collect(options);
    return { ...result, resourceMetrics: asCollectorWrites(result.resourceMetrics) };
  }
}

/** The metrics as the collector's prometheus exporter names and labels them. */
export function asCollectorWrites(rm: ResourceMetrics): ResourceMetrics {
  const resourceLabels = rm.resource.attributes;
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.map((m) => renamed(m, resourceLabels)),
    })),
  };
}

function renamed(m: MetricData, resourceLabels: Attributes): MetricData {
  const name = prometheusName({ name: m.descriptor.name, unit: m.descriptor.unit, kind: kindOf(m) });
  const dataPoints = m.dataPoints.map((p) => ({ ...p, attributes: { ...resourceLabels, ...p.attributes } }));
  return { ...m, descriptor: { ...m.descriptor, name }, dataPoints } as MetricData;
}

function kindOf(m: MetricData): MetricKind {
  switch (m.dataPointType) {
    case DataPointType.HISTOGRAM:
    case DataPointType.EXPONENTIAL_HISTOGRAM:
      return 'histogram';
    case DataPointType.SUM:
      return m.isMonotonic ? 'counter' : 'updowncounter';
    default:
      return 'gauge';
  }
}
