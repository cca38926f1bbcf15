/**
 * Enriched exchange -> span: one SERVER span per inbound request, one CLIENT span per upstream
 * attempt. A span is a small view over its exchange: ids are the bytes of the exchange's own frame
 * (copied out of its batch when the span is made), and the encoder asks it to write its
 * attributes straight from the exchange's fields. No SDK Span objects, no attribute objects.
 */
import { SpanKind, SpanStatusCode, type HrTime } from '@opentelemetry/api';
import {
  PARENT_SPAN_ID_OFFSET,
  SPAN_ID_OFFSET,
  STRING_FIELDS,
  TRACE_ID_OFFSET,
  protocolVersion,
  type Exchange,
} from '../capture/exchange';
import { ERROR_NAMES, ExchangeFlag, Method, METHOD_NAMES } from '../capture/exchange-layout';
import { LuaPhase } from '../capture/records';
import type { EnrichedExchange } from '../enrich/enriched';
import { METHOD_SPAN_NAMES } from '../enrich/kong/route-table';
import { callerRatio, sampledTraceState } from '../enrich/sampler';
import type { PodInfo } from '../enrich/pods';
import { RPC_SYSTEM_VALUE_GRPC } from './semconv';
import { LUA_PHASE_ATTR_OFFSET, SpanAttr, type AttributeWriter, type ExportSpan } from './span';

/** The part of src/clock.ts spans need: relative monotonic ns -> wall-clock HrTime, exactly. */
export interface WallClock {
  toHrTime(relNs: number, out?: HrTime): HrTime;
}

const F_PARENT_SPAN = ExchangeFlag.ParentSpan;
const S_PATH = STRING_FIELDS.path;
const S_USER_AGENT = STRING_FIELDS.userAgent;
const SEMICOLON = 0x3b;
const F_CALLER_CONTEXT = ExchangeFlag.CallerContext;
const M_OTHER = Method.Other;
const LUA_FIRST = LuaPhase.Rewrite;
const LUA_LAST = LuaPhase.Balancer;

export class ExchangeSpan implements ExportSpan {
  private constructor(
    readonly exchange: EnrichedExchange,
    private readonly clock: WallClock,
  ) {}

  /** The span of a sampled exchange, valid during its batch's turn unless retained. */
  static of(exchange: EnrichedExchange, clock: WallClock): ExchangeSpan {
    return new ExchangeSpan(exchange, clock);
  }

  /** From here on the exchange no longer holds its batch. */
  retain(): void {
    this.exchange.keep();
  }

  /** SERVER: "{method} {http.route}", or the method alone; CLIENT: the method. "_OTHER" reads "HTTP". */
  get name(): string {
    const e = this.exchange;
    // gRPC: "{rpc.service}/{rpc.method}", as the RPC conventions name spans
    const rpc = grpcCall(e);
    if (rpc !== undefined) return rpc.name;
    const route = e.route;
    return route !== undefined && e.ex.isServer ? route.spanNames[e.ex.method] : METHOD_SPAN_NAMES[e.ex.method];
  }

  get kind(): SpanKind {
    return this.exchange.ex.isServer ? SpanKind.SERVER : SpanKind.CLIENT;
  }

  get ids(): Uint8Array {
    return this.exchange.ex.frame;
  }

  get traceIdAt(): number {
    return this.exchange.ex.frameAt + TRACE_ID_OFFSET;
  }

  get spanIdAt(): number {
    return this.exchange.ex.frameAt + SPAN_ID_OFFSET;
  }

  get parentSpanIdAt(): number {
    const ex = this.exchange.ex;
    return (ex.flags & F_PARENT_SPAN) !== 0 ? ex.frameAt + PARENT_SPAN_ID_OFFSET : -1;
  }

  get parentIsRemote(): boolean {
    const ex = this.exchange.ex;
    return ex.isServer && (ex.flags & F_CALLER_CONTEXT) !== 0 && (ex.flags & F_PARENT_SPAN) !== 0;
  }

  /** As received, with the sampler's `th` (src/enrich/sampler.ts). */
  get traceState(): string | undefined {
    const ts = sampledTraceState(this.exchange.ex.traceState, this.exchange.sampling!);
    return ts === '' ? undefined : ts;
  }

  /** Only sampled exchanges become spans. */
  get traceFlags(): number {
    return 1;
  }

  startTime(out: HrTime): HrTime {
    return this.clock.toHrTime(this.exchange.ex.startNs, out);
  }

  endTime(out: HrTime): HrTime {
    const ex = this.exchange.ex;
    return this.clock.toHrTime(ex.endNs >= ex.startNs ? ex.endNs : ex.startNs, out);
  }

