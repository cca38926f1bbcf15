/**
 * Which exchanges become spans, decided once per SERVER exchange after its response, when the
 * whole exchange is known. Its CLIENT exchanges follow that decision (src/enrich/enricher.ts), so
 * traces stay whole. Metrics count every exchange whatever is decided here.
 *
 * In order:
 *  1. a caller that said "not sampled" (traceparent flags 00, b3: 0) gets no spans, whatever the
 *     sampler: Kong forwarded that decision upstream, so no other span of the trace exists;
 *  2. OTEL_TRACES_SAMPLER, built from the SDK's own samplers: ParentBasedSampler follows a caller
 *     that sampled, AlwaysOn / AlwaysOff as they are. Its root is TailRules: an error (5xx or an
 *     error.type) is kept when SAMPLE_KEEP_ERRORS, a request slower than SAMPLE_KEEP_SLOWER_THAN
 *     too, and the rest goes to the root sampler.
 *
 * The ratio sampler is ours, not the SDK's TraceIdRatioBasedSampler: that one XORs the trace id's
 * four 32-bit words, so its decisions cannot be written as an OpenTelemetry threshold (`th` in
 * tracestate) and differ from those of consistent samplers elsewhere in the trace (collectors and
 * SDKs that read the trace id's last 56 bits). Ours keeps a trace when those 56 bits are at least
 * the threshold (1 - ratio) * 2^56, as the specification's consistent probability sampling does.
 *
 * Every kept span says how it was kept (SamplingOutcome): the rule, the probability it had of
 * being kept (1 for rules that keep every such request), and that probability as `th`, so that a
 * backend can extrapolate counts: errors and slow requests count once, the rest 1 / ratio times.
 */
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace, type Attributes, type Context } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  type Sampler as SdkSampler,
  type SamplingResult,
} from '@opentelemetry/sdk-trace-node';
import type { Exchange } from '../capture/exchange';
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

/** The rules that look at the finished exchange (SAMPLE_KEEP_ERRORS, SAMPLE_KEEP_SLOWER_THAN). */
export interface TailRules {
  keepErrors: boolean;
  /** 0: off */
  keepSlowerThanNs: number;
}

/** Head sampling only: what `new Sampler(kind, ratio)` does. */
export const NO_TAIL_RULES: TailRules = { keepErrors: false, keepSlowerThanNs: 0 };

export type SamplingRule = 'parent' | 'error' | 'slow' | 'sampler';

/** Why a span was kept. One object per rule, shared by every span it kept. */
export interface SamplingOutcome extends SamplingResult {
  readonly rule: SamplingRule;
  /** the probability of being kept; undefined for 'parent' (the caller's tracestate may say) */
  readonly ratio: number | undefined;
  /** `th` for the `ot` tracestate entry (hex, trailing zeros removed); undefined for 'parent' */
  readonly threshold: string | undefined;
}

/** Span attributes of the outcome, by the name the spans carry them under. */
export const ATTR_SAMPLING_RULE = 'kong_watcher.sampling.rule';
export const ATTR_SAMPLING_RATIO = 'kong_watcher.sampling.ratio';

/** Passed to the SDK sampler as span attributes: the finished exchange's error type and duration. */
const ATTR_ERROR_TYPE = 'error.type';
const ATTR_DURATION_NS = 'kong_watcher.duration_ns';

const F_SAMPLED = ExchangeFlag.Sampled;
const F_CALLER_CONTEXT = ExchangeFlag.CallerContext;
const F_CALLER_SAMPLED_SET = ExchangeFlag.CallerSampledSet;
const F_PARENT_SPAN = ExchangeFlag.ParentSpan;
const TWO_POW_56 = 2 ** 56;

function outcome(rule: SamplingRule, ratio: number | undefined): SamplingOutcome {
  return {
    decision: SamplingDecision.RECORD_AND_SAMPLED,
    rule,
    ratio,
    threshold: ratio === undefined ? undefined : thresholdHex(ratio),
  };
}

const KEPT_PARENT = outcome('parent', undefined);
const KEPT_ERROR = outcome('error', 1);
const KEPT_SLOW = outcome('slow', 1);
const NOT_SAMPLED: SamplingResult = { decision: SamplingDecision.NOT_RECORD };

/**
 * The threshold of a ratio as 56-bit integer halves: a trace is kept when the 56 random bits of
 * its id are >= (1 - ratio) * 2^56. Split so that comparisons stay exact in doubles.
 */
