/**
 * Head sampling, decided from the trace identity the request assembly found or made.
 *
 * The ratio is read from the trace id's last 56 bits (the W3C "random" part), so every agent
 * and every span of one trace reaches the same decision: whole traces are kept or dropped.
 */
import type { TraceIds } from '../requests/types';
import type { SamplerKind } from './config';

export type Sampler = (ids: TraceIds) => boolean;

const TWO_POW_56 = 2 ** 56;

export function createSampler(kind: SamplerKind, ratio: number): Sampler {
  const threshold = ratio * TWO_POW_56;
  const byRatio = (ids: TraceIds): boolean => {
    if (ratio >= 1) return true;
    if (ratio <= 0) return false;
    const r = parseInt(ids.traceId.slice(18, 32), 16);
    return Number.isFinite(r) && r < threshold;
  };
  const root: Sampler =
    kind === 'always_on' || kind === 'parentbased_always_on'
      ? () => true
      : kind === 'always_off' || kind === 'parentbased_always_off'
        ? () => false
        : byRatio;
  if (!kind.startsWith('parentbased_')) return root;
  // A caller that already decided (its flag arrived in traceparent/B3) wins, as the spec's
  // parent-based sampler does for a remote parent.
  return (ids) => (ids.remoteParent ? ids.sampled : root(ids));
}
