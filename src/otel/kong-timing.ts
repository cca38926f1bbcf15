/**
 * Kong's latency split and the origin of a response, derived from one SERVER exchange and its
 * upstream attempts. Shared by spans and metrics so both tell the same story.
 */
import type { HttpExchange } from '../requests/types';

export type ResponseSource = 'kong' | 'upstream';

export interface KongSplit {
  /** request start -> first upstream byte written: plugins, routing, buffering the upload */
  beforeUpstreamNs: number;
  /** first upstream byte written -> last upstream response byte, all attempts and retries */
  upstreamNs: number;
  /** last upstream response byte -> last byte to the client */
  afterUpstreamNs: number;
}

/**
 * The three parts add up to the exchange's duration, so a dashboard can stack them. Undefined
 * when no upstream attempt was seen (Kong answered alone, or the attempts were not captured).
 */
export function kongSplit(ex: HttpExchange): KongSplit | undefined {
  const attempts = ex.attempts;
  if (!attempts || attempts.length === 0) return undefined;
  const first = attempts[0];
  const last = attempts[attempts.length - 1];
  const upstreamStart = clamp(first.startNs, ex.startNs, ex.endNs);
  const upstreamEnd = clamp(last.endNs, upstreamStart, ex.endNs);
  return {
    beforeUpstreamNs: upstreamStart - ex.startNs,
    upstreamNs: upstreamEnd - upstreamStart,
    afterUpstreamNs: ex.endNs - upstreamEnd,
  };
}

/**
 * "kong" when Kong produced the response itself (no route, auth failure, rate limit, or a 502
 * after failed attempts): it then sends `Server: kong/x` and no `Via`. Otherwise "upstream" when
 * an attempt or Kong's proxy headers show the request was proxied.
 */
export function responseSource(ex: HttpExchange): ResponseSource {
  const h = ex.responseHeaders;
  const server = h['server'];
  const via = h['via'];
  if (server !== undefined && server.toLowerCase().startsWith('kong/') && via === undefined) return 'kong';
  if (ex.attempts !== undefined && ex.attempts.length > 0) return 'upstream';
  if (via !== undefined || h['x-kong-upstream-latency'] !== undefined) return 'upstream';
  return 'kong';
}

/** Kong's whole-millisecond latency header, or undefined when absent or malformed. */
export function kongHeaderMs(ex: HttpExchange, name: string): number | undefined {
  const raw = ex.responseHeaders[name];
  if (raw === undefined) return undefined;
  const n = Number(raw.trim());
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? Math.max(lo, hi) : v;
}
