/**
 * The periodic stats line: the original design's figures (requests, responses, average response
 * time, 4xx, 5xx, in flight) and the agent's own health (events, lost events, ring fill, export).
 * Counted in place: a few numbers per exchange, nothing retained.
 */
import type { ExchangeSink, HttpExchange } from '../requests/types';

export interface RequestCounts {
  requests: number; // server request heads seen
  responses: number; // server exchanges finished with a status
  status4xx: number;
  status5xx: number;
  errors: number; // exchanges that ended abnormally (error_code set)
  inFlight: number;
  upstreamAttempts: number;
  totalResponseTimeNs: number;
}

export class RequestStats implements ExchangeSink {
  readonly counts: RequestCounts = {
    requests: 0,
    responses: 0,
    status4xx: 0,
    status5xx: 0,
    errors: 0,
    inFlight: 0,
    upstreamAttempts: 0,
    totalResponseTimeNs: 0,
  };
  private lastRequests = 0;
  private lastAt = Date.now();

  onRequestHead(ex: HttpExchange): void {
    if (ex.direction !== 'server') return;
    this.counts.requests++;
    this.counts.inFlight++;
  }

  onExchange(ex: HttpExchange): void {
    const c = this.counts;
    if (ex.direction === 'client') {
      c.upstreamAttempts++;
      return;
    }
    c.inFlight = Math.max(0, c.inFlight - 1);
    if (ex.errorCode) c.errors++;
    if (ex.statusCode === 0) return;
    c.responses++;
    c.totalResponseTimeNs += ex.endNs - ex.startNs;
    if (ex.statusCode >= 500) c.status5xx++;
    else if (ex.statusCode >= 400) c.status4xx++;
  }

  /** Fields of one stats line; `extra` carries capture and export figures. */
  snapshot(extra: Record<string, unknown>): Record<string, unknown> {
    const c = this.counts;
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.lastAt) / 1000);
    const rate = (c.requests - this.lastRequests) / seconds;
    this.lastRequests = c.requests;
    this.lastAt = now;
    return {
      requests: c.requests,
      responses: c.responses,
      requests_per_second: Math.round(rate * 10) / 10,
      avg_response_time_ms: c.responses ? Math.round(c.totalResponseTimeNs / c.responses / 1000) / 1000 : 0,
      status_4xx: c.status4xx,
      status_5xx: c.status5xx,
      errors: c.errors,
      in_flight: c.inFlight,
      upstream_attempts: c.upstreamAttempts,
      ...extra,
    };
  }
}
