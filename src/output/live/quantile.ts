/**
 * Percentiles from histogram buckets, computed the way Prometheus's histogram_quantile computes
 * them (promql/quantile.go): find the bucket holding the rank, then interpolate linearly inside
 * it, from 0 for the first bucket; a rank in the last (+Inf) bucket gives the highest finite
 * boundary. The live view and a Grafana panel over the same buckets then show the same number.
 */

/**
 * The q-quantile of per-bucket (not cumulative) counts: `counts[at + i]` is the count of bucket i,
 * i = 0..boundaries.length (the last is +Inf). NaN when there is no observation.
 */
export function histogramQuantile(q: number, boundaries: readonly number[], counts: ArrayLike<number>, at = 0): number {
  const buckets = boundaries.length + 1;
  let total = 0;
  for (let i = 0; i < buckets; i++) total += counts[at + i];
  if (!(total > 0) || Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const rank = q * total;
  // The first bucket whose cumulative count reaches the rank (the +Inf bucket is never searched).
  let below = 0;
  let b = 0;
  for (; b < boundaries.length; b++) {
    const inBucket = counts[at + b];
    if (below + inBucket >= rank) {
      const start = b === 0 ? 0 : boundaries[b - 1];
      if (b === 0 && boundaries[0] <= 0) return boundaries[0];
      return start + (boundaries[b] - start) * ((rank - below) / inBucket);
    }
    below += inBucket;
  }
  return boundaries[boundaries.length - 1];
}
