/**
 * One log line per finished exchange: the original design's fields (level, msg "HTTP Request",
 * method, host, path, status_code, response_time_ns, error_code, timestamp) plus what a
 * platform team needs to find the request again: direction, pid, peer, sizes, trace ids, and the
 * route the enrichment stage named.
 */
import { formatEndpoint } from '../capture/address';
import { protocolVersion } from '../capture/exchange';
import { ERROR_NAMES } from '../capture/exchange-layout';
import type { EnrichedExchange } from '../enrich/enriched';
import type { EnrichedSink } from '../enrich/enricher';
import { jsonString, type Logger } from '../log';

export interface RequestLogClock {
  /** RFC 3339 with nanosecond fraction, from agent-relative monotonic ns */
  toIso(relNs: number): string;
}

export class RequestLog implements EnrichedSink {
  constructor(
    private readonly log: Logger,
    private readonly clock: RequestLogClock,
  ) {}

  exchange(e: EnrichedExchange): void {
    const log = this.log;
    if (!log.enabled('info')) return;
    if (log.json) log.writeLine('info', this.jsonLine(e));
    else log.info('HTTP Request', this.fields(e));
  }

  /** The JSON line of fields(), level and msg, written directly: the same keys, in the same order. */
  jsonLine(e: EnrichedExchange): string {
    const ex = e.ex;
    const server = ex.isServer;
    const local = ex.localAddress;
    const peer = ex.peerAddress;
    const query = e.query;
    const ua = ex.userAgent;
    const parent = ex.parentSpanId;
    const route = e.route;
    let line = `{"timestamp":"${this.clock.toIso(ex.endNs)}","start_time":"${this.clock.toIso(ex.startNs)}","direction":"${server ? 'server' : 'client'}","pid":${ex.pid},"method":${jsonString(ex.methodOriginal)},"host":${jsonString(ex.host ?? '')},"path":${jsonString(e.path ?? '')}`;
    if (query !== undefined) line += `,"query":${jsonString(query)}`;
    line += `,"status_code":${ex.status},"response_time_ns":${ex.endNs - ex.startNs},"error_code":"${ERROR_NAMES[ex.error]}"`;
    if (peer !== undefined) line += `,"peer":"${formatEndpoint(peer, ex.peerPort)}"`;
    if (local !== undefined) line += `,"local":"${formatEndpoint(local, ex.localPort)}"`;
    line += `,"protocol":"HTTP/${protocolVersion(ex.httpVersion) ?? '?'}","request_size":${ex.requestHeadSize + ex.requestBodySize},"response_size":${ex.responseHeadSize + ex.responseBodySize}`;
    if (ua !== undefined) line += `,"user_agent":${jsonString(ua)}`;
    line += `,"conn_id":${ex.connId},"conn_request":${ex.connRequest},"trace_id":"${ex.traceId}","span_id":"${ex.spanId}"`;
    if (parent !== undefined) line += `,"parent_span_id":"${parent}"`;
    if (route !== undefined) {
      if (route.route !== undefined) line += `,"route":${JSON.stringify(route.route)}`;
      line += `,"route_name":${JSON.stringify(route.routeName)}`;
      if (route.serviceName !== undefined) line += `,"service_name":${JSON.stringify(route.serviceName)}`;
    }
    if (server) line += `,"upstream_attempts":${ex.attempts}`;
    if (ex.kongProxyLatencyMs >= 0) line += `,"kong_proxy_latency_ms":${ex.kongProxyLatencyMs}`;
    if (ex.kongUpstreamLatencyMs >= 0) line += `,"kong_upstream_latency_ms":${ex.kongUpstreamLatencyMs}`;
    if (ex.kongResponseLatencyMs >= 0) line += `,"kong_response_latency_ms":${ex.kongResponseLatencyMs}`;
    const lua = server ? ex.luaTotalNs() : 0;
    if (lua > 0) line += `,"kong_lua_ns":${lua}`;
    return `${line},"level":"info","msg":"HTTP Request"}\n`;
  }

  fields(e: EnrichedExchange): Record<string, unknown> {
    const ex = e.ex;
    const server = ex.isServer;
    const local = ex.localAddress;
    const peer = ex.peerAddress;
    const lua = server ? ex.luaTotalNs() : 0;
    return {
      timestamp: this.clock.toIso(ex.endNs),
      start_time: this.clock.toIso(ex.startNs),
      direction: server ? 'server' : 'client',
      pid: ex.pid,
      method: ex.methodOriginal,
      host: ex.host ?? '',
      path: e.path ?? '',
      query: e.query,
      status_code: ex.status,
      response_time_ns: ex.endNs - ex.startNs,
      error_code: ERROR_NAMES[ex.error],
      peer: peer === undefined ? undefined : formatEndpoint(peer, ex.peerPort),
      local: local === undefined ? undefined : formatEndpoint(local, ex.localPort),
      protocol: `HTTP/${protocolVersion(ex.httpVersion) ?? '?'}`,
      request_size: ex.requestHeadSize + ex.requestBodySize,
      response_size: ex.responseHeadSize + ex.responseBodySize,
      user_agent: ex.userAgent,
      conn_id: ex.connId,
      conn_request: ex.connRequest,
      trace_id: ex.traceId,
      span_id: ex.spanId,
      parent_span_id: ex.parentSpanId,
      route: e.route?.route,
      route_name: e.route?.routeName,
      service_name: e.route?.serviceName,
      upstream_attempts: server ? ex.attempts : undefined,
      kong_proxy_latency_ms: ex.kongProxyLatencyMs >= 0 ? ex.kongProxyLatencyMs : undefined,
      kong_upstream_latency_ms: ex.kongUpstreamLatencyMs >= 0 ? ex.kongUpstreamLatencyMs : undefined,
      kong_response_latency_ms: ex.kongResponseLatencyMs >= 0 ? ex.kongResponseLatencyMs : undefined,
      kong_lua_ns: lua > 0 ? lua : undefined,
    };
  }
}
