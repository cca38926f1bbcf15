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

export type ExporterKind = 'otlp' | 'console' | 'none';
export type { SamplerKind };

export interface OtlpTarget {
  /** host:port (or unix:path) as grpc-js wants it */
  address: string;
  /** the URL as configured, for log lines */
  url: string;
  insecure: boolean;
  /** PEM root certificate(s) for TLS; undefined = system roots */
  rootCertificate?: Buffer;
  headers: Record<string, string>;
  timeoutMs: number;
  compression: 'gzip' | 'none';
}

export interface SpanQueueConfig {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMs: number;
  exportTimeoutMs: number;
  maxConcurrentExports: number;
}

export interface TelemetryConfig {
  tracesExporter: ExporterKind;
  metricsExporter: ExporterKind;
  traces: OtlpTarget;
  metrics: OtlpTarget;
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

const DEFAULT_ENDPOINT = 'http://localhost:4317';

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
    meaning: `OTLP gRPC endpoint for traces and metrics (e.g. ${DEFAULT_ENDPOINT})`,
  },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', default: '', meaning: 'OTLP gRPC endpoint for traces only' },
  { name: 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', default: '', meaning: 'OTLP gRPC endpoint for metrics only' },
  {
    name: 'OTEL_EXPORTER_OTLP_HEADERS',
    default: '',
    meaning: 'gRPC metadata sent with every export: k1=v1,k2=v2 (also _TRACES_/_METRICS_)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_TIMEOUT',
    default: '10000',
    meaning: 'export timeout in ms, retries included (also _TRACES_/_METRICS_)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_INSECURE',
    default: 'false',
    meaning: 'true: plaintext when the endpoint has no scheme (http:// is always plaintext)',
  },
  {
    name: 'OTEL_EXPORTER_OTLP_CERTIFICATE',
    default: '',
    meaning: 'PEM file of the root CA(s) that sign the collector (TLS)',
  },
  { name: 'OTEL_EXPORTER_OTLP_COMPRESSION', default: 'none', meaning: 'gzip or none' },
  {
    name: 'OTEL_TRACES_EXPORTER',
    default: 'otlp when an endpoint is set, else none',
    meaning: 'otlp, console or none',
  },
  {
    name: 'OTEL_METRICS_EXPORTER',
    default: 'otlp when an endpoint is set, else none',
    meaning: 'otlp, console or none',
  },
  {
    name: 'OTEL_TRACES_SAMPLER',
    default: 'parentbased_always_on',
    meaning: 'always_on, always_off, traceidratio, parentbased_{always_on,always_off,traceidratio}',
  },
  {
    name: 'OTEL_TRACES_SAMPLER_ARG',
    default: '1.0',
    meaning: 'ratio 0..1 for the traceidratio samplers (decided from the trace id: whole traces kept)',
  },
  { name: 'OTEL_SERVICE_NAME', default: 'kong', meaning: 'service.name of spans and metrics' },
  { name: 'OTEL_RESOURCE_ATTRIBUTES', default: '', meaning: 'extra resource attributes: k1=v1,k2=v2' },
  { name: 'OTEL_METRIC_EXPORT_INTERVAL', default: '60000', meaning: 'ms between metric exports' },
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
  const exporterKind = (name: string): ExporterKind => {
    const raw = get(name);
    if (raw === undefined) return anyEndpoint !== undefined ? 'otlp' : 'none';
    // The specification allows a list; we run one exporter per signal, the first named.
    const first = raw.split(',')[0].trim().toLowerCase();
    if (first === 'otlp' || first === 'console' || first === 'none') return first;
    warnings.push(`${name}="${raw}" is not otlp, console or none; using otlp`);
    return 'otlp';
  };
  const tracesExporter = exporterKind('OTEL_TRACES_EXPORTER');
  const metricsExporter = exporterKind('OTEL_METRICS_EXPORTER');

  const target = (signal: 'TRACES' | 'METRICS'): OtlpTarget => {
    const pick = (suffix: string): [string, string | undefined] => {
      const specific = `OTEL_EXPORTER_OTLP_${signal}_${suffix}`;
      const generic = `OTEL_EXPORTER_OTLP_${suffix}`;
      const v = get(specific);
      return v !== undefined ? [specific, v] : [generic, get(generic)];
    };
    const [, url = DEFAULT_ENDPOINT] = pick('ENDPOINT');
    const [insecureName, insecureRaw] = pick('INSECURE');
    const insecureFlag = insecureRaw !== undefined && parseBool(insecureName, insecureRaw, warnings);
    const { address, scheme } = grpcAddress(url);
    const insecure = scheme === 'http' || (scheme === undefined && insecureFlag) || scheme === 'unix';
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
      address,
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
      metricsExporter,
      traces: target('TRACES'),
      metrics: target('METRICS'),
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
