/**
 * The enrichment stage: decoded exchanges in, EnrichedExchange out, every fact about an exchange
 * decided here once (route and service, pod, error type, Kong's latency split, response source,
 * the span-sampling decision) and the CLIENT exchanges that follow their SERVER attached to it.
 *
 * Frame order (native/kw_exchange.h): a CLIENT whose SERVER was still in flight is written right
 * after that SERVER, in the same batch; a CLIENT finishing later comes alone with parent_id set.
 * So a SERVER is held until the next frame that is not one of its attempts, or the batch's end,
 * then handed on with its attempts after it.
 */
import type { Exchange } from '../capture/exchange';
import { ExchangeFlag } from '../capture/exchange-layout';
import { EnrichedExchange, ResponseSource, errorTypeOf, statusErrorKey } from './enriched';
import type { RouteInfo } from './kong/route-table';
import type { PodInfo } from './pods';
import type { Redactor } from './redact';
import type { Sampler, SamplingOutcome } from './sampler';
import { HostTable } from './upstream-hosts';

/** Where enriched exchanges go: each SERVER, then the attempts attached to it; late CLIENTs alone. */
export interface EnrichedSink {
  exchange(e: EnrichedExchange): void;
}

export interface RouteResolver {
  resolve(ex: Exchange): RouteInfo | undefined;
}

export interface PodResolver {
  get(pid: number): PodInfo | undefined;
}

export interface EnricherOptions {
  redactor: Redactor;
  /** Kong's routes (KONG_ADMIN_URL); none: no route names */
  routes?: RouteResolver;
  /** pods by pid (KONG_WATCH_SCOPE=host); none: the agent's resource names the pod */
  pods?: PodResolver;
  /** none: no spans are made, nothing is sampled */
  sampler?: Sampler;
  hosts?: HostTable;
  /** SERVER decisions kept for CLIENT exchanges that finish after their SERVER */
  recentDecisions?: number;
}

export interface EnricherStats {
  servers: number;
  clients: number;
  /** CLIENT exchanges reported right after their SERVER */
  attachedClients: number;
  /** CLIENT exchanges reported after their SERVER was handed on */
  lateClients: number;
  /** late CLIENTs whose SERVER decision was no longer known (decided from their own trace id) */
  lateClientsUndecided: number;
  /** CLIENT exchanges matched to no SERVER: Kong's own calls */
  unmatchedClients: number;
}

const F_SERVER_KONG = ExchangeFlag.ServerKong;
const F_VIA = ExchangeFlag.Via;
const SRC_NONE = ResponseSource.None;
const SRC_KONG = ResponseSource.Kong;
const SRC_UPSTREAM = ResponseSource.Upstream;
const DEFAULT_RECENT_DECISIONS = 4096;

export class Enricher {
  private pending: EnrichedExchange | undefined;
  private lastAttached: EnrichedExchange | undefined;
  private attachedToPending = 0;
  private readonly redactor: Redactor;
  private readonly routes?: RouteResolver;
  private readonly pods?: PodResolver;
  private readonly sampler?: Sampler;
  private readonly hosts: HostTable;
  private readonly decisions: RecentDecisions;
  private readonly s: EnricherStats = {
    servers: 0,
    clients: 0,
    attachedClients: 0,
    lateClients: 0,
    lateClientsUndecided: 0,
    unmatchedClients: 0,
  };

  constructor(
    private readonly sink: EnrichedSink,
    options: EnricherOptions,
  ) {
    this.redactor = options.redactor;
    this.routes = options.routes;
    this.pods = options.pods;
    this.sampler = options.sampler;
    this.hosts = options.hosts ?? new HostTable();
    this.decisions = new RecentDecisions(options.recentDecisions ?? DEFAULT_RECENT_DECISIONS);
  }

  /** One decoded exchange, in frame order. */
  push(ex: Exchange): void {
    if (ex.isServer) {
      this.flush();
      this.s.servers++;
      this.pending = this.server(ex);
      return;
    }
    this.s.clients++;
    const pending = this.pending;
    if (pending !== undefined && ex.parentId !== 0 && ex.parentId === pending.ex.id) {
      const c = this.client(ex, pending.sampling);
      if (this.lastAttached === undefined) pending.firstClient = c;
      else this.lastAttached.nextClient = c;
      this.lastAttached = c;
      this.attachedToPending++;
      this.s.attachedClients++;
      return;
    }
    this.flush();
    this.sink.exchange(this.client(ex, this.orphanDecision(ex)));
  }

