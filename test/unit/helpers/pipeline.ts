/**
 * Decode and enrich for the tests of the stages after them: frames (helpers/frames.ts) through
 * the real decoder and the real enrichment stage, collected in order.
 */
import type { HrTime } from '@opentelemetry/api';
import { decodeBatch, type ProcFrame } from '../../../src/capture/batch-decoder';
import type { EnrichedExchange } from '../../../src/enrich/enriched';
import { Enricher, type EnricherOptions } from '../../../src/enrich/enricher';
import { createRedactor } from '../../../src/enrich/redact';
import { Sampler } from '../../../src/enrich/sampler';
import { FRAME_BASE_NS, frameBatch, type ExchangeFrameSpec } from './frames';

export interface Enriched {
  exchanges: EnrichedExchange[];
  procs: ProcFrame[];
  malformed: number;
  enricher: Enricher;
}

/** Each inner array is one batch. Sampling is on (parentbased_always_on) unless options say otherwise. */
export function enrichBatches(
  batches: (Buffer | ExchangeFrameSpec)[][],
  options: Partial<EnricherOptions> = {},
): Enriched {
  const exchanges: EnrichedExchange[] = [];
  const procs: ProcFrame[] = [];
  const enricher = new Enricher(
    { exchange: (e) => exchanges.push(e) },
    {
      redactor: createRedactor(),
      sampler: new Sampler('parentbased_always_on', 1),
      ...options,
    },
  );
  let malformed = 0;
  for (const frames of batches) {
    const r = decodeBatch(frameBatch(frames), FRAME_BASE_NS, {
      exchange: (ex) => enricher.push(ex),
      proc: (p) => procs.push(p),
    });
    malformed += r.malformed;
    enricher.endBatch();
  }
  return { exchanges, procs, malformed, enricher };
}

/** One batch. */
export function enrich(
  frames: (Buffer | ExchangeFrameSpec)[],
  options: Partial<EnricherOptions> = {},
): EnrichedExchange[] {
  return enrichBatches([frames], options).exchanges;
}

/** Wall clock = 1_700_000_000 s + relative ns, exact. */
export const fakeClock = {
  toHrTime(relNs: number, out: HrTime = [0, 0]): HrTime {
    const s = Math.floor(relNs / 1e9);
    out[0] = 1_700_000_000 + s;
    out[1] = relNs - s * 1e9;
    return out;
  },
  toIso(relNs: number): string {
    const [s, ns] = fakeClock.toHrTime(relNs);
    return `${new Date(s * 1000).toISOString().slice(0, -4)}${String(ns).padStart(9, '0')}Z`;
  },
};
