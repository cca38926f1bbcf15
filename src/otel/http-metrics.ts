/**
 * RED metrics aggregated in place, one series per bounded attribute set, handed to the SDK's
 * reader as a MetricProducer.
 *
 * Recording through the SDK's synchronous instruments hashes the attribute object on every
 * call (several times per request here); at 100k requests/s that alone costs more than the
 * capture. Here a request costs one string key, one Map lookup and a few array increments,
 * and the attribute objects are built once per series.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTime, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { HttpExchange } from '../requests/types';
import { normalizeMethod, schemeOf, serverOf } from './http-fields';
import { kongSplit, responseSource } from './kong-timing';
import { DURATION_BUCKETS_S, SIZE_BUCKETS_BYTES, metricByName, type MetricName } from './metric-names';
import { ATTR_K8S_NAMESPACE_NAME, ATTR_K8S_POD_NAME, ATTR_KONG_RESPONSE_SOURCE } from './semconv';
import type { PodLabels, PodResolver, RouteResolver } from './spans';

/** Beyond this many series per family, new attribute sets fold into one overflow series (spec). */
export const MAX_SERIES = 2000;
const OVERFLOW_ATTRS: Attributes = { 'otel.metric.overflow': true };

class Hist {
  readonly counts: number[];
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  constructor(readonly boundaries: number[]) {
    this.counts = new Array(boundaries.length + 1).fill(0);
  }
  record(v: number): void {
    const b = this.boundaries;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }
  snapshot(): Histogram {
    return {
      buckets: { boundaries: this.boundaries, counts: this.counts.slice() },
      count: this.count,
      sum: this.sum,
      min: this.count > 0 ? this.min : undefined,
      max: this.count > 0 ? this.max : undefined,
    };
  }
}

interface ServerSeries {
  attributes: Attributes;
  start: HrTime;
  duration: Hist;
  requestBody: Hist;
  responseBody: Hist;
  proxy: Hist;
  upstream: Hist;
}

interface ClientSeries {
  attributes: Attributes;
  start: HrTime;
  duration: Hist;
}

interface ActiveSeries {
  attributes: Attributes;
  start: HrTime;
  value: number;
}

/** What the stats line needs, kept as plain counters. */
export interface RequestTotals {
  /** request heads seen (server) */
  requests: number;
  /** server exchanges finished with a response status */
  responses: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  /** finished without a response (client gone, reset) */
  noResponse: number;
  inFlight: number;
  /** mean duration of finished server exchanges, ms */
  avgResponseMs: number;
  upstreamAttempts: number;
}

export class HttpMetrics implements MetricProducer {
  private readonly server = new Map<string, ServerSeries>();
  private readonly client = new Map<string, ClientSeries>();
  private readonly active = new Map<string, ActiveSeries>();
  /** exchanges counted in active_requests, so a missing head can never drive it negative */
  private readonly inFlightSet = new WeakSet<HttpExchange>();
  private readonly t = {
    requests: 0,
    responses: 0,
    status2xx: 0,
    status3xx: 0,
    status4xx: 0,
    status5xx: 0,
    noResponse: 0,
    inFlight: 0,
    finished: 0,
    durationSumNs: 0,
    upstreamAttempts: 0,
  };

  constructor(
    private readonly resource: Resource,
    private readonly scope: InstrumentationScope,
    private readonly routes?: RouteResolver,
    private readonly pods?: PodResolver,
  ) {}

  onRequestHead(ex: HttpExchange): void {
    if (ex.direction !== 'server' || this.inFlightSet.has(ex)) return;
    this.inFlightSet.add(ex);
    this.t.requests++;
    this.t.inFlight++;
    this.activeSeries(ex).value++;
  }

  onExchange(ex: HttpExchange): void {
    if (ex.direction === 'server') this.recordServer(ex);
    else this.recordClient(ex);
  }