  /** The batch ended: a held SERVER cannot get more attempts attached. */
  endBatch(): void {
    this.flush();
  }

  stats(): EnricherStats {
    return { ...this.s };
  }

  private flush(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    this.lastAttached = undefined;
    // Attempts still running when it ended will come alone: they need its decision then.
    if (this.sampler !== undefined && p.ex.attempts > this.attachedToPending) this.decisions.set(p.ex.id, p.sampling);
    this.attachedToPending = 0;
    this.sink.exchange(p);
    for (let c = p.firstClient; c !== undefined; c = c.nextClient) this.sink.exchange(c);
  }

  private orphanDecision(ex: Exchange): SamplingOutcome | undefined {
    const sampler = this.sampler;
    if (ex.parentId === 0) {
      this.s.unmatchedClients++;
      return sampler?.orphan(ex, clientErrorType(ex));
    }
    this.s.lateClients++;
    if (sampler === undefined) return undefined;
    const known = this.decisions.get(ex.parentId);
    if (known !== undefined) return known ?? undefined;
    this.s.lateClientsUndecided++;
    return sampler.orphan(ex, clientErrorType(ex));
  }

  private server(ex: Exchange): EnrichedExchange {
    const errorKey = ex.error !== 0 ? ex.error : statusErrorKey(ex, true);
    let before = -1;
    let upstream = -1;
    let after = -1;
    if (ex.upstreamStartNs !== 0) {
      const start = ex.startNs;
      const end = ex.endNs > start ? ex.endNs : start;
      const upStart = clamp(ex.upstreamStartNs, start, end);
      // An attempt still running when the exchange ended ran until its end.
      const upEnd = ex.upstreamEndNs === 0 ? end : clamp(ex.upstreamEndNs, upStart, end);
      before = upStart - start;
      upstream = upEnd - upStart;
      after = end - upEnd;
    }
    const errorType = errorTypeOf(errorKey, ex);
    return new EnrichedExchange(
      ex,
      this.routes?.resolve(ex),
      this.pods?.get(ex.pid),
      undefined,
      errorKey,
      errorType,
      responseSource(ex),
      before,
      upstream,
      after,
      // After the response: the sampler sees the error type and the duration.
      this.sampler?.server(ex, errorType),
      this.redactor,
    );
  }

  private client(ex: Exchange, sampling: SamplingOutcome | undefined): EnrichedExchange {
    const errorKey = clientErrorKey(ex);
    return new EnrichedExchange(
      ex,
      undefined,
      this.pods?.get(ex.pid),
      this.hosts.of(ex),
      errorKey,
      errorTypeOf(errorKey, ex),
      SRC_NONE,
      -1,
      -1,
      -1,
      sampling,
      this.redactor,
    );
  }
}

/** A CLIENT exchange's errorKey: an error code, ERROR_STATUS for a status >= 400, ERROR_GRPC for a failed call. */
function clientErrorKey(ex: Exchange): number {
  return ex.error !== 0 ? ex.error : statusErrorKey(ex, false);
}

function clientErrorType(ex: Exchange): string | undefined {
  return errorTypeOf(clientErrorKey(ex), ex);
}

/**
 * "kong" when Kong produced the response itself (it then sends `Server: kong/x` and no `Via`);
 * otherwise "upstream" when an attempt or Kong's proxy headers show the request was proxied.
 */
function responseSource(ex: Exchange): number {
  const flags = ex.flags;
  if ((flags & F_SERVER_KONG) !== 0 && (flags & F_VIA) === 0) return SRC_KONG;
  if (ex.attempts > 0 || (flags & F_VIA) !== 0 || ex.kongUpstreamLatencyMs >= 0) return SRC_UPSTREAM;
  return SRC_KONG;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** The last `capacity` SERVER decisions by exchange id (null: not sampled), oldest forgotten first. */
class RecentDecisions {
  private readonly map = new Map<number, SamplingOutcome | null>();
  private readonly order: Float64Array;
  private next = 0;

  constructor(private readonly capacity: number) {
    this.order = new Float64Array(Math.max(1, capacity));
  }

  get(id: number): SamplingOutcome | null | undefined {
    return this.map.get(id);
  }

  set(id: number, sampling: SamplingOutcome | undefined): void {
    if (this.map.size >= this.capacity) this.map.delete(this.order[this.next]);
    this.map.set(id, sampling ?? null);
    this.order[this.next] = id;
    this.next = (this.next + 1) % this.order.length;
  }
}
