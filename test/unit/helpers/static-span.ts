/**
 * An ExportSpan from plain values, for what exchange spans never carry but the encoder and the
 * exporters must still handle: any attribute type, UTF-8 keys, odd ids, far times.
 */
import type { AttributeValue, Attributes, HrTime, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { AttributeWriter, ExportSpan } from '../../../src/otel/span';

export interface StaticSpanSpec {
  name: string;
  kind: SpanKind;
  /** hex */
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  parentIsRemote?: boolean;
  traceState?: string;
  traceFlags?: number;
  startTime: HrTime;
  endTime: HrTime;
  statusCode?: SpanStatusCode;
  statusMessage?: string;
  attributes?: Attributes;
}

export class StaticSpan implements ExportSpan {
  readonly name: string;
  readonly kind: SpanKind;
  ids: Uint8Array;
  traceIdAt = 0;
  spanIdAt = 16;
  parentSpanIdAt: number;
  readonly parentIsRemote: boolean;
  readonly traceState: string | undefined;
  readonly traceFlags: number;
  readonly statusCode: SpanStatusCode;
  readonly statusMessage: string | undefined;
  private readonly start: HrTime;
  private readonly end: HrTime;
  private readonly attributes: Attributes;

  constructor(s: StaticSpanSpec) {
    this.name = s.name;
    this.kind = s.kind;
    this.ids = Buffer.concat([
      Buffer.from(s.traceId, 'hex'),
      Buffer.from(s.spanId, 'hex'),
      Buffer.from(s.parentSpanId ?? '', 'hex'),
    ]);
    this.parentSpanIdAt = s.parentSpanId === undefined ? -1 : 24;
    this.parentIsRemote = s.parentIsRemote ?? false;
    this.traceState = s.traceState;
    this.traceFlags = s.traceFlags ?? 1;
    this.start = s.startTime;
    this.end = s.endTime;
    this.statusCode = s.statusCode ?? 0;
    this.statusMessage = s.statusMessage;
    this.attributes = s.attributes ?? {};
  }

  /** Its own bytes already: nothing to copy. */
  retain(): void {}

  startTime(out: HrTime): HrTime {
    out[0] = this.start[0];
    out[1] = this.start[1];
    return out;
  }

  endTime(out: HrTime): HrTime {
    out[0] = this.end[0];
    out[1] = this.end[1];
    return out;
  }

  writeAttributes(w: AttributeWriter): void {
    for (const key of Object.keys(this.attributes)) w.any(key, this.attributes[key] as AttributeValue);
  }
}
