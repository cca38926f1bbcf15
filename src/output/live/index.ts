/**
 * The agent's side of `kong-watcher top`: an output that keeps the recent slow and failing
 * requests, a window over the HTTP metrics' series sampled once a second, and the snapshot the
 * endpoint serves. Nothing here runs per exchange except RecentRequests' compare.
 */
import type { HttpSeriesReader } from '../../otel/http-metrics';
import { RecentRequests, type RecentClock } from './recent';
import { buildSnapshot, type AgentNow, type LiveSnapshot } from './snapshot';
import { LiveWindow, type AgentCounters } from './window';

export { startLiveServer, SNAPSHOT_PATH } from './server';
export type { LiveSnapshot } from './snapshot';

export interface LiveSources {
  series: HttpSeriesReader;
  clock: RecentClock;
  counters(): AgentCounters;
  now(): AgentNow;
  /** monotonic ms (tests) */
  nowMs?: () => number;
  /** wall-clock ms (tests) */
  wallMs?: () => number;
}

export class LiveOutput {
  /** the output the agent adds to its outputs */
  readonly recent: RecentRequests;
  private readonly window: LiveWindow;

  constructor(private readonly sources: LiveSources) {
    this.recent = new RecentRequests(sources.clock);
    this.window = new LiveWindow({
      series: sources.series,
      retriesOf: (key) => this.recent.retriesOf(key),
      agent: sources.counters,
      nowMs: sources.nowMs,
    });
  }

  /** Once a second. */
  tick(): void {
    this.window.tick();
    this.recent.tick();
  }

  snapshot(): LiveSnapshot {
    return buildSnapshot(this.window.view(), this.recent, this.sources.now(), (this.sources.wallMs ?? Date.now)());
  }
}
