/**
 * HttpExchange -> span data: one SERVER span per inbound request, one CLIENT span per upstream
 * attempt, shaped as the SDK's ReadableSpan so the stock OTLP exporter serializes it.
 *
 * No SDK Span objects, no context propagation, no processors: a span here is one plain object
 * built once from finished data. That is what keeps the export path at 100k+ spans/s.
 */
import { SpanKind, SpanStatusCode, type Attributes, type HrTime, type SpanContext } from '@opentelemetry/api';
import { randomFillSync } from 'node:crypto';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
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

export interface SpanBuilderDeps {
  clock: WallClock;
  resource: Resource;
  scope: InstrumentationScope;
  sampler: Sampler;
  redactQuery: (query: string) => string;
  routes?: RouteResolver;
}

const NO_LINKS: never[] = [];
const NO_EVENTS: never[] = [];
const UNSET_STATUS = { code: SpanStatusCode.UNSET };

/** The W3C tracestate as the serializer reads it: only serialize() is called. */
class RawTraceState {
  constructor(private readonly value: string) {}
  serialize(): string {
    return this.value;
  }
  set(): this {
    return this;
  }
  unset(): this {
    return this;
  }
  get(): undefined {
    return undefined;
  }
}

/** A finished span; the method lives on the prototype so no closure is made per span. */
export class LiteSpan implements ReadableSpan {
  readonly ended = true;
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;