  /** ERROR with an error.type: an error code, or a status >= 500 (SERVER) / >= 400 (CLIENT). */
  get statusCode(): SpanStatusCode {
    return this.exchange.errorType !== undefined ? SpanStatusCode.ERROR : SpanStatusCode.UNSET;
  }

  /** The error code, when the exchange did not end normally. */
  get statusMessage(): string | undefined {
    const error = this.exchange.ex.error;
    return error !== 0 ? ERROR_NAMES[error] : undefined;
  }

  writeAttributes(w: AttributeWriter): void {
    if (this.exchange.ex.isServer) this.serverAttributes(w);
    else this.clientAttributes(w);
  }

  private serverAttributes(w: AttributeWriter): void {
    const e = this.exchange;
    const ex = e.ex;
    w.str(SpanAttr.HttpRequestMethod, METHOD_NAMES[ex.method]);
    writePath(w, e);
    w.str(SpanAttr.UrlScheme, ex.tls ? 'https' : 'http');
    const version = protocolVersion(ex.httpVersion);
    if (version !== undefined) w.str(SpanAttr.NetworkProtocolVersion, version);
    w.int(SpanAttr.HttpRequestBodySize, ex.requestBodySize);
    w.int(SpanAttr.HttpResponseBodySize, ex.responseBodySize);
    w.str(SpanAttr.KongResponseSource, e.responseSourceName);
    if (ex.method === M_OTHER && ex.methodText !== undefined) w.str(SpanAttr.HttpRequestMethodOriginal, ex.methodText);
    const query = e.query;
    if (query !== undefined) w.str(SpanAttr.UrlQuery, query);
    const serverAddress = e.serverAddress;
    if (serverAddress !== undefined) w.str(SpanAttr.ServerAddress, serverAddress);
    const serverPort = e.serverPort;
    if (serverPort !== undefined) w.int(SpanAttr.ServerPort, serverPort);
    const peer = ex.peerAddress;
    if (peer !== undefined) {
      w.str(SpanAttr.ClientAddress, peer);
      w.int(SpanAttr.ClientPort, ex.peerPort);
    }
    writeBytes(w, SpanAttr.UserAgentOriginal, ex, S_USER_AGENT);
    if (ex.status > 0) w.int(SpanAttr.HttpResponseStatusCode, ex.status);
    const route = e.route;
    if (route !== undefined) {
      if (route.route !== undefined) w.str(SpanAttr.HttpRoute, route.route);
      w.str(SpanAttr.KongRouteName, route.routeName);
      if (route.serviceName !== undefined) w.str(SpanAttr.KongServiceName, route.serviceName);
    }
    if (ex.kongProxyLatencyMs >= 0) w.int(SpanAttr.KongProxyLatencyMs, ex.kongProxyLatencyMs);
    if (ex.kongUpstreamLatencyMs >= 0) w.int(SpanAttr.KongUpstreamLatencyMs, ex.kongUpstreamLatencyMs);
    if (ex.kongResponseLatencyMs >= 0) w.int(SpanAttr.KongResponseLatencyMs, ex.kongResponseLatencyMs);
    if (e.hasUpstreamSplit) {
      w.int(SpanAttr.KongBeforeUpstreamNs, e.beforeUpstreamNs);
      w.int(SpanAttr.KongUpstreamNs, e.upstreamNs);
      w.int(SpanAttr.KongAfterUpstreamNs, e.afterUpstreamNs);
      w.int(SpanAttr.KongUpstreamAttempts, ex.attempts);
    }
    let lua = 0;
    for (let phase = LUA_FIRST; phase <= LUA_LAST; phase++) {
      const ns = ex.luaNs(phase);
      if (ns === 0) continue;
      w.int(LUA_PHASE_ATTR_OFFSET + phase, ns);
      lua += ns;
    }
    if (lua > 0) w.int(SpanAttr.KongLuaTotalNs, lua);
    if (e.errorType !== undefined) w.str(SpanAttr.ErrorType, e.errorType);
    if (e.pod !== undefined) writePod(w, e.pod);
    writeRpc(w, e);
    writeSampling(w, e);
  }

