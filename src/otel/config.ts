/**
 * OTEL_* environment variables, read the way the OpenTelemetry specification describes them.
 *
 * Invalid values never stop the agent: the specification asks SDKs to warn and fall back to the
 * default, so every problem becomes a warning the caller logs once.
 */
import { readFileSync } from 'node:fs';
import type { Variable } from '../config';
import { SAMPLER_KINDS, type SamplerKind } from '../enrich/sampler';

type Env = Record<string, string | undefined>;

export type TracesExporterKind = 'otlp' | 'console' | 'none';
/** Several may run at once (OTEL_METRICS_EXPORTER=otlp,prometheus): each is a reader of the same metrics. */
export type MetricsExporterKind = 'otlp' | 'console' | 'prometheus';
export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';
export type { SamplerKind };

export const OTLP_PROTOCOLS: readonly OtlpProtocol[] = ['grpc', 'http/protobuf', 'http/json'];

export interface OtlpTarget {
  protocol: OtlpProtocol;
  /** gRPC: host:port (or unix:path) as grpc-js wants it */
  address: string;
  /** HTTP: where requests are POSTed (the base endpoint + /v1/<signal>, or the per-signal endpoint as given) */
  httpUrl: string;
  /** what requests go to, for log lines: the gRPC endpoint as configured, or httpUrl */
  url: string;
  insecure: boolean;
  /** PEM root certificate(s) for TLS; undefined = system roots */
  rootCertificate?: Buffer;
  headers: Record<string, string>;
  timeoutMs: number;
  compression: 'gzip' | 'none';
}

export interface PrometheusTarget {
  host: string;
  port: number;
}

export interface SpanQueueConfig {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMs: number;
  exportTimeoutMs: number;
  maxConcurrentExports: number;
}

export interface TelemetryConfig {
  tracesExporter: TracesExporterKind;
  /** empty: no metric exporter (OTEL_METRICS_EXPORTER=none, or nothing configured) */
  metricsExporters: MetricsExporterKind[];
  traces: OtlpTarget;
  metrics: OtlpTarget;
  prometheus: PrometheusTarget;
  sampler: SamplerKind;
  samplerRatio: number;
  serviceName: string;
  resourceAttributes: Record<string, string>;
  metricExportIntervalMs: number;
  metricExportTimeoutMs: number;
  queue: SpanQueueConfig;
  /** true when neither an endpoint nor an exporter was configured: nothing leaves the agent */
  exportDisabledByDefault: boolean;
}

/** The specification's default endpoints, by transport. */
const DEFAULT_GRPC_ENDPOINT = 'http://localhost:4317';
const DEFAULT_HTTP_ENDPOINT = 'http://localhost:4318';
const SIGNAL_PATHS = { TRACES: 'v1/traces', METRICS: 'v1/metrics' } as const;
export const PROMETHEUS_DEFAULTS: PrometheusTarget = { host: 'localhost', port: 9464 };

/**
 * Sized for gateway rates with bounded memory rather than the specification's defaults (2048
 * spans, 5 s delay), which drop nearly everything at gateway rates. A queued span holds ~1 KiB
 * (measured), so a full queue is ~8 MiB; a 1024-span request is ~0.6 MB on the wire, far under
 * a collector's 4 MiB default receive limit. In the benchmark's starved spans arm, 8192/1024
 * peaked at 238 MiB RSS and 16384/2048 at 297 MiB, over the sidecar's 256 Mi limit: dropping
 * (counted) spans beats being OOM-killed.
 */
export const QUEUE_DEFAULTS: SpanQueueConfig = {
  maxQueueSize: 8192,
  maxExportBatchSize: 1024,
  scheduledDelayMs: 200,
  exportTimeoutMs: 10000,
  maxConcurrentExports: 4,
};

