import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { objectBatches, SpanQueue, type SpanSink } from '../../src/otel/span-queue';
import type { ExportSpan } from '../../src/otel/span';

const span = (i: number) => ({ name: `s${i}`, retain() {} }) as unknown as ExportSpan;
const cfg = {
  maxQueueSize: 100,
  maxExportBatchSize: 10,
  scheduledDelayMs: 20,
  exportTimeoutMs: 5000,
  maxConcurrentExports: 2,
};

/** A sink whose exports complete only when the test says so. */
function manualSink() {
  const pending: { batch: ExportSpan[]; done: (r: ExportResult) => void }[] = [];
  const sink: SpanSink = {
    export: (batch, done) => void pending.push({ batch, done }),
    shutdown: async () => undefined,
  };
  return { sink, pending };
}

test('full batches go out at once, at most maxConcurrentExports in flight', () => {
  const { sink, pending } = manualSink();
  const q = new SpanQueue(objectBatches(sink), cfg);
  for (let i = 0; i < 35; i++) q.push(span(i));
  assert.equal(pending.length, 2, 'two exports in flight, the cap');
  assert.deepEqual(
    pending.map((p) => p.batch.length),
    [10, 10],
    'full batches',
  );
  assert.equal(q.stats().queued, 35, 'all held: 20 in flight, the rest waits');
  assert.equal(q.stats().exportsInFlight, 2);
  pending.shift()!.done({ code: ExportResultCode.SUCCESS });
  assert.equal(pending.length, 2, 'a freed slot takes the next full batch');
  assert.equal(q.stats().exported, 10);
  assert.equal(q.stats().queued, 25, 'the exported batch left the queue');
});

test('a partial batch leaves after the scheduled delay', async () => {
  const { sink, pending } = manualSink();
  const q = new SpanQueue(objectBatches(sink), cfg);
  q.push(span(1));
  q.push(span(2));
  assert.equal(pending.length, 0, 'not yet');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(pending.length, 1, 'sent after the delay');
  assert.equal(pending[0].batch.length, 2);
});

test('when export falls behind, the queue stays bounded (in-flight batches included) and drops are counted', () => {
  const { sink, pending } = manualSink();
  const q = new SpanQueue(objectBatches(sink), cfg);
  let accepted = 0;
  for (let i = 0; i < 10_000; i++) if (q.push(span(i))) accepted++;
  const s = q.stats();
  assert.equal(pending.length, 2, 'never more than the cap in flight');
  assert.equal(s.queued, 100, 'the queue holds exactly maxQueueSize, batches in flight included');
  assert.equal(accepted, 100, 'no more than that is ever accepted');
  assert.equal(s.droppedQueueFull, 10_000 - 100, 'every other span counted as dropped');
  assert.equal(s.dropped, s.droppedQueueFull);
});

test('failed exports count their spans as dropped', () => {
  const { sink, pending } = manualSink();
  const q = new SpanQueue(objectBatches(sink), cfg);
  for (let i = 0; i < 40; i++) q.push(span(i));
  pending.shift()!.done({ code: ExportResultCode.FAILED, error: new Error('UNAVAILABLE') });
  pending.shift()!.done({ code: ExportResultCode.FAILED, error: new Error('UNAVAILABLE') });
  pending.shift()!.done({ code: ExportResultCode.SUCCESS });
  const s = q.stats();
  assert.equal(s.exportFailures, 2, 'two failed requests');
  assert.equal(s.droppedExportFailed, 20, 'their spans');
  assert.equal(s.exported, 10);
});

test('an exporter that throws does not break the queue', () => {
  let calls = 0;
  const q = new SpanQueue(
    objectBatches({
      export: () => {
        calls++;
        throw new Error('boom');
      },
      shutdown: async () => undefined,
    }),
    cfg,
  );
  for (let i = 0; i < 30; i++) q.push(span(i));
  assert.equal(calls, 3, 'each batch tried');
  assert.equal(q.stats().exportFailures, 3);
  assert.equal(q.stats().droppedExportFailed, 30);
});

test('flush sends everything; shutdown gives up at the deadline and counts the rest', async () => {
  const done: ExportSpan[] = [];
  const fast: SpanSink = {
    export: (b, cb) =>
      setImmediate(() => {
        done.push(...b);
        cb({ code: ExportResultCode.SUCCESS });
      }),
    shutdown: async () => undefined,
  };
  const q = new SpanQueue(objectBatches(fast), cfg);
  for (let i = 0; i < 55; i++) q.push(span(i));
  assert.equal(await q.flush(1000), true, 'flushed');
  assert.equal(done.length, 55);

  const { sink } = manualSink();
  const stuck = new SpanQueue(objectBatches(sink), cfg);
  for (let i = 0; i < 50; i++) stuck.push(span(i));
  const t0 = Date.now();
  await stuck.shutdown(100);
  assert.ok(Date.now() - t0 < 1000, 'shutdown honours its deadline');
  assert.equal(stuck.stats().queued, 0, 'nothing retained');
  // queued and in flight alike: every span that never got a result is counted as lost
  assert.equal(stuck.stats().droppedShutdown, 50, 'every unsent span counted as dropped at shutdown');
  assert.equal(stuck.stats().dropped, 50, 'and in the total');
  assert.equal(stuck.push(span(0)), false, 'closed queue refuses spans');
});
