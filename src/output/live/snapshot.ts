/**
 * What `kong-watcher top` reads from the agent: one JSON document, computed when asked, from the
 * window (src/output/live/window.ts), the recent requests (recent.ts) and the agent's figures.
 * Durations are seconds, times ms since the epoch, rates per second; null where nothing was seen.
 */
import type { RecentRequest, RecentRequests } from './recent';
import type { RowIdentity } from './rows';
import type { WindowView } from './window';

export const SNAPSHOT_VERSION = 1;

export interface LatencyFigures {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  mean: number | null;
}

/** Over the window. Errors are responses with a status >= 400, and requests that got none. */
export interface Figures {
  rate: number;
  errorRate: number;
  errorRatio: number | null;
  /** upstream attempts after the first, per second */
  retryRate: number;
  /** http.server.request.duration */
  duration: LatencyFigures;
  /** kong.latency.proxy: Kong's own time before the upstream (all of it when Kong answered alone) */
  kong: LatencyFigures;
  /** kong.latency.upstream, over the requests that reached an upstream */
  upstream: LatencyFigures;
  /** shares of the summed request time spent in Kong before the upstream, and in the upstream */
  kongShare: number | null;
  upstreamShare: number | null;
}

/** Since the agent started: the same counts the metrics export. */
export interface Cumulative {
  requests: number;
  errors: number;
  status4xx: number;
  status5xx: number;
  noResponse: number;
  retries: number;
}

export interface RouteRow extends RowIdentity {
  window: Figures;
  total: Cumulative;
}

export interface AgentHealth {
  kongProcesses: number;
  eventsPerSecond: number;
  /** records the ring buffer had no room for: since start, and within the window */
  lostEvents: number;
  lostEventsInWindow: number;
  /** 0..1 at the last drain */
  ringFill: number;
  spansDropped: number;
  spansDroppedInWindow: number;
  exportFailures: number;
  export: {
    traces: string;
    metrics: string;
    /** off: nothing is exported; failing: exports failed or spans were dropped within the window */
    state: 'off' | 'ok' | 'failing';
  };
  /** of one core, over the window */
  cpuPercent: number;
  rssBytes: number;
}

export interface LiveSnapshot {
  version: typeof SNAPSHOT_VERSION;
  time: number;
  /** KONG_WATCH_SCOPE: host means rows per pod */
  scope: string;
  windowSeconds: number;
  totals: Figures & { inFlight: number };
  total: Cumulative;
  routes: RouteRow[];
  /** one point per second, oldest first, up to a minute */
  history: { rate: number[]; errorRate: number[]; p99: (number | null)[] };
  /** slowest first, over the last minute */
  slowest: RecentRequest[];
  /** latest first */
  failing: RecentRequest[];
  agent: AgentHealth;
}

/** The agent's figures that are read as they are now. */
export interface AgentNow {
  scope: string;
  kongProcesses: number;
  inFlight: number;
  ringFill: number;
  rssBytes: number;
  tracesExporter: string;
  metricsExporter: string;
}

export function buildSnapshot(view: WindowView, recent: RecentRequests, now: AgentNow, timeMs: number): LiveSnapshot {
  const a = view.agent;
  const exporting = now.tracesExporter !== 'none' || now.metricsExporter !== 'none';
  const failing = a.inWindow.exportFailures > 0 || a.inWindow.spansDropped > 0;
  return {
    version: SNAPSHOT_VERSION,
    time: timeMs,
    scope: now.scope,
    windowSeconds: view.seconds,
    totals: { ...view.totals, inFlight: now.inFlight },
    total: view.cumulative,
    routes: view.rows.map((r) => ({ ...r.identity, window: r.window, total: r.cumulative })),
    history: view.history,
    slowest: recent.slowestRequests(),
    failing: recent.failingRequests(),
    agent: {
      kongProcesses: now.kongProcesses,
      eventsPerSecond: a.perSecond.eventsReceived,
      lostEvents: a.now.eventsLost,
      lostEventsInWindow: a.inWindow.eventsLost,
      ringFill: now.ringFill,
      spansDropped: a.now.spansDropped,
      spansDroppedInWindow: a.inWindow.spansDropped,
      exportFailures: a.now.exportFailures,
      export: {
        traces: now.tracesExporter,
        metrics: now.metricsExporter,
        state: !exporting ? 'off' : failing ? 'failing' : 'ok',
      },
      cpuPercent: a.perSecond.cpuMicros / 1e4,
      rssBytes: now.rssBytes,
    },
  };
}