  private clientAttributes(w: AttributeWriter): void {
    const e = this.exchange;
    const ex = e.ex;
    const scheme = ex.tls ? 'https' : 'http';
    w.str(SpanAttr.HttpRequestMethod, METHOD_NAMES[ex.method]);
    w.str(SpanAttr.UrlScheme, scheme);
    const version = protocolVersion(ex.httpVersion);
    if (version !== undefined) w.str(SpanAttr.NetworkProtocolVersion, version);
    w.int(SpanAttr.HttpRequestBodySize, ex.requestBodySize);
    w.int(SpanAttr.HttpResponseBodySize, ex.responseBodySize);
    if (ex.method === M_OTHER && ex.methodText !== undefined) w.str(SpanAttr.HttpRequestMethodOriginal, ex.methodText);
    const upstream = e.upstream;
    if (upstream !== undefined) {
      w.str(SpanAttr.ServerAddress, upstream.address);
      w.str(SpanAttr.UrlFull, urlFull(scheme, upstream.address, upstream.port, e.path, e.query));
      if (upstream.port !== undefined) w.int(SpanAttr.ServerPort, upstream.port);
    }
    const peer = ex.peerAddress;
    if (peer !== undefined) {
      w.str(SpanAttr.NetworkPeerAddress, peer);
      w.int(SpanAttr.NetworkPeerPort, ex.peerPort);
    }
    if (ex.status > 0) w.int(SpanAttr.HttpResponseStatusCode, ex.status);
    if (ex.attempt > 0) w.int(SpanAttr.HttpRequestResendCount, ex.attempt);
    if (e.errorType !== undefined) w.str(SpanAttr.ErrorType, e.errorType);
    if (e.pod !== undefined) writePod(w, e.pod);
    writeRpc(w, e);
    writeSampling(w, e);
  }
}

/** How the span was kept: the rule, and the probability it had (for a caller's decision, what its tracestate states). */
function writeSampling(w: AttributeWriter, e: EnrichedExchange): void {
  const sampling = e.sampling!;
  w.str(SpanAttr.SamplingRule, sampling.rule);
  const ratio = sampling.ratio ?? callerRatio(e.ex.traceState);
  if (ratio !== undefined) w.int(SpanAttr.SamplingRatio, ratio);
}

/** A frame string written from its bytes, when present. */
function writeBytes(w: AttributeWriter, key: SpanAttr, ex: Exchange, field: number): void {
  const length = ex.stringLength(field);
  if (length >= 0) w.latin1(key, ex.frame, ex.stringStart(field), length);
}

/** url.path: from the frame's bytes, unless it has path parameters the redactor may hide. */
function writePath(w: AttributeWriter, e: EnrichedExchange): void {
  const ex = e.ex;
  const length = ex.stringLength(S_PATH);
  if (length < 0) return;
  const at = ex.stringStart(S_PATH);
  const bytes = ex.frame;
  for (let i = at, end = at + length; i < end; i++) {
    if (bytes[i] === SEMICOLON) {
      w.str(SpanAttr.UrlPath, e.path!);
      return;
    }
  }
  w.latin1(SpanAttr.UrlPath, bytes, at, length);
}

/** A gRPC call's service and method, from its path /{package.Service}/{Method}. */
interface GrpcCall {
  service: string;
  method: string;
  /** the span name: "{service}/{method}" */
  name: string;
}

function grpcCall(e: EnrichedExchange): GrpcCall | undefined {
  const ex = e.ex;
  if (!ex.isGrpc) return undefined;
  const path = ex.path;
  if (path === undefined) return undefined;
  const slash = path.lastIndexOf('/');
  if (slash <= 1 || path[0] !== '/' || slash === path.length - 1) return undefined;
  return { service: path.slice(1, slash), method: path.slice(slash + 1), name: path.slice(1) };
}

/** rpc.* of a gRPC call; the status code comes from grpc-status (trailers, or a trailers-only answer). */
function writeRpc(w: AttributeWriter, e: EnrichedExchange): void {
  const rpc = grpcCall(e);
  if (rpc === undefined) return;
  w.str(SpanAttr.RpcSystem, RPC_SYSTEM_VALUE_GRPC);
  w.str(SpanAttr.RpcService, rpc.service);
  w.str(SpanAttr.RpcMethod, rpc.method);
  if (e.ex.grpcStatus >= 0) w.int(SpanAttr.RpcGrpcStatusCode, e.ex.grpcStatus);
}

function writePod(w: AttributeWriter, pod: PodInfo): void {
  if (pod.name !== undefined) w.str(SpanAttr.K8sPodName, pod.name);
  if (pod.namespace !== undefined) w.str(SpanAttr.K8sNamespaceName, pod.namespace);
  if (pod.uid !== undefined) w.str(SpanAttr.K8sPodUid, pod.uid);
}

/** url.full of an upstream attempt: the default port for the scheme is left out, the query is redacted. */
function urlFull(
  scheme: string,
  address: string,
  port: number | undefined,
  path: string | undefined,
  query: string | undefined,
): string {
  const host = address.includes(':') ? `[${address}]` : address;
  const portPart = port !== undefined && port !== (scheme === 'https' ? 443 : 80) ? `:${port}` : '';
  return `${scheme}://${host}${portPart}${path ?? ''}${query !== undefined ? `?${query}` : ''}`;
}
