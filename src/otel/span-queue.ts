/**
 * The bounded path from finished spans to an exporter: batches, a schedule, and a cap on exports
 * in flight. Each span is added to the batch being built as it arrives — the OTLP exporter encodes
 * it there and then, so no span object outlives its exchange's turn and the queue holds request
 * bytes, not objects. When export falls behind, new spans are dropped and counted; memory never
 * grows with load.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { SpanQueueConfig } from './config';
import type { ExportSpan } from './span';

/** An exporter of span objects (console, the SDK's exporters); the callback comes once per batch. */
export interface SpanSink {
  export(spans: ExportSpan[], resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

/** How the queue builds and sends batches: spans are added as they come, a batch is taken when full or due. */
export interface SpanBatcher<B = unknown> {
  add(span: ExportSpan): void;
  /** the spans added since the last take(), as one batch */
  take(): B;
  /** the callback comes exactly once, after the exporter's own retries */
  export(batch: B, resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

/** Batches of span objects for a SpanSink: the spans are kept, so they are made to outlive their batch. */
export function objectBatches(sink: SpanSink): SpanBatcher<ExportSpan[]> {
  let open: ExportSpan[] = [];
  return {
    add(span) {
      span.retain();
      open.push(span);
    },
    take() {
      const batch = open;
      open = [];
      return batch;
    },
    export: (batch, done) => sink.export(batch, done),
    shutdown: () => sink.shutdown(),
  };
}

const SHUTDOWN_MARGIN_MS = 250;

export interface SpanQueueStats {
  /** spans waiting now: being batched, waiting for an export slot, or being exported */
  queued: number;
  /** spans the exporter confirmed */
  exported: number;
  /** spans lost: queue full, their export failed after the exporter's retries, or unsent at shutdown */
  dropped: number;
  droppedQueueFull: number;
  droppedExportFailed: number;
  /** queued or still in flight when the shutdown deadline passed */
  droppedShutdown: number;
  /** export requests that failed (after the exporter's own retries) */
  exportFailures: number;
  exportsInFlight: number;
}

interface Ready<B> {
  batch: B;
  size: number;
}

export class SpanQueue<B = unknown> {
  /** spans in the batch being built */
  private open = 0;
  /** taken batches waiting for an export slot */
  private readonly ready: Ready<B>[] = [];
  private count = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
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
    private readonly batcher: SpanBatcher<B>,
    private readonly cfg: SpanQueueConfig,
  ) {}

  /** false when the span was dropped because the queue is full (or shut down) */
  push(span: ExportSpan): boolean {
    if (this.closed || this.count >= this.cfg.maxQueueSize) {
      this.s.droppedQueueFull++;
      return false;
    }
    this.batcher.add(span);
    this.open++;
    this.count++;
    if (this.open >= this.cfg.maxExportBatchSize) {
      this.takeOpen();
      this.pump();
    } else if (this.timer === undefined) {
      this.schedule();
    }
    return true;
  }

  /**
   * Counts a span that was not even built because the queue is full: building it only to drop
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
   * Exports everything queued and waits for the exports in flight, giving up at the deadline.
   * Resolves true when all was sent.
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
    // Stop flushing a little before the deadline: the caller's own deadline must find the
    // accounting below done, or the last stats line would miss what was lost.
    await this.flush(Math.max(1, Math.min(deadlineMs - SHUTDOWN_MARGIN_MS, deadlineMs * 0.9)));
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // count holds the batches in flight too: their late results are ignored from here on.
    this.s.droppedShutdown += this.count;
    for (const ticket of this.pending) ticket.settled = true;
    this.pending.clear();
    if (this.open > 0) this.batcher.take();
    this.ready.length = 0;
    this.open = 0;
    this.count = 0;
    const left = Math.max(1, deadlineMs - (Date.now() - started));
    await Promise.race([this.batcher.shutdown().catch(() => undefined), sleep(left)]);
  }

  private takeOpen(): void {
    this.ready.push({ batch: this.batcher.take(), size: this.open });
    this.open = 0;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump(true);
    }, this.cfg.scheduledDelayMs);
    // The schedule alone must not keep the agent alive at exit.
    this.timer.unref();
  }

  /** Starts as many exports as slots allow: taken batches always, the open one too when `partial`. */
  private pump(partial = false): void {
    while (this.inFlight < this.cfg.maxConcurrentExports) {
      if (this.ready.length === 0) {
        if (!partial || this.open === 0) break;
        this.takeOpen();
      }
      this.exportBatch(this.ready.shift()!);
    }
    if (this.count > 0 && this.timer === undefined && !this.closed) this.schedule();
  }

  private exportBatch(ready: Ready<B>): void {
    this.inFlight++;
    const ticket = { size: ready.size, settled: false };
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
      this.count -= ready.size;
      if (result.code === ExportResultCode.SUCCESS) {
        this.s.exported += ready.size;
      } else {
        this.s.exportFailures++;
        this.s.droppedExportFailed += ready.size;
      }
      for (const wake of this.idleWaiters.splice(0)) wake();
      if (!this.closed) this.pump(false);
    };
    try {
      this.batcher.export(ready.batch, finish);
    } catch (err) {
      finish({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