function thresholdOf(ratio: number): { hi: number; lo: number } {
  const t = BigInt(TWO_POW_56) - BigInt(Math.round(Math.min(1, Math.max(0, ratio)) * TWO_POW_56));
  return { hi: Number(t >> 32n), lo: Number(t & 0xffffffffn) };
}

/**
 * `th` of a ratio: 14 hex digits of the threshold, trailing zeros removed ("0" for ratio 1);
 * undefined for a ratio so small that nothing is ever kept.
 */
export function thresholdHex(ratio: number): string | undefined {
  const { hi, lo } = thresholdOf(ratio);
  if (hi === 0 && lo === 0) return '0';
  if (hi >= 2 ** 24) return undefined;
  const hex = hi.toString(16).padStart(6, '0') + lo.toString(16).padStart(8, '0');
  return hex.replace(/0+$/, '');
}

/** The probability a `th` value stands for; undefined when it is not one. */
export function ratioOfThreshold(th: string): number | undefined {
  if (!/^[0-9a-f]{1,14}$/.test(th)) return undefined;
  const t = parseInt(th.padEnd(14, '0'), 16);
  return 1 - t / TWO_POW_56;
}

/**
 * Consistent probability sampling on the trace id's last 56 bits (the W3C random part): every
 * agent and collector with the same ratio keeps the same traces.
 */
export class ConsistentRatioSampler implements SdkSampler {
  private readonly hi: number;
  private readonly lo: number;
  private readonly kept: SamplingOutcome;

  constructor(readonly ratio: number) {
    ({ hi: this.hi, lo: this.lo } = thresholdOf(ratio));
    this.kept = outcome('sampler', ratio);
  }

  shouldSample(_context: Context, traceId: string): SamplingResult {
    if (traceId.length !== 32) return NOT_SAMPLED;
    const hi = parseInt(traceId.slice(18, 24), 16);
    const lo = parseInt(traceId.slice(24, 32), 16);
    return hi > this.hi || (hi === this.hi && lo >= this.lo) ? this.kept : NOT_SAMPLED;
  }

  toString(): string {
    return `ConsistentRatio{${this.ratio}}`;
  }
}

/**
 * The root of the sampler: errors and slow requests first (the exchange is finished, so its
 * error type and duration are known), then the root sampler.
 */
class TailRulesSampler implements SdkSampler {
  private readonly kept: SamplingOutcome;

  constructor(
    private readonly rules: TailRules,
    private readonly root: SdkSampler,
    rootRatio: number,
  ) {
    this.kept = outcome('sampler', rootRatio);
  }

  shouldSample(
    context: Context,
    traceId: string,
    spanName: string,
    spanKind: SpanKind,
    attributes: Attributes,
  ): SamplingResult {
    if (this.rules.keepErrors && attributes[ATTR_ERROR_TYPE] !== undefined) return KEPT_ERROR;
    const slower = this.rules.keepSlowerThanNs;
    if (slower > 0 && (attributes[ATTR_DURATION_NS] as number) >= slower) return KEPT_SLOW;
    const r = this.root.shouldSample(context, traceId, spanName, spanKind, attributes, []);
    if (r.decision !== SamplingDecision.RECORD_AND_SAMPLED) return NOT_SAMPLED;
    return (r as Partial<SamplingOutcome>).rule !== undefined ? r : this.kept;
  }

  toString(): string {
    return `TailRules{errors=${this.rules.keepErrors}, slowerThanNs=${this.rules.keepSlowerThanNs}, root=${this.root.toString()}}`;
  }
}

/** OTEL_TRACES_SAMPLER as the SDK's samplers, with TailRules as the root. */
export function buildSdkSampler(kind: SamplerKind, ratio: number, rules: TailRules): SdkSampler {
  const rootKind = kind.replace('parentbased_', '');
  const root =
    rootKind === 'always_on' || (rootKind === 'traceidratio' && ratio >= 1)
      ? new AlwaysOnSampler()
      : rootKind === 'always_off' || ratio <= 0
        ? new AlwaysOffSampler()
        : new ConsistentRatioSampler(ratio);
  const rootRatio = root instanceof AlwaysOnSampler ? 1 : root instanceof AlwaysOffSampler ? 0 : ratio;
  const tail = new TailRulesSampler(rules, root, rootRatio);
  return kind.startsWith('parentbased_') ? new ParentBasedSampler({ root: tail }) : tail;
}

