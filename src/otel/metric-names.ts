/**
 * Every metric the agent exports: the single list the code, the README and the Grafana
 * dashboard are built from. Names and units follow the semantic conventions where one exists.
 */

export type MetricKind = 'histogram' | 'counter' | 'updowncounter' | 'gauge';

export interface MetricName {
  name: string;
  unit: string;
  kind: MetricKind;
  description: string;
  attributes: string[];
}

/**
 * Not server.address/server.port: opt-in in the semantic conventions, and Host is chosen by the
 * client, so it would let any client mint series. Route and service names are bounded by Kong's
 * configuration.
 */
export const SERVER_ATTRIBUTES = [
  'http.request.method',
  'http.response.status_code',
  'http.route',
  'kong.route.name',
  'kong.service.name',
  'url.scheme',
  'error.type',
  'kong.response.source',
];
export const CLIENT_ATTRIBUTES = [
  'http.request.method',
  'http.response.status_code',
  'server.address',
  'server.port',
  'error.type',
];

/**
 * HTTP durations (seconds): the semantic-convention buckets, with five finer ones below 5 ms
 * first. A gateway answers in 0.3-3 ms, all of which the convention's first bucket would hold, so
 * no percentile (Grafana's histogram_quantile, the live view's) could tell them apart.
 */
export const DURATION_BUCKETS_S = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];
/** Powers of four from 64 B to 16 MiB: body sizes span several orders of magnitude. */
export const SIZE_BUCKETS_BYTES = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216];

export const METRICS: MetricName[] = [
  {
    name: 'http.server.request.duration',
    unit: 's',
    kind: 'histogram',
    description: 'Duration of requests Kong served, first request byte to last response byte',
    attributes: SERVER_ATTRIBUTES,
  },
  {
    name: 'http.server.active_requests',
    unit: '{request}',
    kind: 'updowncounter',
    description: 'Requests whose head was read and whose response has not ended',
    attributes: ['http.request.method', 'url.scheme'],
  },
  {
    name: 'http.client.request.duration',
    unit: 's',
    kind: 'histogram',
    description: "Duration of Kong's upstream attempts (each retry counts)",
    attributes: CLIENT_ATTRIBUTES,
  },
  {
    name: 'http.server.request.body.size',
    unit: 'By',
    kind: 'histogram',
    description: 'Request body bytes of requests Kong served',
    attributes: SERVER_ATTRIBUTES,
  },
  {
    name: 'http.server.response.body.size',
    unit: 'By',
    kind: 'histogram',
    description: 'Response body bytes of requests Kong served',
    attributes: SERVER_ATTRIBUTES,
  },
  {
    name: 'kong.latency.proxy',
    unit: 's',
    kind: 'histogram',
    description:
      'Time in Kong before the first upstream byte (plugins, routing, request buffering); the whole request when Kong answered alone',
    attributes: SERVER_ATTRIBUTES,
  },
  {
    name: 'kong.latency.upstream',
    unit: 's',
    kind: 'histogram',
    description: 'First upstream byte written to last upstream response byte, all attempts',
    attributes: SERVER_ATTRIBUTES,
  },
  {
    name: 'kong_watcher.events.received',
    unit: '{event}',
    kind: 'counter',
    description: 'Records received from the kernel',
    attributes: [],
  },
  {
    name: 'kong_watcher.events.lost',
    unit: '{event}',
    kind: 'counter',
    description: 'Records the kernel could not deliver (ring buffer full)',
    attributes: [],
  },
  {
    name: 'kong_watcher.decode.errors',
    unit: '{record}',
    kind: 'counter',
    description: 'Kernel records and exchange frames whose sizes did not add up (skipped)',
    attributes: [],
  },
  {
    name: 'kong_watcher.connections',
    unit: '{connection}',
    kind: 'gauge',
    description: 'Connections being followed',
    attributes: [],
  },
  {
    name: 'kong_watcher.connections.evicted',
    unit: '{connection}',
    kind: 'counter',
    description: 'Connections given up to stay within the connection bound (their exchanges end with error evicted)',
    attributes: [],
  },
  {
    name: 'kong_watcher.http.protocol_errors',
    unit: '{message}',
    kind: 'counter',
    description: 'HTTP messages that could not be framed; the stream was resynchronised after them',
    attributes: [],
  },
  {
    name: 'kong_watcher.requests.dropped',
    unit: '{request}',
    kind: 'counter',
    description: 'Requests counted but not reported: too many pipelined on one connection, or never answered',
    attributes: [],
  },
  {
    name: 'kong_watcher.upstream.unmatched',
    unit: '{request}',
    kind: 'counter',
    description: "Upstream calls matched to no inbound request (Kong's own calls)",
    attributes: [],
  },
  {
    name: 'kong_watcher.spans.exported',
    unit: '{span}',
    kind: 'counter',
    description: 'Spans the OTLP receiver accepted',
    attributes: [],
  },
  {
    name: 'kong_watcher.spans.dropped',
    unit: '{span}',
    kind: 'counter',
    description: 'Spans lost: export queue full, export failed after retries, or unsent at shutdown',
    attributes: ['reason'],
  },
  {
    name: 'kong_watcher.export.failures',
    unit: '{request}',
    kind: 'counter',
    description: 'Span export requests that failed after retries',
    attributes: [],
  },
  {
    name: 'kong_watcher.ringbuf.fill',
    unit: '1',
    kind: 'gauge',
    description: 'Fill ratio of the BPF ring buffer at the last drain (0..1)',
    attributes: [],
  },
  {
    name: 'kong_watcher.processes.monitored',
    unit: '{process}',
    kind: 'gauge',
    description: 'Kong nginx processes being traced',
    attributes: [],
  },
  {
    name: 'process.cpu.time',
    unit: 's',
    kind: 'counter',
    description: "The agent's CPU time",
    attributes: ['cpu.mode'],
  },
  {
    name: 'process.memory.usage',
    unit: 'By',
    kind: 'updowncounter',
    description: "The agent's resident memory",
    attributes: [],
  },
];

export function metricByName(name: string): MetricName {
  const m = METRICS.find((x) => x.name === name);
  if (!m) throw new Error(`unknown metric ${name}`);
  return m;
}