  totals(): RequestTotals {
    const t = this.t;
    return {
      requests: t.requests,
      responses: t.responses,
      status2xx: t.status2xx,
      status3xx: t.status3xx,
      status4xx: t.status4xx,
      status5xx: t.status5xx,
      noResponse: t.noResponse,
      inFlight: t.inFlight,
      avgResponseMs: t.finished > 0 ? t.durationSumNs / t.finished / 1e6 : 0,
      upstreamAttempts: t.upstreamAttempts,
    };
  }

  private recordServer(ex: HttpExchange): void {
    if (this.inFlightSet.has(ex)) {
      this.inFlightSet.delete(ex);
      this.t.inFlight--;
      this.activeSeries(ex).value--;
    } else {
      // The head was never reported (e.g. the agent started mid-request): count it now.
      this.t.requests++;
    }
    const durationNs = Math.max(0, ex.endNs - ex.startNs);
    this.t.finished++;
    this.t.durationSumNs += durationNs;
    const status = ex.statusCode;
    if (status > 0) {
      this.t.responses++;
      if (status >= 500) this.t.status5xx++;
      else if (status >= 400) this.t.status4xx++;
      else if (status >= 300) this.t.status3xx++;
      else if (status >= 200) this.t.status2xx++;
    } else {
      this.t.noResponse++;
    }

    const s = this.serverSeries(ex);
    s.duration.record(durationNs / 1e9);
    s.requestBody.record(ex.requestBodySize);
    s.responseBody.record(ex.responseBodySize);
    const split = kongSplit(ex);
    if (split !== undefined) {
      s.proxy.record(split.beforeUpstreamNs / 1e9);
      s.upstream.record(split.upstreamNs / 1e9);
    } else {
      s.proxy.record(durationNs / 1e9);
    }
  }

