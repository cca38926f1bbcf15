/**
 * Head sampling (OTEL_TRACES_SAMPLER), decided once per SERVER exchange from the trace context the
 * native assembler found or made. Its CLIENT exchanges follow that decision (src/enrich/enricher.ts).
 *
 * The ratio is read from the trace id's last 56 bits (the W3C "random" part), so every agent and
 * every span of one trace reaches the same decision: whole traces are kept or dropped.
 */
import type { Exchange } from '../capture/exchange';
import { TRACE_ID_OFFSET } from '../capture/exchange';
import { ExchangeFlag } from '../capture/exchange-layout';

export type SamplerKind =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export const SAMPLER_KINDS: readonly SamplerKind[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
];

const TWO_POW_56 = 2 ** 56;
const TWO_32 = 4294967296;
const F_SAMPLED = ExchangeFlag.Sampled;
const F_CALLER_CONTEXT = ExchangeFlag.CallerContext;
const ROOT_ON = 0;
const ROOT_OFF = 1;
const ROOT_RATIO = 2;

export class Sampler {
  private readonly root: number;
  private readonly parentBased: boolean;
  private readonly threshold: number;

  constructor(
    readonly kind: SamplerKind,
    readonly ratio: number,
  ) {
    this.parentBased = kind.startsWith('parentbased_');
    this.root = kind.endsWith('always_on')
      ? ROOT_ON
      : kind.endsWith('always_off')
        ? ROOT_OFF
        : ratio >= 1
          ? ROOT_ON
          : ratio <= 0
            ? ROOT_OFF
            : ROOT_RATIO;
    this.threshold = ratio * TWO_POW_56;
  }

  /**
   * A SERVER exchange: a caller that said "not sampled" (traceparent flag, b3: 0) gets no spans
   * with any sampler; with a parent-based sampler a caller's context decides, else the root does.
   */
  server(ex: Exchange): boolean {
    const flags = ex.flags;
    if ((flags & F_SAMPLED) === 0) return false;
    if (this.parentBased && (flags & F_CALLER_CONTEXT) !== 0) return true;
    return this.decideRoot(ex);
  }

  /** An exchange whose SERVER decision is unknown (Kong's own calls, or a late attempt): its own trace id. */
  orphan(ex: Exchange): boolean {
    return (ex.flags & F_SAMPLED) !== 0 && this.decideRoot(ex);
  }

  private decideRoot(ex: Exchange): boolean {
    if (this.root === ROOT_ON) return true;
    if (this.root === ROOT_OFF) return false;
    return traceIdRandom(ex.frame, ex.frameAt + TRACE_ID_OFFSET) < this.threshold;
  }
}

/** The trace id's last 7 bytes (hex digits 18..31) as a number, the W3C random part. */
function traceIdRandom(buf: Uint8Array, traceIdAt: number): number {
  const hi = (buf[traceIdAt + 9] << 16) | (buf[traceIdAt + 10] << 8) | buf[traceIdAt + 11];
  const lo =
    buf[traceIdAt + 12] * 16777216 + ((buf[traceIdAt + 13] << 16) | (buf[traceIdAt + 14] << 8) | buf[traceIdAt + 15]);
  return hi * TWO_32 + lo;
}
