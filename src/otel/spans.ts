/**
 * HttpExchange -> span data: one SERVER span per inbound request, one CLIENT span per upstream
 * attempt, as a SpanRecord that the OTLP encoder writes straight to protobuf.
 *
 * No SDK Span objects, no context propagation, no processors: a span here is one plain object
 * built once from finished data. That is what keeps the export path at 100k+ spans/s.
 */
import { SpanKind, SpanStatusCode, type Attributes, type AttributeValue } from '@opentelemetry/api';
import { randomFillSync } from 'node:crypto';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { HttpExchange, TraceIds } from '../requests/types';
import { normalizeMethod, schemeOf, serverOf } from './http-fields';
import { kongHeaderMs, kongSplit, responseSource } from './kong-timing';
import type { Sampler } from './sampler';
import * as sc from './semconv';

/** The part of src/clock.ts spans need: relative monotonic ns -> wall-clock HrTime, exactly. */
export interface WallClock {
  toHrTime(relNs: number): [number, number];
}

export interface RouteInfo {
  /** the matching route path (a template, never the raw path): http.route */
  route?: string;
  routeName?: string;
  serviceName?: string;
}

export type RouteResolver = (ex: HttpExchange) => RouteInfo | undefined;

/** The Kubernetes pod of a Kong process, for an agent that watches a whole node. */
export interface PodLabels {
  name?: string;
  namespace?: string;
  uid?: string;
}

export type PodResolver = (pid: number) => PodLabels | undefined;

export interface SpanBuilderDeps {
  clock: WallClock;
  sampler: Sampler;
  redactQuery: (query: string) => string;
  routes?: RouteResolver;
  pods?: PodResolver;
}

/**
 * Flat key/value pairs. An object with this many conditionally added keys falls into V8's
 * dictionary mode, which made building and walking it cost more than encoding the span.
 */
export type SpanAttributes = (string | AttributeValue)[];

/** [seconds, nanoseconds] since the epoch, exact to the ns */
export type WallTime = [number, number];

/**
 * A finished span, everything the wire needs and nothing else. Resource and scope are not
 * here: they are the same for every span and the encoder writes them once per batch.
 */
export class SpanRecord {
  constructor(
    readonly name: string,
    readonly kind: SpanKind,
    /** 32 lowercase hex chars */
    readonly traceId: string,
    /** 16 lowercase hex chars */
    readonly spanId: string,
    readonly parentSpanId: string | undefined,
    /** the parent came from the caller (traceparent/B3), not from this agent */
    readonly parentIsRemote: boolean,
    /** W3C tracestate, as received */
    readonly traceState: string | undefined,
    /** W3C trace flags (1 = sampled) */
    readonly traceFlags: number,
    readonly startTime: WallTime,
    readonly endTime: WallTime,
    readonly statusCode: SpanStatusCode,
    readonly statusMessage: string | undefined,
    /** key, value, key, value...: in the order they go on the wire */
    readonly attributeList: SpanAttributes,
  ) {}

  /** The attributes as an object, for tests and the console; the encoder reads attributeList. */
  get attributes(): Attributes {
    const out: Attributes = {};
    for (let i = 0; i < this.attributeList.length; i += 2)
      out[this.attributeList[i] as string] = this.attributeList[i + 1];
    return out;
  }
}

/**
 * The span of one exchange, or undefined when it is not sampled (metrics still count it).
 * Client exchanges follow the decision of the trace they belong to, so traces stay whole.
 */
export function buildSpan(ex: HttpExchange, deps: SpanBuilderDeps): SpanRecord | undefined {
  const ids = ex.ids ?? ex.parent?.ids;
  if (ids !== undefined) {
    const decisionIds = ex.direction === 'client' && ex.parent?.ids ? ex.parent.ids : ids;
    if (!decisionIds.sampled || !deps.sampler(decisionIds)) return undefined;
  }
  return ex.direction === 'server' ? serverSpan(ex, deps) : clientSpan(ex, deps);
}