export class Sampler {
  private readonly sdk: SdkSampler;
  /** reused for every call: samplers read attributes, never keep them */
  private readonly attributes: Attributes = {};

  constructor(
    readonly kind: SamplerKind,
    readonly ratio: number,
    readonly rules: TailRules = NO_TAIL_RULES,
  ) {
    this.sdk = buildSdkSampler(kind, ratio, rules);
  }

  /**
   * A SERVER exchange, finished: undefined when it gets no spans. `errorType` is its error.type
   * (an error code, or a 5xx status).
   */
  server(ex: Exchange, errorType: string | undefined): SamplingOutcome | undefined {
    const flags = ex.flags;
    if ((flags & F_SAMPLED) === 0) return undefined;
    // A caller that stated a decision is the parent; one that left it to us (B3 without a
    // sampled flag) is not, and the root decides.
    const parent =
      (flags & (F_CALLER_CONTEXT | F_CALLER_SAMPLED_SET | F_PARENT_SPAN)) ===
      (F_CALLER_CONTEXT | F_CALLER_SAMPLED_SET | F_PARENT_SPAN);
    return this.decide(ex, parent ? callerContext(ex) : ROOT_CONTEXT, SpanKind.SERVER, errorType);
  }

  /** An exchange whose SERVER decision is unknown (Kong's own calls, or a late attempt): its own trace id decides. */
  orphan(ex: Exchange, errorType: string | undefined): SamplingOutcome | undefined {
    if ((ex.flags & F_SAMPLED) === 0) return undefined;
    return this.decide(ex, ROOT_CONTEXT, SpanKind.CLIENT, errorType);
  }

  private decide(
    ex: Exchange,
    context: Context,
    kind: SpanKind,
    errorType: string | undefined,
  ): SamplingOutcome | undefined {
    const attributes = this.attributes;
    attributes[ATTR_ERROR_TYPE] = errorType;
    attributes[ATTR_DURATION_NS] = ex.endNs > ex.startNs ? ex.endNs - ex.startNs : 0;
    const r = this.sdk.shouldSample(context, ex.traceId, '', kind, attributes, []);
    if (r.decision !== SamplingDecision.RECORD_AND_SAMPLED) return undefined;
    // Not one of ours: the SDK's ParentBasedSampler followed the caller.
    return (r as Partial<SamplingOutcome>).rule !== undefined ? (r as SamplingOutcome) : KEPT_PARENT;
  }
}

/** The caller's span as the SDK's samplers read a parent: remote, and sampled (an unsampled one never gets here). */
function callerContext(ex: Exchange): Context {
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: ex.traceId,
    spanId: ex.parentSpanId ?? '',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
}

/** The kept span's tracestate: the one it came with, with `th` set in the `ot` entry when the outcome has one. */
export function sampledTraceState(received: string | undefined, outcome: SamplingOutcome): string | undefined {
  const th = outcome.threshold;
  if (th === undefined) return received;
  if (received === undefined || received === '') return `ot=th:${th}`;
  if (received === lastReceived && th === lastThreshold) return lastMerged;
  lastReceived = received;
  lastThreshold = th;
  lastMerged = withThreshold(received, th);
  return lastMerged;
}

let lastReceived = '';
let lastThreshold = '';
let lastMerged = '';

/** W3C tracestate: the modified `ot` entry goes first, its other sub-keys kept. */
function withThreshold(received: string, th: string): string {
  const others: string[] = [];
  let ot = `th:${th}`;
  for (const raw of received.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    if (!entry.startsWith('ot=')) {
      others.push(entry);
      continue;
    }
    const kept = entry
      .slice(3)
      .split(';')
      .filter((kv) => kv !== '' && !kv.startsWith('th:'));
    if (kept.length > 0) ot += `;${kept.join(';')}`;
  }
  return [`ot=${ot}`, ...others].join(',');
}

/** The probability a caller's tracestate states (`ot=...th:...`); undefined when it states none. */
export function callerRatio(received: string | undefined): number | undefined {
  if (received === undefined || received === '') return undefined;
  const m = /(?:^|,)\s*ot=(?:[^,]*;)?th:([0-9a-f]+)/.exec(received);
  return m === null ? undefined : ratioOfThreshold(m[1]);
}
