/**
 * RED metrics aggregated in place from enriched exchanges, one series per bounded attribute set,
 * handed to the SDK's reader as a MetricProducer at collection time.
 *
 * An exchange costs a numeric series lookup (method, status, error, scheme, response source, and
 * the route, upstream and pod indexes the enrichment stage decided) and a few typed-array
 * increments. Attribute objects are built once per series; nothing is allocated per exchange.
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
import { Method, METHOD_NAMES } from '../capture/exchange-layout';
import { ERROR_GRPC, type EnrichedExchange } from '../enrich/enriched';
import type { PodInfo } from '../enrich/pods';
import { DURATION_BUCKETS_S, SIZE_BUCKETS_BYTES, metricByName, type MetricName } from './metric-names';
import {
  ATTR_K8S_NAMESPACE_NAME,
  ATTR_K8S_POD_NAME,
  ATTR_KONG_RESPONSE_SOURCE,
  ATTR_KONG_ROUTE_NAME,
  ATTR_KONG_SERVICE_NAME,
} from './semconv';
import { HistogramColumns, SeriesIndex } from './series';

/** Beyond this many series per family, new attribute sets fold into one overflow series (spec). */
export const MAX_SERIES = 2000;
const OVERFLOW_ATTRS: Attributes = { 'otel.metric.overflow': true };
const NS = 1e-9;

/** The figures of the stats line, from the same counts as the metrics. */
export interface RequestTotals {
  /** SERVER exchanges finished (each inbound request once, when it ends) */
  requests: number;
  /** of which with a response status */
  responses: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  /** finished without a response (client gone, reset) */
  noResponse: number;
  /** ended abnormally (an error code) */
  errors: number;
  /** mean duration of the responses, ms */
  avgResponseMs: number;
  /** CLIENT exchanges: upstream attempts, retries included */
  upstreamAttempts: number;
}

/** SERVER requests in flight now, index = Method * 2 + (TLS ? 1 : 0), as the assembler counts them. */
export type ActiveRequests = () => readonly number[] | undefined;

/** The SERVER duration families an in-process reader can read: request, kong.latency.proxy, kong.latency.upstream. */
export type ServerFamily = 'duration' | 'proxy' | 'upstream';

/**
 * The SERVER series read in place by the live view (src/output/live): the very counts collect()
 * exports, so the view and a dashboard agree. Series are only ever added, and a series keeps its
 * index and attributes for the agent's life. Buckets are DURATION_BUCKETS_S plus the last one.
 */
export interface HttpSeriesReader {
  readonly serverSeriesCount: number;
  serverAttributes(series: number): Attributes;
  /** Adds the series' cumulative bucket counts of one family into `into` from `at`; returns its count. */
  addServerBuckets(family: ServerFamily, series: number, into: Float64Array, at: number): number;
  /** The series' sum of one family, seconds. */
  serverSum(family: ServerFamily, series: number): number;
}

/** One family group's series: the index, one attribute set and start time per series, the overflow row. */
class SeriesSet {
  readonly index = new SeriesIndex();
  readonly attributes: Attributes[] = [];
  readonly starts: HrTime[] = [];
  private overflow = -1;

  get size(): number {
    return this.attributes.length;
  }

  /** The series of a key; -1 when it is new (the caller builds its attributes and calls add). */
  find(a: number, b: number, c: number, overflowing: boolean): number {
    if (overflowing) return this.overflowSeries();
    return this.index.get(a, b, c);
  }

  add(a: number, b: number, c: number, attributes: Attributes): number {
    if (this.index.size >= MAX_SERIES) return this.overflowSeries();
    const series = this.push(attributes);
    this.index.set(a, b, c, series);
    return series;
  }

  private overflowSeries(): number {
    if (this.overflow < 0) this.overflow = this.push(OVERFLOW_ATTRS);
    return this.overflow;
  }

  private push(attributes: Attributes): number {
    this.attributes.push(attributes);
    this.starts.push(hrTime());
    return this.attributes.length - 1;
  }
}

