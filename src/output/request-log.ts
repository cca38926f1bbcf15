/**
 * One log line per finished exchange: the original design's fields (level, msg "HTTP Request",
 * method, host, path, status_code, response_time_ns, error_code, timestamp) plus what a
 * platform team needs to find the request again: direction, pid, peer, sizes, trace ids.
 */
import type { Logger } from '../log';
import type { ExchangeSink, HttpExchange } from '../requests/types';

export interface RequestLogClock {
  /** RFC 3339 with nanosecond fraction, from agent-relative monotonic ns */
  toIso(relNs: number): string;
}

export class RequestLog implements ExchangeSink {
  constructor(
    private readonly log: Logger,
    private readonly clock: RequestLogClock,
    private readonly redactQuery: (query: string) => string,
  ) {}

  onExchange(ex: HttpExchange): void {
    if (!this.log.enabled('info')) return;
    this.log.info('HTTP Request', this.fields(ex));
  }

  fields(ex: HttpExchange): Record<string, unknown> {
    const kongLatency = (name: string): number | undefined => {
      const value = ex.responseHeaders[name];
      return value === undefined ? undefined : Number(value);
    };
    return {
      timestamp: this.clock.toIso(ex.endNs),
      start_time: this.clock.toIso(ex.startNs),
      direction: ex.direction,
      pid: ex.pid,
      method: ex.method,
      host: ex.host ?? '',
      path: ex.path,
      query: ex.query === undefined ? undefined : this.redactQuery(ex.query),
      status_code: ex.statusCode,
      response_time_ns: ex.endNs - ex.startNs,
      error_code: ex.errorCode ?? '',
      peer: ex.peer ? formatEndpoint(ex.peer.address, ex.peer.port) : undefined,
      local: ex.local ? formatEndpoint(ex.local.address, ex.local.port) : undefined,
      protocol: `HTTP/${ex.httpVersion}`,
      request_size: ex.requestHeadSize + ex.requestBodySize,
      response_size: ex.responseHeadSize + ex.responseBodySize,
      user_agent: ex.userAgent,
      conn_id: ex.connId,
      conn_request: ex.connRequestIndex,
      trace_id: ex.ids?.traceId,
      span_id: ex.ids?.spanId,
      parent_span_id: ex.ids?.parentSpanId,
      upstream_attempts: ex.direction === 'server' ? (ex.attempts?.length ?? 0) : undefined,
      kong_proxy_latency_ms: kongLatency('x-kong-proxy-latency'),
      kong_upstream_latency_ms: kongLatency('x-kong-upstream-latency'),
      kong_response_latency_ms: kongLatency('x-kong-response-latency'),
      kong_lua_ns: ex.luaPhaseNs?.reduce((sum, ns) => sum + (ns ?? 0), 0),
    };
  }
}

export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
