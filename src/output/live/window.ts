/**
 * The live view's figures over time, from the HTTP metrics' own series: once a second a sample
 * adds up every SERVER series' cumulative counts per table row (a copy of bucket counts, nothing
 * on the exchange path), and a view compares the counts now with those of WINDOW_S seconds ago.
 * Rates are count deltas over elapsed time; percentiles come from bucket deltas, as Grafana's
 * histogram_quantile(rate(..._bucket[...])) does over the same buckets.
 *
 * Full samples (every row) are kept for WINDOW_S seconds; for the sparklines, the totals alone
 * for HISTORY_S seconds.
 */
import type { HttpSeriesReader } from '../../otel/http-metrics';
import { DURATION_BUCKETS_S } from '../../otel/metric-names';
import { histogramQuantile } from './quantile';
import { rowKey, rowOfAttributes, type RowIdentity } from './rows';
import type { Cumulative, Figures, LatencyFigures } from './snapshot';

export const WINDOW_S = 10;
export const HISTORY_S = 60;

const BUCKETS = DURATION_BUCKETS_S.length + 1;
// The layout of one row in a sample: counters, sums, then three bucket arrays.
const COUNT = 0;
const ERRORS = 1;
const S4XX = 2;
const S5XX = 3;
const NO_RESPONSE = 4;
const DURATION_SUM = 5;
const PROXY_SUM = 6;
const UPSTREAM_SUM = 7;
const UPSTREAM_COUNT = 8;
const RETRIES = 9;
const DURATION = 10;
const PROXY = DURATION + BUCKETS;
const UPSTREAM = PROXY + BUCKETS;
const STRIDE = UPSTREAM + BUCKETS;

/** The agent's own counters, cumulative; the window turns them into rates. */
export interface AgentCounters {
  eventsReceived: number;
  eventsLost: number;
  spansDropped: number;
  exportFailures: number;
  /** user + system CPU time, microseconds */
  cpuMicros: number;
}

interface Sample {
  atMs: number;
  /** rows in `data`, the totals after them */
  rows: number;
  data: Float64Array;
  agent: AgentCounters;
}

export interface RowView {
  identity: RowIdentity;
  window: Figures;
  cumulative: Cumulative;
}

export interface WindowView {
  /** what the window really spans: WINDOW_S once the agent has run that long */
  seconds: number;
  totals: Figures;
  cumulative: Cumulative;
  rows: RowView[];
  /** one point per second, oldest first, up to HISTORY_S */
  history: { rate: number[]; errorRate: number[]; p99: (number | null)[] };
  /** the agent's counters now, their rates over the window, and their increase in it */
  agent: { now: AgentCounters; perSecond: AgentCounters; inWindow: AgentCounters };
}

export interface WindowSources {
  series: HttpSeriesReader;
  /** upstream retries so far of a row, by rowKey */
  retriesOf(key: string): number;
  agent(): AgentCounters;
  /** monotonic ms */
  nowMs?: () => number;
}

export class LiveWindow {
  private readonly rows: RowIdentity[] = [];
  private readonly keys: string[] = [];
  private readonly rowByKey = new Map<string, number>();
  /** per series: its row, and its kind (bit 0 error, bit 1 4xx, bit 2 5xx, bit 3 no response) */
  private readonly seriesRow: number[] = [];
  private readonly seriesKind: number[] = [];
  private readonly recent: Sample[] = [];
  private readonly history: Sample[] = [];
  private readonly nowMs: () => number;

  constructor(private readonly sources: WindowSources) {
    this.nowMs = sources.nowMs ?? (() => performance.now());
    this.tick();
  }

  /** Once a second. */
  tick(): void {
    const s = this.take();
    this.recent.push(s);
    while (this.recent.length > WINDOW_S + 1) this.recent.shift();
    this.history.push({ ...s, rows: 0, data: s.data.slice(s.rows * STRIDE) });
    while (this.history.length > HISTORY_S + 1) this.history.shift();
  }

  /** The figures now, over the last WINDOW_S seconds. */
  view(): WindowView {
    const now = this.take();
    const old = this.recent[0];
    const seconds = Math.max(0.001, (now.atMs - old.atMs) / 1000);
    const delta = new Float64Array(STRIDE);
    const rowView = (row: number, nowAt: number, oldAt: number | undefined): [Figures, Cumulative] => {
      for (let k = 0; k < STRIDE; k++) delta[k] = now.data[nowAt + k] - (oldAt === undefined ? 0 : old.data[oldAt + k]);
      return [figures(delta, 0, seconds), cumulative(now.data, nowAt)];
    };
    const rows: RowView[] = [];
    for (let r = 0; r < now.rows; r++) {
      const [window, total] = rowView(r, r * STRIDE, r < old.rows ? r * STRIDE : undefined);
      rows.push({ identity: this.rows[r], window, cumulative: total });
    }
    const [totals, total] = rowView(now.rows, now.rows * STRIDE, old.rows * STRIDE);

    const rate: number[] = [];
    const errorRate: number[] = [];
    const p99: (number | null)[] = [];
    const h = this.history;
    for (let i = 1; i < h.length; i++) {
      const dt = Math.max(0.001, (h[i].atMs - h[i - 1].atMs) / 1000);
      for (let k = 0; k < STRIDE; k++) delta[k] = h[i].data[k] - h[i - 1].data[k];
      rate.push(delta[COUNT] / dt);
      errorRate.push(delta[ERRORS] / dt);
      p99.push(orNull(histogramQuantile(0.99, DURATION_BUCKETS_S, delta, DURATION)));
    }
    const agentDelta = (from: AgentCounters, dt: number): AgentCounters => ({
      eventsReceived: (now.agent.eventsReceived - from.eventsReceived) / dt,
      eventsLost: (now.agent.eventsLost - from.eventsLost) / dt,
      spansDropped: (now.agent.spansDropped - from.spansDropped) / dt,
      exportFailures: (now.agent.exportFailures - from.exportFailures) / dt,
      cpuMicros: (now.agent.cpuMicros - from.cpuMicros) / dt,
    });
    return {
      seconds,
      totals,
      cumulative: total,
      rows,
      history: { rate, errorRate, p99 },
      agent: {
        now: now.agent,
        perSecond: agentDelta(old.agent, seconds),
        inWindow: agentDelta(old.agent, 1),
      },
    };
  }

