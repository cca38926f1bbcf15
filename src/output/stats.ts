/**
 * The periodic stats line: the original design's figures (requests, responses, average response
 * time, 4xx, 5xx, errors, in flight) from the HTTP metrics' own counts, next to the agent's
 * health (events, lost events, ring fill, decoding, connections, export). It counts nothing
 * itself: it formats what the metrics, the capture and the exporter already count.
 */
import type { CaptureStats } from '../capture/native';
import type { RequestTotals } from '../otel/http-metrics';

export interface StatsInput {
  totals: RequestTotals;
  /** undefined before capture starts */
  capture?: CaptureStats;
  /** frames the decoder skipped (the assembler's malformed records are added to them) */
  decodeErrors: number;
  kongProcesses: number;
  spansExported: number;
  spansDropped: number;
  exportFailures: number;
  rssBytes: number;
  heapUsedBytes: number;
}

const MIB = 1048576;

export class StatsLine {
  private lastRequests = 0;
  private lastAt: number;

  constructor(now = Date.now()) {
    this.lastAt = now;
  }

  /** Fields of one line; requests_per_second is over the time since the previous line. */
  format(input: StatsInput, now = Date.now()): Record<string, unknown> {
    const t = input.totals;
    const capture = input.capture;
    const assembler = capture?.assembler;
    const seconds = Math.max(0.001, (now - this.lastAt) / 1000);
    const rate = (t.requests - this.lastRequests) / seconds;
    this.lastRequests = t.requests;
    this.lastAt = now;
    return {
      requests: t.requests,
      responses: t.responses,
      requests_per_second: Math.round(rate * 10) / 10,
      avg_response_time_ms: Math.round(t.avgResponseMs * 1000) / 1000,
      status_4xx: t.status4xx,
      status_5xx: t.status5xx,
      errors: t.errors,
      in_flight: activeServer(capture),
      upstream_attempts: t.upstreamAttempts,
      events: assembler?.records ?? 0,
      lost_events: capture?.lost ?? 0,
      ringbuf_fill:
        capture && capture.ringSizeBytes > 0
          ? Math.round((capture.ringUsedBytes / capture.ringSizeBytes) * 1000) / 1000
          : 0,
      decode_errors: input.decodeErrors + (assembler?.malformedRecords ?? 0),
      connections: assembler?.connections ?? 0,
      protocol_errors: assembler?.protocolErrors ?? 0,
      dropped_requests: assembler?.droppedRequests ?? 0,
      evicted: assembler?.evicted ?? 0,
      tls_unlinked: capture?.tlsUnlinked ?? 0,
      hpack_lost: assembler?.hpackLost ?? 0,
      kong_processes: input.kongProcesses,
      rss_mib: Math.round(input.rssBytes / MIB),
      heap_mib: Math.round(input.heapUsedBytes / MIB),
      spans_exported: input.spansExported,
      spans_dropped: input.spansDropped,
      export_failures: input.exportFailures,
    };
  }
}

/** SERVER requests in flight now, from the assembler's counts. */
function activeServer(capture: CaptureStats | undefined): number {
  const counts = capture?.assembler.activeServer;
  if (counts === undefined) return 0;
  let n = 0;
  for (const c of counts) n += c;
  return n;
}