  private recordClient(ex: HttpExchange): void {
    this.t.upstreamAttempts++;
    const method = normalizeMethod(ex.method);
    const server = serverOf(ex);
    const errorType = ex.errorCode ?? (ex.statusCode >= 400 ? String(ex.statusCode) : '');
    const pod = this.pods?.(ex.pid);
    const key = `${method}\u0000${ex.statusCode}\u0000${server.address ?? ''}\u0000${server.port ?? ''}\u0000${errorType}${podKey(pod)}`;
    let s = this.client.get(key);
    if (s === undefined) {
      const attrs: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: method };
      addPod(attrs, pod);
      if (ex.statusCode > 0) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = ex.statusCode;
      if (server.address !== undefined) attrs[ATTR_SERVER_ADDRESS] = server.address;
      if (server.port !== undefined) attrs[ATTR_SERVER_PORT] = server.port;
      if (errorType !== '') attrs[ATTR_ERROR_TYPE] = errorType;
      s = bounded(this.client, key, attrs, (a) => ({
        attributes: a,
        start: hrTime(),
        duration: new Hist(DURATION_BUCKETS_S),
      }));
    }
    s.duration.record(Math.max(0, ex.endNs - ex.startNs) / 1e9);
  }

  private serverSeries(ex: HttpExchange): ServerSeries {
    const method = normalizeMethod(ex.method);
    const route = this.routes?.(ex)?.route ?? '';
    const scheme = schemeOf(ex);
    const server = serverOf(ex);
    const errorType = ex.errorCode ?? (ex.statusCode >= 500 ? String(ex.statusCode) : '');
    const source = responseSource(ex);
    const pod = this.pods?.(ex.pid);
    const key = `${method}\u0000${ex.statusCode}\u0000${route}\u0000${scheme}\u0000${server.address ?? ''}\u0000${server.port ?? ''}\u0000${errorType}\u0000${source}${podKey(pod)}`;
    const found = this.server.get(key);
    if (found !== undefined) return found;
    const attrs: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_SCHEME]: scheme };
    addPod(attrs, pod);
    if (ex.statusCode > 0) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = ex.statusCode;
    if (route !== '') attrs[ATTR_HTTP_ROUTE] = route;
    if (server.address !== undefined) attrs[ATTR_SERVER_ADDRESS] = server.address;
    if (server.port !== undefined) attrs[ATTR_SERVER_PORT] = server.port;
    if (errorType !== '') attrs[ATTR_ERROR_TYPE] = errorType;
    attrs[ATTR_KONG_RESPONSE_SOURCE] = source;
    return bounded(this.server, key, attrs, (a) => ({
      attributes: a,
      start: hrTime(),
      duration: new Hist(DURATION_BUCKETS_S),
      requestBody: new Hist(SIZE_BUCKETS_BYTES),
      responseBody: new Hist(SIZE_BUCKETS_BYTES),
      proxy: new Hist(DURATION_BUCKETS_S),
      upstream: new Hist(DURATION_BUCKETS_S),
    }));
  }

  private activeSeries(ex: HttpExchange): ActiveSeries {
    const method = normalizeMethod(ex.method);
    const scheme = schemeOf(ex);
    const key = `${method}\u0000${scheme}`;
    const found = this.active.get(key);
    if (found !== undefined) return found;
    return bounded(this.active, key, { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_SCHEME]: scheme }, (a) => ({
      attributes: a,
      start: hrTime(),
      value: 0,
    }));
  }

  async collect(): Promise<CollectionResult> {
    const now = hrTime();
    const server = [...this.server.values()];
    const hist = (name: string, pick: (s: ServerSeries) => Hist): MetricData =>
      histogramData(
        metricByName(name),
        server.map((s) => point(s.attributes, s.start, now, pick(s).snapshot())),
      );
    const metrics: MetricData[] = [
      hist('http.server.request.duration', (s) => s.duration),
      hist('http.server.request.body.size', (s) => s.requestBody),
      hist('http.server.response.body.size', (s) => s.responseBody),
      hist('kong.latency.proxy', (s) => s.proxy),
      histogramData(
        metricByName('kong.latency.upstream'),
        server.filter((s) => s.upstream.count > 0).map((s) => point(s.attributes, s.start, now, s.upstream.snapshot())),
      ),
      histogramData(
        metricByName('http.client.request.duration'),
        [...this.client.values()].map((s) => point(s.attributes, s.start, now, s.duration.snapshot())),
      ),
      {
        descriptor: descriptor(metricByName('http.server.active_requests'), ValueType.INT),
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: false,
        dataPoints: [...this.active.values()].map((s) => point(s.attributes, s.start, now, s.value)),
      },
    ];
    return {
      resourceMetrics: {
        resource: this.resource,
        scopeMetrics: [{ scope: this.scope, metrics: metrics.filter((m) => m.dataPoints.length > 0) }],
      },
      errors: [],
    };
  }
}

function bounded<T>(map: Map<string, T>, key: string, attrs: Attributes, make: (a: Attributes) => T): T {
  if (map.size < MAX_SERIES) {
    const s = make(attrs);
    map.set(key, s);
    return s;
  }
  const overflowKey = '\u0001overflow';
  let s = map.get(overflowKey);
  if (s === undefined) {
    s = make(OVERFLOW_ATTRS);
    map.set(overflowKey, s);
  }
  return s;
}

function descriptor(m: MetricName, valueType: ValueType) {
  return { name: m.name, description: m.description, unit: m.unit, valueType };
}

function point<T>(attributes: Attributes, startTime: HrTime, endTime: HrTime, value: T): DataPoint<T> {
  return { attributes, startTime, endTime, value };
}

function histogramData(m: MetricName, dataPoints: DataPoint<Histogram>[]): MetricData {
  return {
    descriptor: descriptor(m, ValueType.DOUBLE),
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.HISTOGRAM,
    dataPoints,
  };
}

/** Per-pod series only when a node-wide agent labels them: bounded by the pods on the node. */
function podKey(pod: PodLabels | undefined): string {
  return pod === undefined ? '' : `\u0000${pod.namespace ?? ''}/${pod.name ?? ''}`;
}

function addPod(attrs: Attributes, pod: PodLabels | undefined): void {
  if (pod?.name !== undefined) attrs[ATTR_K8S_POD_NAME] = pod.name;
  if (pod?.namespace !== undefined) attrs[ATTR_K8S_NAMESPACE_NAME] = pod.namespace;
}