export class HttpMetrics implements MetricProducer, HttpSeriesReader {
  private readonly server = new SeriesSet();
  private readonly serverDuration = new HistogramColumns(DURATION_BUCKETS_S, NS);
  private readonly requestBody = new HistogramColumns(SIZE_BUCKETS_BYTES, 1);
  private readonly responseBody = new HistogramColumns(SIZE_BUCKETS_BYTES, 1);
  private readonly proxy = new HistogramColumns(DURATION_BUCKETS_S, NS);
  private readonly upstream = new HistogramColumns(DURATION_BUCKETS_S, NS);
  private readonly client = new SeriesSet();
  private readonly clientDuration = new HistogramColumns(DURATION_BUCKETS_S, NS);
  /** active_requests series by Method * 2 + TLS, made when first non-zero */
  private readonly activeAttributes: (Attributes | undefined)[] = [];
  private readonly activeStarts: (HrTime | undefined)[] = [];
  private readonly t = {
    requests: 0,
    responses: 0,
    status2xx: 0,
    status3xx: 0,
    status4xx: 0,
    status5xx: 0,
    noResponse: 0,
    errors: 0,
    responseTimeSumNs: 0,
    upstreamAttempts: 0,
  };

  constructor(
    private readonly resource: Resource,
    private readonly scope: InstrumentationScope,
    private readonly activeRequests?: ActiveRequests,
  ) {}

