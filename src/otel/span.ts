/**
 * What the span queue, the OTLP encoder and the span exporters take: a finished span read through
 * one interface. Ids are bytes, times are read into a caller's tuple, and attributes are written
 * into an AttributeWriter by the span itself, so that a span on the exchange path carries no
 * attribute objects, id strings or time tuples of its own (src/otel/spans.ts).
 *
 * Everything a ReadableSpan needs can be read from here (hex ids with spanIdHex, attributes with
 * spanAttributes), so an adapter for the SDK's exporters wraps a span without copying it.
 */
import type { AttributeValue, Attributes, HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
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
import { ATTR_SAMPLING_RATIO, ATTR_SAMPLING_RULE } from '../enrich/sampler';
import * as sc from './semconv';

/** The attribute keys of exchange spans, by number: the encoder keeps each key's bytes once. */
export const SpanAttr = {
  HttpRequestMethod: 0,
  HttpRequestMethodOriginal: 1,
  UrlPath: 2,
  UrlQuery: 3,
  UrlScheme: 4,
  UrlFull: 5,
  NetworkProtocolVersion: 6,
  HttpRequestBodySize: 7,
  HttpResponseBodySize: 8,
  HttpResponseStatusCode: 9,
  HttpRoute: 10,
  HttpRequestResendCount: 11,
  ServerAddress: 12,
  ServerPort: 13,
  ClientAddress: 14,
  ClientPort: 15,
  NetworkPeerAddress: 16,
  NetworkPeerPort: 17,
  UserAgentOriginal: 18,
  ErrorType: 19,
  KongResponseSource: 20,
  KongRouteName: 21,
  KongServiceName: 22,
  KongProxyLatencyMs: 23,
  KongUpstreamLatencyMs: 24,
  KongResponseLatencyMs: 25,
  KongBeforeUpstreamNs: 26,
  KongUpstreamNs: 27,
  KongAfterUpstreamNs: 28,
  KongUpstreamAttempts: 29,
  KongLuaRewriteNs: 30,
  KongLuaAccessNs: 31,
  KongLuaContentNs: 32,
  KongLuaHeaderFilterNs: 33,
  KongLuaBodyFilterNs: 34,
  KongLuaLogNs: 35,
  KongLuaBalancerNs: 36,
  KongLuaTotalNs: 37,
  K8sPodName: 38,
  K8sNamespaceName: 39,
  K8sPodUid: 40,
  RpcSystem: 41,
  RpcService: 42,
  RpcMethod: 43,
  RpcGrpcStatusCode: 44,
  SamplingRule: 45,
  SamplingRatio: 46,
} as const;
export type SpanAttr = number;

/** SpanAttr of a Lua phase's time = this + its LuaPhase value (src/capture/records.ts). */
export const LUA_PHASE_ATTR_OFFSET = SpanAttr.KongLuaRewriteNs - 1;

/** Attribute names by SpanAttr value. */
export const SPAN_ATTRIBUTE_NAMES: readonly string[] = [
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_URL_FULL,
  ATTR_NETWORK_PROTOCOL_VERSION,
  sc.ATTR_HTTP_REQUEST_BODY_SIZE,
  sc.ATTR_HTTP_RESPONSE_BODY_SIZE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_USER_AGENT_ORIGINAL,
  ATTR_ERROR_TYPE,
  sc.ATTR_KONG_RESPONSE_SOURCE,
  sc.ATTR_KONG_ROUTE_NAME,
  sc.ATTR_KONG_SERVICE_NAME,
  sc.ATTR_KONG_PROXY_LATENCY_MS,
  sc.ATTR_KONG_UPSTREAM_LATENCY_MS,
  sc.ATTR_KONG_RESPONSE_LATENCY_MS,
  sc.ATTR_KONG_BEFORE_UPSTREAM_NS,
  sc.ATTR_KONG_UPSTREAM_NS,
  sc.ATTR_KONG_AFTER_UPSTREAM_NS,
  sc.ATTR_KONG_ATTEMPTS,
  // by LuaPhase value (src/capture/records.ts), 1..7
  'kong.lua.rewrite_ns',
  'kong.lua.access_ns',
  'kong.lua.content_ns',
  'kong.lua.header_filter_ns',
  'kong.lua.body_filter_ns',
  'kong.lua.log_ns',
  'kong.lua.balancer_ns',
  sc.ATTR_KONG_LUA_TOTAL_NS,
  sc.ATTR_K8S_POD_NAME,
  sc.ATTR_K8S_NAMESPACE_NAME,
  sc.ATTR_K8S_POD_UID,
  sc.ATTR_RPC_SYSTEM,
  sc.ATTR_RPC_SERVICE,
  sc.ATTR_RPC_METHOD,
  sc.ATTR_RPC_GRPC_STATUS_CODE,
  ATTR_SAMPLING_RULE,
  ATTR_SAMPLING_RATIO,
];

/**
 * Attributes whose values come from small sets (methods, schemes, routes, services, upstreams,
 * pods, error types): the encoder keeps their last encodings rather than re-encoding them.
 */
const REPEATING: readonly SpanAttr[] = [
  SpanAttr.HttpRequestMethod,
  SpanAttr.UrlScheme,
  SpanAttr.NetworkProtocolVersion,
  SpanAttr.HttpRoute,
  SpanAttr.ServerAddress,
  SpanAttr.NetworkPeerAddress,
  SpanAttr.ErrorType,
  SpanAttr.KongResponseSource,
  SpanAttr.KongRouteName,
  SpanAttr.KongServiceName,
  SpanAttr.K8sPodName,
  SpanAttr.K8sNamespaceName,
  SpanAttr.K8sPodUid,
  SpanAttr.RpcSystem,
  SpanAttr.RpcService,
  SpanAttr.RpcMethod,
  SpanAttr.SamplingRule,
];
export const SPAN_ATTRIBUTE_REPEATS: readonly boolean[] = SPAN_ATTRIBUTE_NAMES.map((_, key) => REPEATING.includes(key));

/** Receives a span's attributes in wire order. */
export interface AttributeWriter {
  str(key: SpanAttr, value: string): void;
  /** A string given as latin1 bytes (a frame's string field): written without making a JS string. */
  latin1(key: SpanAttr, bytes: Uint8Array, at: number, length: number): void;
  int(key: SpanAttr, value: number): void;
  /** Any key, any value: for spans that are not built from exchanges. */
  any(key: string, value: AttributeValue): void;
}

export interface ExportSpan {
  readonly name: string;
  readonly kind: SpanKind;
  /** the bytes holding this span's ids, at the offsets below */
  readonly ids: Uint8Array;
  /** 16 bytes */
  readonly traceIdAt: number;
  /** 8 bytes */
  readonly spanIdAt: number;
  /** 8 bytes; -1 for a root span */
  readonly parentSpanIdAt: number;
  /** the parent came from the caller (traceparent/B3), not from this agent */
  readonly parentIsRemote: boolean;
  /** W3C tracestate, as received */
  readonly traceState: string | undefined;
  /** W3C trace flags (1 = sampled) */
  readonly traceFlags: number;
  /** [seconds, nanoseconds] since the epoch, exact to the ns, written into `out` */
  startTime(out: HrTime): HrTime;
  endTime(out: HrTime): HrTime;
  readonly statusCode: SpanStatusCode;
  readonly statusMessage: string | undefined;
  writeAttributes(w: AttributeWriter): void;
  /** This span will be read after its batch's turn (a kept span object): copy what it reads. */
  retain(): void;
}

/** Lowercase hex of one of a span's ids (traceIdAt, 16 / spanIdAt, 8 / parentSpanIdAt, 8); undefined for -1. */
export function spanIdHex(span: ExportSpan, at: number, bytes: number): string | undefined {
  if (at < 0) return undefined;
  return Buffer.from(span.ids.buffer, span.ids.byteOffset + at, bytes).toString('hex');
}

class AttributeCollector implements AttributeWriter {
  readonly out: Attributes = {};
  str(key: SpanAttr, value: string): void {
    this.out[SPAN_ATTRIBUTE_NAMES[key]] = value;
  }
  latin1(key: SpanAttr, bytes: Uint8Array, at: number, length: number): void {
    this.out[SPAN_ATTRIBUTE_NAMES[key]] = Buffer.from(bytes.buffer, bytes.byteOffset + at, length).toString('latin1');
  }
  int(key: SpanAttr, value: number): void {
    this.out[SPAN_ATTRIBUTE_NAMES[key]] = value;
  }
  any(key: string, value: AttributeValue): void {
    this.out[key] = value;
  }
}

/** The attributes as an object, in wire order: for the console, tests and SDK adapters, not the OTLP path. */
export function spanAttributes(span: ExportSpan): Attributes {
  const c = new AttributeCollector();
  span.writeAttributes(c);
  return c.out;
}
