/**
 * The span sink for OTEL_TRACES_EXPORTER=console: one JSON line per span on stdout, for
 * debugging a setup without a collector. Not built for throughput.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { SpanSink } from './span-queue';
import type { SpanRecord } from './spans';

export class ConsoleSpanSink implements SpanSink {
  constructor(private readonly write: (line: string) => void = (line) => void process.stdout.write(line)) {}

  export(spans: SpanRecord[], resultCallback: (result: ExportResult) => void): void {
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
export function consoleView(s: SpanRecord): Record<string, unknown> {
  const ns = (t: [number, number]) => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
  return {
    name: s.name,
    kind: s.kind,
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    parentIsRemote: s.parentIsRemote,
    traceState: s.traceState,
    traceFlags: s.traceFlags,
    startTimeUnixNano: ns(s.startTime),
    endTimeUnixNano: ns(s.endTime),
    status: { code: s.statusCode, message: s.statusMessage },
    attributes: s.attributes,
  };
}