  constructor(
    readonly name: string,
    readonly kind: SpanKind,
    private readonly ctx: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
    readonly duration: HrTime,
    readonly status: { code: SpanStatusCode; message?: string },
    readonly attributes: Attributes,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {}

  spanContext(): SpanContext {
    return this.ctx;
  }
}

/**
 * The span of one exchange, or undefined when it is not sampled (metrics still count it).
 * Client exchanges follow the decision of the trace they belong to, so traces stay whole.
 */
export function buildSpan(ex: HttpExchange, deps: SpanBuilderDeps): LiteSpan | undefined {
  const ids = ex.ids ?? ex.parent?.ids;
  if (ids !== undefined) {
    const decisionIds = ex.direction === 'client' && ex.parent?.ids ? ex.parent.ids : ids;
    if (!decisionIds.sampled || !deps.sampler(decisionIds)) return undefined;
  }
  return ex.direction === 'server' ? serverSpan(ex, deps) : clientSpan(ex, deps);
}

function serverSpan(ex: HttpExchange, deps: SpanBuilderDeps): LiteSpan {
  const ids = ex.ids ?? freshIds();
  const route = deps.routes?.(ex);
  const method = normalizeMethod(ex.method);
  const server = serverOf(ex);
  const attrs: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: method,
    [ATTR_URL_PATH]: ex.path,
    [ATTR_URL_SCHEME]: schemeOf(ex),
    [ATTR_NETWORK_PROTOCOL_VERSION]: ex.httpVersion,
    [sc.ATTR_HTTP_REQUEST_BODY_SIZE]: ex.requestBodySize,
    [sc.ATTR_HTTP_RESPONSE_BODY_SIZE]: ex.responseBodySize,
    [sc.ATTR_KONG_RESPONSE_SOURCE]: responseSource(ex),
  };
  if (method !== ex.method) attrs[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = ex.method;
  if (ex.query !== undefined) attrs[ATTR_URL_QUERY] = deps.redactQuery(ex.query);
  if (server.address !== undefined) attrs[ATTR_SERVER_ADDRESS] = server.address;
  if (server.port !== undefined) attrs[ATTR_SERVER_PORT] = server.port;
  if (ex.peer !== undefined) {
    attrs[ATTR_CLIENT_ADDRESS] = ex.peer.address;
    attrs[ATTR_CLIENT_PORT] = ex.peer.port;
  }
  if (ex.userAgent !== undefined) attrs[ATTR_USER_AGENT_ORIGINAL] = ex.userAgent;
  if (ex.statusCode > 0) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = ex.statusCode;
  if (route?.route !== undefined) attrs[ATTR_HTTP_ROUTE] = route.route;
  if (route?.routeName !== undefined) attrs[sc.ATTR_KONG_ROUTE_NAME] = route.routeName;
  if (route?.serviceName !== undefined) attrs[sc.ATTR_KONG_SERVICE_NAME] = route.serviceName;

  const proxyMs = kongHeaderMs(ex, 'x-kong-proxy-latency');
  const upstreamMs = kongHeaderMs(ex, 'x-kong-upstream-latency');
  const responseMs = kongHeaderMs(ex, 'x-kong-response-latency');
  if (proxyMs !== undefined) attrs[sc.ATTR_KONG_PROXY_LATENCY_MS] = proxyMs;
  if (upstreamMs !== undefined) attrs[sc.ATTR_KONG_UPSTREAM_LATENCY_MS] = upstreamMs;
  if (responseMs !== undefined) attrs[sc.ATTR_KONG_RESPONSE_LATENCY_MS] = responseMs;
  const split = kongSplit(ex);
  if (split !== undefined) {
    attrs[sc.ATTR_KONG_BEFORE_UPSTREAM_NS] = split.beforeUpstreamNs;
    attrs[sc.ATTR_KONG_UPSTREAM_NS] = split.upstreamNs;
    attrs[sc.ATTR_KONG_AFTER_UPSTREAM_NS] = split.afterUpstreamNs;
    attrs[sc.ATTR_KONG_ATTEMPTS] = ex.attempts!.length;
  }

  const errorType = ex.errorCode ?? (ex.statusCode >= 500 ? String(ex.statusCode) : undefined);
  if (errorType !== undefined) attrs[ATTR_ERROR_TYPE] = errorType;
  const status = errorType !== undefined ? { code: SpanStatusCode.ERROR, message: ex.errorCode } : UNSET_STATUS;
  const parent =
    ids.parentSpanId !== undefined ? spanContext(ids.traceId, ids.parentSpanId, ids, ids.remoteParent) : undefined;
  return finish(ex, deps, name(method, route?.route), SpanKind.SERVER, ids, ids.spanId, parent, status, attrs);
}

function clientSpan(ex: HttpExchange, deps: SpanBuilderDeps): LiteSpan {
  const serverIds = ex.parent?.ids;
  const ids = ex.ids ?? (serverIds ? { ...serverIds, spanId: randomHex(16), parentSpanId: serverIds.spanId } : freshIds());
  const parentSpanId = ids.parentSpanId ?? serverIds?.spanId;
  const method = normalizeMethod(ex.method);
  const server = serverOf(ex);
  const scheme = schemeOf(ex);
  const attrs: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: method,
    [ATTR_URL_SCHEME]: scheme,
    [ATTR_NETWORK_PROTOCOL_VERSION]: ex.httpVersion,
    [sc.ATTR_HTTP_REQUEST_BODY_SIZE]: ex.requestBodySize,
    [sc.ATTR_HTTP_RESPONSE_BODY_SIZE]: ex.responseBodySize,
  };
  if (method !== ex.method) attrs[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = ex.method;
  if (server.address !== undefined) {
    attrs[ATTR_SERVER_ADDRESS] = server.address;
    const hostPart = server.address.includes(':') ? `[${server.address}]` : server.address;
    const portPart = server.port !== undefined && server.port !== (scheme === 'https' ? 443 : 80) ? `:${server.port}` : '';
    const query = ex.query !== undefined ? `?${deps.redactQuery(ex.query)}` : '';
    attrs[ATTR_URL_FULL] = `${scheme}://${hostPart}${portPart}${ex.path}${query}`;
  }
  if (server.port !== undefined) attrs[ATTR_SERVER_PORT] = server.port;
  if (ex.peer !== undefined) {
    attrs[ATTR_NETWORK_PEER_ADDRESS] = ex.peer.address;
    attrs[ATTR_NETWORK_PEER_PORT] = ex.peer.port;
  }
  if (ex.statusCode > 0) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = ex.statusCode;
  const attempt = ex.parent?.attempts?.indexOf(ex) ?? -1;
  if (attempt > 0) attrs[ATTR_HTTP_REQUEST_RESEND_COUNT] = attempt;

  const errorType = ex.errorCode ?? (ex.statusCode >= 400 ? String(ex.statusCode) : undefined);
  if (errorType !== undefined) attrs[ATTR_ERROR_TYPE] = errorType;
  const status = errorType !== undefined ? { code: SpanStatusCode.ERROR, message: ex.errorCode } : UNSET_STATUS;
  const parent = parentSpanId !== undefined ? spanContext(ids.traceId, parentSpanId, ids, false) : undefined;
  return finish(ex, deps, method === '_OTHER' ? 'HTTP' : method, SpanKind.CLIENT, ids, ids.spanId, parent, status, attrs);
}

function finish(
  ex: HttpExchange,
  deps: SpanBuilderDeps,
  spanName: string,
  kind: SpanKind,
  ids: TraceIds,
  spanId: string,
  parent: SpanContext | undefined,
  status: { code: SpanStatusCode; message?: string },
  attrs: Attributes,
): LiteSpan {
  const end = ex.endNs >= ex.startNs ? ex.endNs : ex.startNs;
  const durationNs = end - ex.startNs;
  return new LiteSpan(
    spanName,
    kind,
    spanContext(ids.traceId, spanId, ids, false),
    parent,
    deps.clock.toHrTime(ex.startNs),
    deps.clock.toHrTime(end),
    [Math.floor(durationNs / 1e9), durationNs % 1e9],
    status,
    attrs,
    deps.resource,
    deps.scope,
  );
}

function spanContext(traceId: string, spanId: string, ids: TraceIds, isRemote: boolean): SpanContext {
  const ctx: SpanContext = { traceId, spanId, traceFlags: ids.sampled ? 1 : 0, isRemote };
  if (ids.traceState !== undefined && ids.traceState !== '') {
    ctx.traceState = new RawTraceState(ids.traceState) as unknown as SpanContext['traceState'];
  }
  return ctx;
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