  record(e: EnrichedExchange): void {
    if (e.ex.isServer) this.recordServer(e);
    else this.recordClient(e);
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
      errors: t.errors,
      avgResponseMs: t.responses > 0 ? t.responseTimeSumNs / t.responses / 1e6 : 0,
      upstreamAttempts: t.upstreamAttempts,
    };
  }

  get serverSeriesCount(): number {
    return this.server.size;
  }

  serverAttributes(series: number): Attributes {
    return this.server.attributes[series];
  }

  addServerBuckets(family: ServerFamily, series: number, into: Float64Array, at: number): number {
    return this.serverFamily(family).addCountsTo(series, into, at);
  }

  serverSum(family: ServerFamily, series: number): number {
    return this.serverFamily(family).sumOf(series);
  }

  private serverFamily(family: ServerFamily): HistogramColumns {
    return family === 'duration' ? this.serverDuration : family === 'proxy' ? this.proxy : this.upstream;
  }

  private recordServer(e: EnrichedExchange): void {
    const ex = e.ex;
    const t = this.t;
    const status = ex.status;
    const durationNs = e.durationNs;
    t.requests++;
    if (ex.error !== 0) t.errors++;
    if (status > 0) {
      t.responses++;
      t.responseTimeSumNs += durationNs;
      if (status >= 500) t.status5xx++;
      else if (status >= 400) t.status4xx++;
      else if (status >= 300) t.status3xx++;
      else if (status >= 200) t.status2xx++;
    } else {
      t.noResponse++;
    }

    const routeIndex = e.route === undefined ? 0 : e.route.index;
    const podIndex = e.pod === undefined ? 0 : e.pod.index;
    const tls = ex.tls ? 1 : 0;
    const a = seriesStatus(e) | (ex.method << 16) | (e.errorKey << 20) | (tls << 24) | (e.responseSource << 25);
    const set = this.server;
    let series = set.find(a, routeIndex, podIndex, routeIndex < 0 || podIndex < 0);
    if (series < 0) series = set.add(a, routeIndex, podIndex, serverAttributes(e));

    const durationBucket = this.serverDuration.bucket(durationNs);
    this.serverDuration.add(series, durationBucket, durationNs);
    this.requestBody.add(series, this.requestBody.bucket(ex.requestBodySize), ex.requestBodySize);
    this.responseBody.add(series, this.responseBody.bucket(ex.responseBodySize), ex.responseBodySize);
    if (e.hasUpstreamSplit) {
      this.proxy.add(series, this.proxy.bucket(e.beforeUpstreamNs), e.beforeUpstreamNs);
      this.upstream.add(series, this.upstream.bucket(e.upstreamNs), e.upstreamNs);
    } else {
      // Kong answered alone (or its attempts were not seen): all of it was Kong's time.
      this.proxy.add(series, durationBucket, durationNs);
    }
  }

  private recordClient(e: EnrichedExchange): void {
    const ex = e.ex;
    this.t.upstreamAttempts++;
    const hostIndex = e.upstream === undefined ? 0 : e.upstream.index;
    const podIndex = e.pod === undefined ? 0 : e.pod.index;
    const a = seriesStatus(e) | (ex.method << 16) | (e.errorKey << 20);
    const set = this.client;
    let series = set.find(a, hostIndex, podIndex, hostIndex < 0 || podIndex < 0);
    if (series < 0) series = set.add(a, hostIndex, podIndex, clientAttributes(e));
    const durationNs = e.durationNs;
    this.clientDuration.add(series, this.clientDuration.bucket(durationNs), durationNs);
  }

  async collect(): Promise<CollectionResult> {
    const now = hrTime();
    const server = this.server;
    const hist = (name: string, columns: HistogramColumns, onlyRecorded = false): MetricData => {
      const points: DataPoint<Histogram>[] = [];
      for (let s = 0; s < server.size; s++) {
        if (onlyRecorded && columns.count(s) === 0) continue;
        points.push(point(server.attributes[s], server.starts[s], now, columns.snapshot(s)));
      }
      return histogramData(metricByName(name), points);
    };
    const clientPoints: DataPoint<Histogram>[] = [];
    for (let s = 0; s < this.client.size; s++) {
      clientPoints.push(point(this.client.attributes[s], this.client.starts[s], now, this.clientDuration.snapshot(s)));
    }
    const metrics: MetricData[] = [
      hist('http.server.request.duration', this.serverDuration),
      hist('http.server.request.body.size', this.requestBody),
      hist('http.server.response.body.size', this.responseBody),
      hist('kong.latency.proxy', this.proxy),
      hist('kong.latency.upstream', this.upstream, true),
      histogramData(metricByName('http.client.request.duration'), clientPoints),
      {
        descriptor: descriptor(metricByName('http.server.active_requests'), ValueType.INT),
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: false,
        dataPoints: this.activePoints(now),
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

  /** A series appears once its count was first non-zero, and then stays (reporting 0 when idle). */
  private activePoints(now: HrTime): DataPoint<number>[] {
    const counts = this.activeRequests?.() ?? [];
    const points: DataPoint<number>[] = [];
    for (let i = 0; i < Method.Max * 2; i++) {
      const value = counts[i] ?? 0;
      if (value > 0 && this.activeAttributes[i] === undefined) {
        this.activeAttributes[i] = {
          [ATTR_HTTP_REQUEST_METHOD]: METHOD_NAMES[i >> 1],
          [ATTR_URL_SCHEME]: (i & 1) === 1 ? 'https' : 'http',
        };
        this.activeStarts[i] = now;
      }
      const attributes = this.activeAttributes[i];
      if (attributes !== undefined) points.push(point(attributes, this.activeStarts[i]!, now, value));
    }
    return points;
  }
}

/** S: method, status, route, route and service names, scheme, error type, response source (and pod). */
function serverAttributes(e: EnrichedExchange): Attributes {
  const ex = e.ex;
  const attrs: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: METHOD_NAMES[ex.method],
    [ATTR_URL_SCHEME]: ex.tls ? 'https' : 'http',
  };
  if (e.pod !== undefined) addPod(attrs, e.pod);
  if (ex.status > 0) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = ex.status;
  const route = e.route;
  if (route !== undefined) {
    if (route.route !== undefined) attrs[ATTR_HTTP_ROUTE] = route.route;
    attrs[ATTR_KONG_ROUTE_NAME] = route.routeName;
    if (route.serviceName !== undefined) attrs[ATTR_KONG_SERVICE_NAME] = route.serviceName;
  }
  if (e.errorType !== undefined) attrs[ATTR_ERROR_TYPE] = e.errorType;
  attrs[ATTR_KONG_RESPONSE_SOURCE] = e.responseSourceName;
  return attrs;
}

/** C: method, status, server address and port (the upstream as Kong addressed it), error type (and pod). */
function clientAttributes(e: EnrichedExchange): Attributes {
  const ex = e.ex;
  const attrs: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: METHOD_NAMES[ex.method] };
  if (e.pod !== undefined) addPod(attrs, e.pod);
  if (ex.status > 0) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = ex.status;
  if (e.upstream !== undefined) {
    attrs[ATTR_SERVER_ADDRESS] = e.upstream.address;
    if (e.upstream.port !== undefined) attrs[ATTR_SERVER_PORT] = e.upstream.port;
  }
  if (e.errorType !== undefined) attrs[ATTR_ERROR_TYPE] = e.errorType;
  return attrs;
}

/** Per-pod series only when a node-wide agent labels them: bounded by the pods on the node. */
function addPod(attrs: Attributes, pod: PodInfo): void {
  if (pod.name !== undefined) attrs[ATTR_K8S_POD_NAME] = pod.name;
  if (pod.namespace !== undefined) attrs[ATTR_K8S_NAMESPACE_NAME] = pod.namespace;
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

/**
 * The status part of a series key (16 bits). A failed gRPC call's error.type is its grpc-status,
 * so that goes in the 6 bits above the HTTP status (3 digits, < 1024).
 */
function seriesStatus(e: EnrichedExchange): number {
  const status = e.ex.status;
  return e.errorKey === ERROR_GRPC ? status | ((Math.min(e.ex.grpcStatus, 62) + 1) << 10) : status;
}
