/**
 * The request stage's one entry point: decoded capture records in, finished HttpExchange
 * objects out (to an ExchangeSink), with trace ids and upstream attempts tied to their
 * inbound requests.
 */
import type { CaptureRecord } from '../capture/records';
import { Assembler } from './assembler';
import {
  ConnectionTracker,
  DEFAULT_TRACKER_OPTIONS,
  type TrackerOptions,
  type TrackerStats,
} from './connection-tracker';
import { IdGenerator } from './trace-context';
import type { ExchangeSink } from './types';

export interface PipelineOptions extends Partial<TrackerOptions> {
  /** fills a buffer with random bytes for trace/span ids (default crypto.randomFillSync) */
  random?: (buf: Buffer) => void;
}

export interface PipelineStats extends TrackerStats {
  /** in-flight inbound requests waiting for upstream attempts to be matched to them */
  inFlightServer: number;
  /** upstream calls that matched no inbound request (Kong's own traffic, or a miss) */
  unmatchedAttempts: number;
}

export class RequestPipeline {
  private readonly tracker: ConnectionTracker;
  private readonly assembler: Assembler;

  constructor(sink: ExchangeSink, options: PipelineOptions = {}) {
    const { random, ...rest } = options;
    const trackerOptions: TrackerOptions = { ...DEFAULT_TRACKER_OPTIONS };
    for (const [key, value] of Object.entries(rest)) {
      if (value !== undefined) (trackerOptions as unknown as Record<string, unknown>)[key] = value;
    }
    this.assembler = new Assembler(sink, new IdGenerator(random));
    this.tracker = new ConnectionTracker(
      {
        requestHead: (ex) => this.assembler.requestHead(ex),
        exchangeDone: (ex) => this.assembler.exchangeDone(ex),
      },
      trackerOptions,
    );
  }

  /** One decoded record. Never throws on bad input. */
  handle(record: CaptureRecord): void {
    this.tracker.handle(record);
  }

  /** Call periodically with the clock's nowRelNs(): reports stuck exchanges, forgets lost connections. */
  flushIdle(nowNs: number): void {
    this.tracker.flushIdle(nowNs);
  }

  /** Shutdown: reports every unfinished exchange with errorCode "agent_stopped". */
  flushAll(nowNs: number): void {
    this.tracker.flushAll(nowNs);
  }

  stats(): PipelineStats {
    return {
      ...this.tracker.stats(),
      inFlightServer: this.assembler.inFlightServer,
      unmatchedAttempts: this.assembler.unmatchedAttempts,
    };
  }
}
