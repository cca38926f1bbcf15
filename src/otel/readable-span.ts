/**
 * The SDK's span exporters (OTLP/HTTP, the console, OTLP/gRPC from the package) over our spans:
 * a ReadableSpan view of an ExportSpan, and a SpanSink that hands batches to a SpanExporter.
 *
 * A view, not a copy: each property is read from the span when an exporter asks for it. What the
 * SDK's interface forces is made then and only then: hex id strings in a SpanContext, HrTime
 * tuples, a TraceState object and an Attributes object. The span itself was retained by the
 * queue (its exchange's frame copied out of its batch), as every batched span object must be.
 */
import type { Attributes, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import { TraceState, type ExportResult, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace-node';
import { spanAttributes, spanIdHex, type ExportSpan } from './span';
import type { SpanSink } from './span-queue';

const NO_LINKS: Link[] = [];
const NO_EVENTS: TimedEvent[] = [];
const traceStates = new Map<string, TraceState>();

export class ReadableExportSpan implements ReadableSpan {
  private context: SpanContext | undefined;
  private attrs: Attributes | undefined;
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;

  constructor(
    private readonly span: ExportSpan,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {}

  get name(): string {
    return this.span.name;
  }

  get kind(): SpanKind {
    return this.span.kind;
  }

  spanContext(): SpanContext {
    const s = this.span;
    this.context ??= {
      traceId: spanIdHex(s, s.traceIdAt, 16)!,
      spanId: spanIdHex(s, s.spanIdAt, 8)!,
      traceFlags: s.traceFlags,
      traceState: traceStateOf(s.traceState),
      isRemote: false,
    };
    return this.context;
  }

  get parentSpanContext(): SpanContext | undefined {
    const s = this.span;
    if (s.parentSpanIdAt < 0) return undefined;
    return {
      traceId: this.spanContext().traceId,
      spanId: spanIdHex(s, s.parentSpanIdAt, 8)!,
      traceFlags: s.traceFlags,
      isRemote: s.parentIsRemote,
    };
  }

  get startTime(): HrTime {
    return this.span.startTime([0, 0]);
  }

  get endTime(): HrTime {
    return this.span.endTime([0, 0]);
  }

  get duration(): HrTime {
    const start = this.startTime;
    const end = this.endTime;
    let s = end[0] - start[0];
    let ns = end[1] - start[1];
    if (ns < 0) {
      s -= 1;
      ns += 1e9;
    }
    return [s, ns];
  }

  get status(): SpanStatus {
    const message = this.span.statusMessage;
    return message === undefined ? { code: this.span.statusCode } : { code: this.span.statusCode, message };
  }

  get attributes(): Attributes {
    this.attrs ??= spanAttributes(this.span);
    return this.attrs;
  }
}

/** A tracestate takes a handful of values: parsed once each. */
function traceStateOf(text: string | undefined): TraceState | undefined {
  if (text === undefined || text === '') return undefined;
  let ts = traceStates.get(text);
  if (ts === undefined) {
    if (traceStates.size >= 256) traceStates.clear();
    ts = new TraceState(text);
    traceStates.set(text, ts);
  }
  return ts;
}

/** Batches of our spans to one of the SDK's SpanExporters, each span seen through a ReadableExportSpan. */
export class SdkSpanSink implements SpanSink {
  constructor(
    private readonly exporter: SpanExporter,
    private readonly resource: Resource,
    private readonly scope: InstrumentationScope,
  ) {}

  export(spans: ExportSpan[], resultCallback: (result: ExportResult) => void): void {
    const readable: ReadableSpan[] = new Array(spans.length);
    for (let i = 0; i < spans.length; i++) readable[i] = new ReadableExportSpan(spans[i], this.resource, this.scope);
    this.exporter.export(readable, resultCallback);
  }

  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }
}
