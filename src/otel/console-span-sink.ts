/**
 * The span sink for OTEL_TRACES_EXPORTER=console: one JSON line per span on stdout, for
 * debugging a setup without a collector. Not built for throughput.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { HrTime } from '@opentelemetry/api';
import { spanAttributes, spanIdHex, type ExportSpan } from './span';
import type { SpanSink } from './span-queue';

export class ConsoleSpanSink implements SpanSink {
  constructor(private readonly write: (line: string) => void = (line) => void process.stdout.write(line)) {}

  export(spans: ExportSpan[], resultCallback: (result: ExportResult) => void): void {
    try {
      let out = '';
      for (const s of spans) out += `${JSON.stringify(consoleView(s))}\n`;
      this.write(out);
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (err) {
      resultCallback({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }

  async shutdown(): Promise<void> {}
}

/** Times as unix ns strings: exact, and readable next to a collector's output. */
export function consoleView(s: ExportSpan): Record<string, unknown> {
  const ns = (t: HrTime) => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
  return {
    name: s.name,
    kind: s.kind,
    traceId: spanIdHex(s, s.traceIdAt, 16),
    spanId: spanIdHex(s, s.spanIdAt, 8),
    parentSpanId: spanIdHex(s, s.parentSpanIdAt, 8),
    parentIsRemote: s.parentIsRemote,
    traceState: s.traceState,
    traceFlags: s.traceFlags,
    startTimeUnixNano: ns(s.startTime([0, 0])),
    endTimeUnixNano: ns(s.endTime([0, 0])),
    status: { code: s.statusCode, message: s.statusMessage },
    attributes: spanAttributes(s),
  };
}