  /** Every series' cumulative counts added up per row, and the totals after the rows. */
  private take(): Sample {
    const { series } = this.sources;
    const count = series.serverSeriesCount;
    for (let s = this.seriesRow.length; s < count; s++) this.classify(s);
    const rows = this.rows.length;
    const data = new Float64Array((rows + 1) * STRIDE);
    for (let s = 0; s < count; s++) {
      const at = this.seriesRow[s] * STRIDE;
      const n = series.addServerBuckets('duration', s, data, at + DURATION);
      if (n === 0) continue;
      data[at + COUNT] += n;
      const kind = this.seriesKind[s];
      if (kind & 1) data[at + ERRORS] += n;
      if (kind & 2) data[at + S4XX] += n;
      if (kind & 4) data[at + S5XX] += n;
      if (kind & 8) data[at + NO_RESPONSE] += n;
      data[at + DURATION_SUM] += series.serverSum('duration', s);
      series.addServerBuckets('proxy', s, data, at + PROXY);
      data[at + PROXY_SUM] += series.serverSum('proxy', s);
      data[at + UPSTREAM_COUNT] += series.addServerBuckets('upstream', s, data, at + UPSTREAM);
      data[at + UPSTREAM_SUM] += series.serverSum('upstream', s);
    }
    const totals = rows * STRIDE;
    for (let r = 0; r < rows; r++) {
      const at = r * STRIDE;
      data[at + RETRIES] = this.sources.retriesOf(this.keys[r]);
      for (let k = 0; k < STRIDE; k++) data[totals + k] += data[at + k];
    }
    return { atMs: this.nowMs(), rows, data, agent: this.sources.agent() };
  }

  private classify(s: number): void {
    const attributes = this.sources.series.serverAttributes(s);
    const identity = rowOfAttributes(attributes);
    const key = rowKey(identity);
    let row = this.rowByKey.get(key);
    if (row === undefined) {
      row = this.rows.length;
      this.rows.push(identity);
      this.keys.push(key);
      this.rowByKey.set(key, row);
    }
    this.seriesRow[s] = row;
    // The overflow series mixes every status: its requests count, its errors cannot be told.
    const status = attributes['http.response.status_code'];
    let kind = 0;
    if (!identity.overflow) {
      if (typeof status !== 'number' || status <= 0) kind = 1 | 8;
      else if (status >= 500) kind = 1 | 4;
      else if (status >= 400) kind = 1 | 2;
    }
    this.seriesKind[s] = kind;
  }
}

function figures(d: Float64Array, at: number, seconds: number): Figures {
  const count = d[at + COUNT];
  const upstreamCount = d[at + UPSTREAM_COUNT];
  const durationSum = d[at + DURATION_SUM];
  return {
    rate: count / seconds,
    errorRate: d[at + ERRORS] / seconds,
    errorRatio: count > 0 ? d[at + ERRORS] / count : null,
    retryRate: d[at + RETRIES] / seconds,
    duration: latency(d, at + DURATION, count, durationSum),
    kong: latency(d, at + PROXY, count, d[at + PROXY_SUM]),
    upstream: latency(d, at + UPSTREAM, upstreamCount, d[at + UPSTREAM_SUM]),
    kongShare: durationSum > 0 ? d[at + PROXY_SUM] / durationSum : null,
    upstreamShare: durationSum > 0 ? d[at + UPSTREAM_SUM] / durationSum : null,
  };
}

function latency(d: Float64Array, at: number, count: number, sum: number): LatencyFigures {
  return {
    p50: orNull(histogramQuantile(0.5, DURATION_BUCKETS_S, d, at)),
    p95: orNull(histogramQuantile(0.95, DURATION_BUCKETS_S, d, at)),
    p99: orNull(histogramQuantile(0.99, DURATION_BUCKETS_S, d, at)),
    mean: count > 0 ? sum / count : null,
  };
}

function cumulative(d: Float64Array, at: number): Cumulative {
  return {
    requests: d[at + COUNT],
    errors: d[at + ERRORS],
    status4xx: d[at + S4XX],
    status5xx: d[at + S5XX],
    noResponse: d[at + NO_RESPONSE],
    retries: d[at + RETRIES],
  };
}

function orNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