/** Every variable read here, for --help and the README. */
export const OTEL_VARIABLES: Variable[] = [
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    default: '',
    meaning: `OTLP endpoint for traces and metrics, e.g. http://collector:4317 (gRPC) or http://collector:4318 (HTTP: /v1/traces and /v1/metrics are appended)`,
  },
  {
    name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
    default: '',
    meaning: 'OTLP endpoint for traces only; over HTTP the full URL, used as it is',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
    default: '',
    meaning: 'OTLP endpoint for metrics only; over HTTP the full URL, used as it is',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_PROTOCOL',
    default: 'grpc',
    meaning:
      'grpc, http/protobuf or http/json (also _TRACES_/_METRICS_). With none set, an explicit otlp exporter uses http://localhost:4317 (grpc) or http://localhost:4318 (HTTP)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_HEADERS',
    default: '',
    meaning: 'headers (gRPC metadata) sent with every export: k1=v1,k2=v2 (also _TRACES_/_METRICS_)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_TIMEOUT',
    default: '10000',
    meaning: 'export timeout in ms, retries included (also _TRACES_/_METRICS_)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_INSECURE',
    default: 'false',
    meaning: 'gRPC: true means plaintext when the endpoint has no scheme (http:// is always plaintext)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_CERTIFICATE',
    default: '',
    meaning: "PEM file of the root CA(s) that sign the collector (TLS); unset: the system's roots",
  },
  { name: 'OTEL_EXPORTER_OTLP_COMPRESSION', default: 'none', meaning: 'gzip or none' },
  {
    name: 'OTEL_TRACES_EXPORTER',
    default: 'otlp when an endpoint is set, else none',
    meaning: "otlp, console (the SDK's console exporter) or none",
  },
  {
    name: 'OTEL_METRICS_EXPORTER',
    default: 'otlp when an endpoint is set, else none',
    meaning: 'otlp, prometheus, console or none; a list runs each (otlp,prometheus)',
  },
  {
    name: 'OTEL_EXPORTER_PROMETHEUS_HOST',
    default: PROMETHEUS_DEFAULTS.host,
    meaning: 'address the prometheus exporter serves /metrics on (0.0.0.0 for a scrape from outside the pod)',
  },
  {
    name: 'OTEL_EXPORTER_PROMETHEUS_PORT',
    default: String(PROMETHEUS_DEFAULTS.port),
    meaning: 'port of the prometheus exporter',
  },
  {
    name: 'OTEL_TRACES_SAMPLER',
    default: 'parentbased_always_on',
    meaning:
      'always_on, always_off, traceidratio, parentbased_{always_on,always_off,traceidratio}; errors and slow requests are kept by SAMPLE_KEEP_ERRORS and SAMPLE_KEEP_SLOWER_THAN',
  },
  {
    name: 'OTEL_TRACES_SAMPLER_ARG',
    default: '1.0',
    meaning:
      'ratio 0..1 for the traceidratio samplers, decided from the trace id (whole traces kept); the spans carry it, and th in tracestate',
  },
  { name: 'OTEL_SERVICE_NAME', default: 'kong', meaning: 'service.name of spans and metrics' },
  { name: 'OTEL_RESOURCE_ATTRIBUTES', default: '', meaning: 'extra resource attributes: k1=v1,k2=v2' },
  { name: 'OTEL_METRIC_EXPORT_INTERVAL', default: '60000', meaning: 'ms between metric exports (otlp, console)' },
  { name: 'OTEL_METRIC_EXPORT_TIMEOUT', default: '30000', meaning: 'ms allowed for one metric export' },
  {
    name: 'OTEL_BSP_MAX_QUEUE_SIZE',
    default: String(QUEUE_DEFAULTS.maxQueueSize),
    meaning: 'spans waiting for export; beyond it spans are dropped and counted',
  },
  {
    name: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
    default: String(QUEUE_DEFAULTS.maxExportBatchSize),
    meaning: 'spans per export request',
  },
  {
    name: 'OTEL_BSP_SCHEDULE_DELAY',
    default: String(QUEUE_DEFAULTS.scheduledDelayMs),
    meaning: 'ms between exports of a partial batch',
  },
  {
    name: 'OTEL_BSP_EXPORT_TIMEOUT',
    default: String(QUEUE_DEFAULTS.exportTimeoutMs),
    meaning: 'ms allowed for one span export, retries included',
  },
  {
    name: 'OTEL_BSP_MAX_CONCURRENT_EXPORTS',
    default: String(QUEUE_DEFAULTS.maxConcurrentExports),
    meaning: 'span export requests in flight at once (ours, not in the specification)',
  },
  { name: 'K8S_POD_NAME', default: '', meaning: 'k8s.pod.name (downward API)' },
  { name: 'K8S_NAMESPACE_NAME', default: '', meaning: 'k8s.namespace.name (downward API)' },
  { name: 'K8S_NODE_NAME', default: '', meaning: 'k8s.node.name (downward API)' },
];

