/**
 * The live view's output: the slowest requests of the last minute and the latest failing ones,
 * and the upstream retries per table row. It looks at every SERVER exchange but keeps only the
 * few that qualify (an error, or slower than the slowest kept so far): at most a few dozen small
 * objects. Describing one costs a few strings, so each kind has a budget per second: a flood of
 * errors costs a compare per exchange past the first FAILING_PER_TICK. The slow budget is large,
 * because the slowest request must not be missed: past warm-up, few requests beat the slowest ten.
 */
import type { EnrichedExchange } from '../../enrich/enriched';
import type { EnrichedSink } from '../../enrich/enricher';
import { rowKey, rowOfExchange } from './rows';

/** What the view shows of one request; times are wall-clock ms, durations seconds. */
export interface RecentRequest {
  /** last response byte, ms since the epoch */
  time: number;
  method: string;
  /** path and query as the request log has them (credential-looking values redacted); cut to MAX_TARGET chars */
  target: string;
  /** 0 when no response was seen */
  status: number;
  /** error.type, when the exchange has one */
  error?: string;
  durationS: number;
  traceId: string;
  /** spans were made for it, so the trace id finds it in Jaeger or Tempo */
  sampled: boolean;
  /** http.route, else kong.route.name */
  route?: string;
  /** the pod that served it (node-wide agent) */
  pod?: string;
  namespace?: string;
  /** kong.latency.proxy and kong.latency.upstream of this request, when it was proxied */
  kongS?: number;
  upstreamS?: number;
  attempts: number;
}

export interface RecentClock {
  /** monotonic now, ns relative to the clock base */
  nowRelNs(): number;
  toHrTime(relNs: number): [number, number];
}

export const SLOWEST_KEPT = 10;
export const FAILING_KEPT = 20;
/** The slowest requests are those of the last minute. */
export const SLOWEST_WINDOW_NS = 60e9;
/** Failing requests stay listed this long, so that a rare failure is still there to read. */
export const FAILING_WINDOW_NS = 300e9;
const FAILING_PER_TICK = 64;
const SLOW_PER_TICK = 1000;
const MAX_TARGET = 256;

interface Kept {
  endNs: number;
  durationNs: number;
  request: RecentRequest;
}

export class RecentRequests implements EnrichedSink {
  /** unordered; the minimum is the threshold once full */
  private readonly slowest: Kept[] = [];
  /** oldest first */
  private readonly failing: Kept[] = [];
  private threshold = 0;
  private failingBudget = FAILING_PER_TICK;
  private slowBudget = SLOW_PER_TICK;
  private readonly retries = new Map<string, number>();

  constructor(private readonly clock: RecentClock) {}

  exchange(e: EnrichedExchange): void {
    const ex = e.ex;
    if (!ex.isServer) return;
    if (ex.attempts > 1) {
      const key = rowKey(rowOfExchange(e));
      this.retries.set(key, (this.retries.get(key) ?? 0) + ex.attempts - 1);
    }
    const status = ex.status;
    const durationNs = e.durationNs;
    const failed = (status === 0 || status >= 400) && this.failingBudget > 0;
    const slow = durationNs > this.threshold && this.slowBudget > 0;
    if (!failed && !slow) return;
    if (failed) this.failingBudget--;
    if (slow) this.slowBudget--;
    const kept: Kept = { endNs: ex.endNs, durationNs, request: this.describe(e) };
    if (failed) {
      if (this.failing.length >= FAILING_KEPT) this.failing.shift();
      this.failing.push(kept);
    }
    if (slow) this.keepSlow(kept);
  }

  /** Once a second: forget what aged out, renew the budget. */
  tick(): void {
    const now = this.clock.nowRelNs();
    this.failingBudget = FAILING_PER_TICK;
    this.slowBudget = SLOW_PER_TICK;
    while (this.failing.length > 0 && this.failing[0].endNs < now - FAILING_WINDOW_NS) this.failing.shift();
    const before = this.slowest.length;
    for (let i = this.slowest.length - 1; i >= 0; i--) {
      if (this.slowest[i].endNs < now - SLOWEST_WINDOW_NS) this.slowest.splice(i, 1);
    }
    if (this.slowest.length !== before) this.updateThreshold();
  }

  /** Slowest first. */
  slowestRequests(): RecentRequest[] {
    return [...this.slowest].sort((a, b) => b.durationNs - a.durationNs).map((k) => k.request);
  }

  /** Latest first. */
  failingRequests(): RecentRequest[] {
    return this.failing.map((k) => k.request).reverse();
  }

  /** Upstream retries (attempts after the first) so far, by table row key. */
  retriesOf(key: string): number {
    return this.retries.get(key) ?? 0;
  }

  private keepSlow(kept: Kept): void {
    const slowest = this.slowest;
    if (slowest.length < SLOWEST_KEPT) {
      slowest.push(kept);
    } else {
      let min = 0;
      for (let i = 1; i < slowest.length; i++) if (slowest[i].durationNs < slowest[min].durationNs) min = i;
      slowest[min] = kept;
    }
    this.updateThreshold();
  }

  private updateThreshold(): void {
    const slowest = this.slowest;
    if (slowest.length < SLOWEST_KEPT) {
      this.threshold = 0;
      return;
    }
    let min = Infinity;
    for (const k of slowest) if (k.durationNs < min) min = k.durationNs;
    this.threshold = min;
  }

  private describe(e: EnrichedExchange): RecentRequest {
    const ex = e.ex;
    const [s, ns] = this.clock.toHrTime(ex.endNs);
    const query = e.query;
    let target = (e.path ?? '') + (query === undefined ? '' : `?${query}`);
    if (target.length > MAX_TARGET) target = target.slice(0, MAX_TARGET);
    const pod = e.pod;
    const r: RecentRequest = {
      time: s * 1000 + Math.floor(ns / 1e6),
      method: ex.methodOriginal,
      target,
      status: ex.status,
      durationS: e.durationNs / 1e9,
      traceId: ex.traceId,
      sampled: e.sampled,
      attempts: ex.attempts,
    };
    if (e.errorType !== undefined) r.error = e.errorType;
    const route = e.route?.route ?? e.route?.routeName;
    if (route !== undefined) r.route = route;
    if (pod?.name !== undefined) r.pod = pod.name;
    if (pod?.namespace !== undefined) r.namespace = pod.namespace;
    if (e.hasUpstreamSplit) {
      r.kongS = e.beforeUpstreamNs / 1e9;
      r.upstreamS = e.upstreamNs / 1e9;
    }
    return r;
  }
}
