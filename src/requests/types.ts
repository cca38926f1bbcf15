/**
 * The plain data that flows from request assembly to every output (JSON log, stats,
 * spans, metrics). Times are monotonic nanoseconds relative to the agent's clock base
 * (see src/clock.ts): plain numbers, exact for 104 days of agent uptime.
 */

export type Direction = 'server' | 'client';

export interface Endpoint {
  address: string;
  port: number;
}

/** W3C / B3 trace identity of one exchange, decided when its request head is parsed. */
export interface TraceIds {
  traceId: string; // 32 lower-case hex
  spanId: string; // 16 lower-case hex: this exchange's span
  parentSpanId?: string; // the caller's span (server) or the SERVER exchange's span (client)
  sampled: boolean;
  traceState?: string;
  /** true when traceId/parentSpanId came from an incoming header */
  remoteParent: boolean;
}

export interface HttpExchange {
  direction: Direction;
  pid: number;
  connId: number;
  /** 1-based position of this request on its connection (keep-alive, pipelining) */
  connRequestIndex: number;
  local?: Endpoint;
  peer?: Endpoint;

  method: string;
  /** the raw request-target, e.g. "/a/b?x=1" */
  target: string;
  path: string;
  /** without the leading "?", undefined when absent */
  query?: string;
  /** "1.0" or "1.1" */
  httpVersion: string;
  host?: string;
  userAgent?: string;
  /** selected request headers, lower-case names, bounded in number and size */
  requestHeaders: Record<string, string>;
  requestHeadSize: number;
  requestBodySize: number;

  /** 0 when no response head was seen */
  statusCode: number;
  /** selected response headers, lower-case names */
  responseHeaders: Record<string, string>;
  responseHeadSize: number;
  responseBodySize: number;

  /** first byte of the request read (server) or written (client) */
  startNs: number;
  /** last byte of the request (head and body) */
  requestEndNs: number;
  /** first byte of the response; 0 when none */
  responseStartNs: number;
  /** last byte of the response, or when the exchange was abandoned */
  endNs: number;

  /** set when the exchange did not end normally, e.g. "client_closed" */
  errorCode?: string;

  /** set when the request head is parsed */
  ids?: TraceIds;
  /** client exchanges: the SERVER exchange this upstream attempt serves */
  parent?: HttpExchange;
  /** server exchanges: the upstream attempts made for it, in order */
  attempts?: HttpExchange[];
  /**
   * server exchanges, with the Lua uprobes on: ns spent in each of Kong's Lua phases before the
   * answer ended, indexed by LuaPhase (src/capture/records.ts); the log phase runs later
   */
  luaPhaseNs?: number[];
}

/** Receives exchanges from request assembly: the head as soon as it is parsed, the whole when finished. */
export interface ExchangeSink {
  onRequestHead?(exchange: HttpExchange): void;
  onExchange(exchange: HttpExchange): void;
}