function serverSpan(ex: HttpExchange, deps: SpanBuilderDeps): SpanRecord {
  const ids = ex.ids ?? freshIds();
  const route = deps.routes?.(ex);
  const method = normalizeMethod(ex.method);
  const server = serverOf(ex);
  // prettier-ignore
  const attrs: SpanAttributes = [
    ATTR_HTTP_REQUEST_METHOD, method,
    ATTR_URL_PATH, ex.path,
    ATTR_URL_SCHEME, schemeOf(ex),
    ATTR_NETWORK_PROTOCOL_VERSION, ex.httpVersion,
    sc.ATTR_HTTP_REQUEST_BODY_SIZE, ex.requestBodySize,
    sc.ATTR_HTTP_RESPONSE_BODY_SIZE, ex.responseBodySize,
    sc.ATTR_KONG_RESPONSE_SOURCE, responseSource(ex),
  ];
  if (method !== ex.method) attrs.push(ATTR_HTTP_REQUEST_METHOD_ORIGINAL, ex.method);
  if (ex.query !== undefined) attrs.push(ATTR_URL_QUERY, deps.redactQuery(ex.query));
  if (server.address !== undefined) attrs.push(ATTR_SERVER_ADDRESS, server.address);
  if (server.port !== undefined) attrs.push(ATTR_SERVER_PORT, server.port);
  if (ex.peer !== undefined) {
    attrs.push(ATTR_CLIENT_ADDRESS, ex.peer.address);
    attrs.push(ATTR_CLIENT_PORT, ex.peer.port);
  }
  if (ex.userAgent !== undefined) attrs.push(ATTR_USER_AGENT_ORIGINAL, ex.userAgent);
  if (ex.statusCode > 0) attrs.push(ATTR_HTTP_RESPONSE_STATUS_CODE, ex.statusCode);
  if (route?.route !== undefined) attrs.push(ATTR_HTTP_ROUTE, route.route);
  if (route?.routeName !== undefined) attrs.push(sc.ATTR_KONG_ROUTE_NAME, route.routeName);
  if (route?.serviceName !== undefined) attrs.push(sc.ATTR_KONG_SERVICE_NAME, route.serviceName);

  const proxyMs = kongHeaderMs(ex, 'x-kong-proxy-latency');
  const upstreamMs = kongHeaderMs(ex, 'x-kong-upstream-latency');
  const responseMs = kongHeaderMs(ex, 'x-kong-response-latency');
  if (proxyMs !== undefined) attrs.push(sc.ATTR_KONG_PROXY_LATENCY_MS, proxyMs);
  if (upstreamMs !== undefined) attrs.push(sc.ATTR_KONG_UPSTREAM_LATENCY_MS, upstreamMs);
  if (responseMs !== undefined) attrs.push(sc.ATTR_KONG_RESPONSE_LATENCY_MS, responseMs);
  const split = kongSplit(ex);
  if (split !== undefined) {
    attrs.push(sc.ATTR_KONG_BEFORE_UPSTREAM_NS, split.beforeUpstreamNs);
    attrs.push(sc.ATTR_KONG_UPSTREAM_NS, split.upstreamNs);
    attrs.push(sc.ATTR_KONG_AFTER_UPSTREAM_NS, split.afterUpstreamNs);
    attrs.push(sc.ATTR_KONG_ATTEMPTS, ex.attempts!.length);
  }

  if (ex.luaPhaseNs !== undefined) pushLuaPhases(attrs, ex.luaPhaseNs);

  const errorType = ex.errorCode ?? (ex.statusCode >= 500 ? String(ex.statusCode) : undefined);
  if (errorType !== undefined) attrs.push(ATTR_ERROR_TYPE, errorType);
  const error = errorType !== undefined;
  return finish(
    ex,
    deps,
    name(method, route?.route),
    SpanKind.SERVER,
    ids,
    ids.spanId,
    ids.parentSpanId,
    ids.remoteParent,
    error,
    attrs,
  );
}

