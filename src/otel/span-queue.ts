/**
 * The bounded path from finished spans to a SpanSink (the OTLP exporter): a fixed-size ring, batches, a
 * schedule, and a cap on exports in flight. When export falls behind, new spans are dropped
 * and counted; memory never grows with load.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { SpanQueueConfig } from './config';
import type { ExportSpan } from './span';

/** Where batches go; the callback comes exactly once per batch, after the sink's own retries. */
export interface SpanSink {
  export(spans: ExportSpan[], resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

export interface SpanQueueStats {
  /** spans waiting in the ring now */
  queued: number;
  /** spans the exporter confirmed */
  exported: number;
  /** spans lost: ring full, their export failed after the exporter's retries, or unsent at shutdown */
  dropped: number;
  droppedQueueFull: number;
  droppedExportFailed: number;
  /** queued or still in flight when the shutdown deadline passed */
  droppedShutdown: number;
  /** export requests that failed (after the exporter's own retries) */
  exportFailures: number;
  exportsInFlight: number;
}

export interface SpanQueueEvents {
  /** first failure after a success (or at start), and the first success after failures */
  onExportHealth?(healthy: boolean, error?: Error): void;
}

export class SpanQueue {
  private readonly ring: (ExportSpan | undefined)[];
  private head = 0;
  private count = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private healthy: boolean | undefined;
  private closed = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly s = {
    exported: 0,
    droppedQueueFull: 0,
    droppedExportFailed: 0,
    droppedShutdown: 0,
    exportFailures: 0,
  };
  /** exports waiting for their result: abandoned, and counted, at the shutdown deadline */
  private readonly pending = new Set<{ size: number; settled: boolean }>();

  constructor(
    private readonly sink: SpanSink,
    private readonly cfg: SpanQueueConfig,
    private readonly events: SpanQueueEvents = {},
  ) {
    this.ring = new Array(cfg.maxQueueSize);
  }

  /** false when the span was dropped because the ring is full (or the queue is shut down) */
  push(span: ExportSpan): boolean {
    if (this.closed || this.count === this.cfg.maxQueueSize) {
      this.s.droppedQueueFull++;
      return false;
    }
    this.ring[(this.head + this.count) % this.cfg.maxQueueSize] = span;
    this.count++;
    if (this.count >= this.cfg.maxExportBatchSize) this.pump();
    else if (this.timer === undefined) this.schedule();
    return true;
  }

  /**
   * Counts a span that was not even built because the ring is full: building it only to drop
   * it would turn an export backlog into garbage-collector pressure.
   */
  dropIfFull(): boolean {
    if (!this.closed && this.count < this.cfg.maxQueueSize) return false;
    this.s.droppedQueueFull++;
    return true;
  }

  stats(): SpanQueueStats {
    return {
      queued: this.count,
      exported: this.s.exported,
      dropped: this.s.droppedQueueFull + this.s.droppedExportFailed + this.s.droppedShutdown,
      droppedQueueFull: this.s.droppedQueueFull,
      droppedExportFailed: this.s.droppedExportFailed,
      droppedShutdown: this.s.droppedShutdown,
      exportFailures: this.s.exportFailures,
      exportsInFlight: this.inFlight,
    };
  }

  /**
   * Exports everything queued and waits for the exports in flight, giving up at the deadline
   * (what is still queued then is counted as dropped). Resolves true when all was sent.
   */
  async flush(deadlineMs: number): Promise<boolean> {
    const until = Date.now() + deadlineMs;
    while (this.count > 0 || this.inFlight > 0) {
      this.pump(true);
      const left = until - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.count === 0 && this.inFlight === 0;
  }

  /**
   * Flushes within the deadline, then counts what is left as dropped — queued spans, and
   * exports whose result has not come (a late result is ignored) — and shuts the exporter down.
   */
  async shutdown(deadlineMs: number): Promise<void> {
    const started = Date.now();
    await this.flush(deadlineMs);
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.s.droppedShutdown += this.count;
    this.ring.fill(undefined);
    this.count = 0;
    for (const ticket of this.pending) {
      ticket.settled = true;
      this.s.droppedShutdown += ticket.size;
    }
    this.pending.clear();
    const left = Math.max(1, deadlineMs - (Date.now() - started));
    await Promise.race([this.sink.shutdown().catch(() => undefined), sleep(left)]);
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump(true);
    }, this.cfg.scheduledDelayMs);
    // The schedule alone must not keep the agent alive at exit.
    this.timer.unref();
  }

  /** Starts as many exports as slots allow: full batches always, a partial one when `partial`. */
  private pump(partial = false): void {
    while (this.inFlight < this.cfg.maxConcurrentExports) {
      if (this.count === 0) break;
      if (this.count < this.cfg.maxExportBatchSize && !partial) break;
      this.exportBatch(this.take(Math.min(this.count, this.cfg.maxExportBatchSize)));
    }
    if (this.count > 0 && this.timer === undefined && !this.closed) this.schedule();
  }

  private take(n: number): ExportSpan[] {
    const size = this.cfg.maxQueueSize;
    const batch = new Array<ExportSpan>(n);
    for (let i = 0; i < n; i++) {
      const at = (this.head + i) % size;
      batch[i] = this.ring[at]!;
      this.ring[at] = undefined;
    }
    this.head = (this.head + n) % size;
    this.count -= n;
    return batch;
  }

  private exportBatch(batch: ExportSpan[]): void {
    this.inFlight++;
    const ticket = { size: batch.length, settled: false };
    this.pending.add(ticket);
    // The exporter bounds its own retries by its timeout; this guard frees the slot even if a
    // callback never comes, so one stuck request cannot stall the queue forever.
    const guard = setTimeout(
      () => finish({ code: ExportResultCode.FAILED, error: new Error('export timed out') }),
      this.cfg.exportTimeoutMs + 1000,
    );
    guard.unref();
    const finish = (result: ExportResult): void => {
      if (ticket.settled) return;
      ticket.settled = true;
      this.pending.delete(ticket);
      clearTimeout(guard);
      this.inFlight--;
      if (result.code === ExportResultCode.SUCCESS) {
        this.s.exported += batch.length;
        if (this.healthy !== true) {
          this.healthy = true;
          this.events.onExportHealth?.(true);
        }
      } else {
        this.s.exportFailures++;
        this.s.droppedExportFailed += batch.length;
        if (this.healthy !== false) {
          this.healthy = false;
          this.events.onExportHealth?.(false, result.error);
        }
      }
      for (const wake of this.idleWaiters.splice(0)) wake();
      if (!this.closed) this.pump(false);
    };
    try {
      this.sink.export(batch, finish);
    } catch (err) {
      finish({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