export interface LoadedTelemetryConfig {
  config: TelemetryConfig;
  warnings: string[];
}

export function loadTelemetryConfig(env: Env): LoadedTelemetryConfig {
  const warnings: string[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      warnings.push(`${name}="${raw}" is not an integer from ${min} to ${max}; using ${fallback}`);
      return fallback;
    }
    return n;
  };

  const anyEndpoint =
    get('OTEL_EXPORTER_OTLP_ENDPOINT') ??
    get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ??
    get('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT');
  /** The names listed (the specification allows a list), known ones only; undefined when unset. */
  const exporterList = <K extends string>(name: string, known: readonly K[]): K[] | undefined => {
    const raw = get(name);
    if (raw === undefined) return undefined;
    const out: K[] = [];
    for (const item of raw.split(',')) {
      const v = item.trim().toLowerCase();
      if (v === '' || v === 'none') continue;
      if (known.includes(v as K)) {
        if (!out.includes(v as K)) out.push(v as K);
      } else {
        warnings.push(`${name}: "${v}" is not one of ${known.join(', ')} or none; ignored`);
      }
    }
    const onlyNone = raw.split(',').every((v) => ['', 'none'].includes(v.trim().toLowerCase()));
    if (out.length === 0 && !onlyNone) {
      warnings.push(`${name}="${raw}" names no exporter this agent has; using otlp`);
      out.push('otlp' as K);
    }
    return out;
  };
  const traceList = exporterList<'otlp' | 'console'>('OTEL_TRACES_EXPORTER', ['otlp', 'console']);
  if (traceList !== undefined && traceList.length > 1) {
    warnings.push(
      `OTEL_TRACES_EXPORTER: one span exporter runs; using ${traceList[0]}, not ${traceList.slice(1).join(', ')}`,
    );
  }
  const tracesExporter: TracesExporterKind =
    traceList === undefined ? (anyEndpoint !== undefined ? 'otlp' : 'none') : (traceList[0] ?? 'none');
  const metricsExporters =
    exporterList<MetricsExporterKind>('OTEL_METRICS_EXPORTER', ['otlp', 'prometheus', 'console']) ??
    (anyEndpoint !== undefined ? ['otlp' as const] : []);

  const target = (signal: 'TRACES' | 'METRICS'): OtlpTarget => {
    const pick = (suffix: string): [string, string | undefined] => {
      const specific = `OTEL_EXPORTER_OTLP_${signal}_${suffix}`;
      const generic = `OTEL_EXPORTER_OTLP_${suffix}`;
      const v = get(specific);
      return v !== undefined ? [specific, v] : [generic, get(generic)];
    };
    const [protocolName, protocolRaw] = pick('PROTOCOL');
    let protocol: OtlpProtocol = 'grpc';
    if (protocolRaw !== undefined) {
      const p = protocolRaw.toLowerCase() as OtlpProtocol;
      if (OTLP_PROTOCOLS.includes(p)) protocol = p;
      else warnings.push(`${protocolName}="${protocolRaw}" is not one of ${OTLP_PROTOCOLS.join(', ')}; using grpc`);
    }
    const [endpointName, endpoint] = pick('ENDPOINT');
    const [insecureName, insecureRaw] = pick('INSECURE');
    const insecureFlag = insecureRaw !== undefined && parseBool(insecureName, insecureRaw, warnings);
    let address = '';
    let httpUrl = '';
    let url: string;
    let insecure: boolean;
    if (protocol === 'grpc') {
      url = endpoint ?? DEFAULT_GRPC_ENDPOINT;
      const parsed = grpcAddress(url);
      address = parsed.address;
      insecure = parsed.scheme === 'http' || (parsed.scheme === undefined && insecureFlag) || parsed.scheme === 'unix';
    } else {
      const specific = endpointName !== 'OTEL_EXPORTER_OTLP_ENDPOINT' && endpoint !== undefined;
      httpUrl = httpSignalUrl(
        endpointName,
        endpoint ?? DEFAULT_HTTP_ENDPOINT,
        specific,
        SIGNAL_PATHS[signal],
        warnings,
      );
      url = httpUrl;
      insecure = httpUrl.startsWith('http:');
    }
    const [certName, certPath] = pick('CERTIFICATE');
    let rootCertificate: Buffer | undefined;
    if (certPath !== undefined && !insecure) {
      try {
        rootCertificate = readFileSync(certPath);
      } catch (err) {
        warnings.push(`${certName}: cannot read ${certPath} (${(err as Error).message}); using the system's roots`);
      }
    }
    const [headersName, headersRaw] = pick('HEADERS');
    const [timeoutName] = pick('TIMEOUT');
    const [compressionName, compressionRaw] = pick('COMPRESSION');
    let compression: 'gzip' | 'none' = 'none';
    if (compressionRaw !== undefined) {
      const c = compressionRaw.toLowerCase();
      if (c === 'gzip' || c === 'none') compression = c;
      else warnings.push(`${compressionName}="${compressionRaw}" is not gzip or none; using none`);
    }
    return {
      protocol,
      address,
      httpUrl,
      url,
      insecure,
      rootCertificate,
      headers: headersRaw === undefined ? {} : parseKeyValues(headersName, headersRaw, warnings),
      timeoutMs: int(timeoutName, 10000, 1),
      compression,
    };
  };

  let sampler = (get('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase() as SamplerKind;
  if (!SAMPLER_KINDS.includes(sampler)) {
    warnings.push(
      `OTEL_TRACES_SAMPLER="${sampler}" is not one of ${SAMPLER_KINDS.join(', ')}; using parentbased_always_on`,
    );
    sampler = 'parentbased_always_on';
  }
  let samplerRatio = 1;
  const ratioRaw = get('OTEL_TRACES_SAMPLER_ARG');
  if (ratioRaw !== undefined && sampler.endsWith('traceidratio')) {
    const r = Number(ratioRaw);
    if (Number.isFinite(r) && r >= 0 && r <= 1) samplerRatio = r;
    else warnings.push(`OTEL_TRACES_SAMPLER_ARG="${ratioRaw}" is not a ratio from 0 to 1; using 1`);
  }

  const resourceRaw = get('OTEL_RESOURCE_ATTRIBUTES');
  const queueSize = int('OTEL_BSP_MAX_QUEUE_SIZE', QUEUE_DEFAULTS.maxQueueSize, 1);
  let batchSize = int('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', QUEUE_DEFAULTS.maxExportBatchSize, 1);
  if (batchSize > queueSize) {
    warnings.push(`OTEL_BSP_MAX_EXPORT_BATCH_SIZE (${batchSize}) exceeds OTEL_BSP_MAX_QUEUE_SIZE; using ${queueSize}`);
    batchSize = queueSize;
  }

  return {
    config: {
      tracesExporter,
      metricsExporters,
      traces: target('TRACES'),
      metrics: target('METRICS'),
      prometheus: {
        host: get('OTEL_EXPORTER_PROMETHEUS_HOST') ?? PROMETHEUS_DEFAULTS.host,
        port: int('OTEL_EXPORTER_PROMETHEUS_PORT', PROMETHEUS_DEFAULTS.port, 1, 65535),
      },
      sampler,
      samplerRatio,
      serviceName: get('OTEL_SERVICE_NAME') ?? 'kong',
      resourceAttributes:
        resourceRaw === undefined ? {} : parseKeyValues('OTEL_RESOURCE_ATTRIBUTES', resourceRaw, warnings),
      metricExportIntervalMs: int('OTEL_METRIC_EXPORT_INTERVAL', 60000, 1),
      metricExportTimeoutMs: int('OTEL_METRIC_EXPORT_TIMEOUT', 30000, 1),
      queue: {
        maxQueueSize: queueSize,
        maxExportBatchSize: batchSize,
        scheduledDelayMs: int('OTEL_BSP_SCHEDULE_DELAY', QUEUE_DEFAULTS.scheduledDelayMs, 0),
        exportTimeoutMs: int('OTEL_BSP_EXPORT_TIMEOUT', QUEUE_DEFAULTS.exportTimeoutMs, 1),
        maxConcurrentExports: int('OTEL_BSP_MAX_CONCURRENT_EXPORTS', QUEUE_DEFAULTS.maxConcurrentExports, 1, 64),
      },
      exportDisabledByDefault:
        anyEndpoint === undefined &&
        get('OTEL_TRACES_EXPORTER') === undefined &&
        get('OTEL_METRICS_EXPORTER') === undefined,
    },
    warnings,
  };
}

/**
 * The URL an OTLP/HTTP exporter POSTs one signal to, as the specification says: the generic
 * endpoint is a base to which "v1/traces" or "v1/metrics" is appended; a per-signal endpoint is
 * used as it is (with "/" when it has no path).
 */
export function httpSignalUrl(
  name: string,
  endpoint: string,
  perSignal: boolean,
  signalPath: string,
  warnings: string[],
): string {
  let url: URL;
  try {
    url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    const fallback = perSignal ? DEFAULT_HTTP_ENDPOINT + '/' + signalPath : DEFAULT_HTTP_ENDPOINT;
    warnings.push(`${name}="${endpoint}" is not an http:// or https:// URL; using ${fallback}`);
    return perSignal ? fallback : `${fallback}/${signalPath}`;
  }
  if (perSignal) return url.href;
  return endpoint.endsWith('/') ? endpoint + signalPath : `${endpoint}/${signalPath}`;
}

/** "http://h:4317" -> "h:4317"; gRPC ignores any path. A bare "h:4317" has no scheme. */
export function grpcAddress(url: string): { address: string; scheme?: string } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(url);
  if (!m) return { address: url };
  const scheme = m[1].toLowerCase();
  if (scheme === 'unix') return { address: url, scheme };
  const hostPort = m[2].split('/')[0];
  const defaultPort = scheme === 'https' ? '443' : '4317';
  const hasPort = /:\d+$/.test(hostPort) && !/^\[[^\]]*\]$/.test(hostPort);
  return { address: hasPort ? hostPort : `${hostPort}:${defaultPort}`, scheme };
}

/** W3C-baggage-like "k1=v1,k2=v2" with percent-encoding, as OTEL_*_HEADERS and OTEL_RESOURCE_ATTRIBUTES use. */
export function parseKeyValues(name: string, raw: string, warnings: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of raw.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      warnings.push(`${name}: ignoring "${part.trim()}" (not key=value)`);
      continue;
    }
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      warnings.push(`${name}: ignoring "${part.trim()}" (bad percent-encoding)`);
    }
  }
  return out;
}

function parseBool(name: string, raw: string, warnings: string[]): boolean {
  const v = raw.toLowerCase();
  if (v === 'true') return true;
  if (v !== 'false') warnings.push(`${name}="${raw}" is not true or false; using false`);
  return false;
}