function clientSpan(ex: HttpExchange, deps: SpanBuilderDeps): SpanRecord {
  const serverIds = ex.parent?.ids;
  const ids =
    ex.ids ?? (serverIds ? { ...serverIds, spanId: randomHex(16), parentSpanId: serverIds.spanId } : freshIds());
  const parentSpanId = ids.parentSpanId ?? serverIds?.spanId;
  const method = normalizeMethod(ex.method);
  const server = serverOf(ex);
  const scheme = schemeOf(ex);
  // prettier-ignore
  const attrs: SpanAttributes = [
    ATTR_HTTP_REQUEST_METHOD, method,
    ATTR_URL_SCHEME, scheme,
    ATTR_NETWORK_PROTOCOL_VERSION, ex.httpVersion,
    sc.ATTR_HTTP_REQUEST_BODY_SIZE, ex.requestBodySize,
    sc.ATTR_HTTP_RESPONSE_BODY_SIZE, ex.responseBodySize,
  ];
  if (method !== ex.method) attrs.push(ATTR_HTTP_REQUEST_METHOD_ORIGINAL, ex.method);
  if (server.address !== undefined) {
    attrs.push(ATTR_SERVER_ADDRESS, server.address);
    const hostPart = server.address.includes(':') ? `[${server.address}]` : server.address;
    const portPart =
      server.port !== undefined && server.port !== (scheme === 'https' ? 443 : 80) ? `:${server.port}` : '';
    const query = ex.query !== undefined ? `?${deps.redactQuery(ex.query)}` : '';
    attrs.push(ATTR_URL_FULL, `${scheme}://${hostPart}${portPart}${ex.path}${query}`);
  }
  if (server.port !== undefined) attrs.push(ATTR_SERVER_PORT, server.port);
  if (ex.peer !== undefined) {
    attrs.push(ATTR_NETWORK_PEER_ADDRESS, ex.peer.address);
    attrs.push(ATTR_NETWORK_PEER_PORT, ex.peer.port);
  }
  if (ex.statusCode > 0) attrs.push(ATTR_HTTP_RESPONSE_STATUS_CODE, ex.statusCode);
  const attempt = ex.parent?.attempts?.indexOf(ex) ?? -1;
  if (attempt > 0) attrs.push(ATTR_HTTP_REQUEST_RESEND_COUNT, attempt);

  const errorType = ex.errorCode ?? (ex.statusCode >= 400 ? String(ex.statusCode) : undefined);
  if (errorType !== undefined) attrs.push(ATTR_ERROR_TYPE, errorType);
  const error = errorType !== undefined;
  return finish(
    ex,
    deps,
    method === '_OTHER' ? 'HTTP' : method,
    SpanKind.CLIENT,
    ids,
    ids.spanId,
    parentSpanId,
    false,
    error,
    attrs,
  );
}

function finish(
  ex: HttpExchange,
  deps: SpanBuilderDeps,
  spanName: string,
  kind: SpanKind,
  ids: TraceIds,
  spanId: string,
  parentSpanId: string | undefined,
  parentIsRemote: boolean,
  error: boolean,
  attrs: SpanAttributes,
): SpanRecord {
  const end = ex.endNs >= ex.startNs ? ex.endNs : ex.startNs;
  const pod = deps.pods?.(ex.pid);
  if (pod !== undefined) pushPodAttributes(attrs, pod);
  return new SpanRecord(
    spanName,
    kind,
    ids.traceId,
    spanId,
    parentSpanId,
    parentSpanId !== undefined && parentIsRemote,
    ids.traceState !== undefined && ids.traceState !== '' ? ids.traceState : undefined,
    ids.sampled ? 1 : 0,
    deps.clock.toHrTime(ex.startNs),
    deps.clock.toHrTime(end),
    error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET,
    error ? ex.errorCode : undefined,
    attrs,
  );
}

/** Semantic conventions: "{method} {http.route}", or the method alone; "_OTHER" becomes "HTTP". */
function name(method: string, route: string | undefined): string {
  const m = method === '_OTHER' ? 'HTTP' : method;
  return route !== undefined ? `${m} ${route}` : m;
}

/** Ids for an exchange the assembly left without any (should not happen; a span is still better than none). */
function freshIds(): TraceIds {
  return { traceId: randomHex(32), spanId: randomHex(16), sampled: true, remoteParent: false };
}

const POOL = Buffer.alloc(4096);
let poolOffset = POOL.length;

/** Random hex from a refilled pool: one getrandom per 4 KiB rather than per id. */
export function randomHex(chars: number): string {
  const bytes = chars / 2;
  if (poolOffset + bytes > POOL.length) {
    randomFillSync(POOL);
    poolOffset = 0;
  }
  const s = POOL.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return s;
}

export function pushPodAttributes(attrs: SpanAttributes, pod: PodLabels): void {
  if (pod.name !== undefined) attrs.push(sc.ATTR_K8S_POD_NAME, pod.name);
  if (pod.namespace !== undefined) attrs.push(sc.ATTR_K8S_NAMESPACE_NAME, pod.namespace);
  if (pod.uid !== undefined) attrs.push(sc.ATTR_K8S_POD_UID, pod.uid);
}

/** Attribute names by LuaPhase value (src/capture/records.ts). */
const LUA_PHASE_ATTRS = [
  '',
  'kong.lua.rewrite_ns',
  'kong.lua.access_ns',
  'kong.lua.content_ns',
  'kong.lua.header_filter_ns',
  'kong.lua.body_filter_ns',
  'kong.lua.log_ns',
  'kong.lua.balancer_ns',
];

function pushLuaPhases(attrs: SpanAttributes, phases: number[]): void {
  let total = 0;
  for (let phase = 1; phase < phases.length && phase < LUA_PHASE_ATTRS.length; phase++) {
    const ns = phases[phase];
    if (ns === undefined) continue;
    attrs.push(LUA_PHASE_ATTRS[phase], ns);
    total += ns;
  }
  attrs.push(sc.ATTR_KONG_LUA_TOTAL_NS, total);
}
