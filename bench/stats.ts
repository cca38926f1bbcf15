/**
 * Summaries of repeated measurements: these VMs are noisy, so every figure is reported as the
 * median of its rounds with the smallest and largest value beside it.
 */

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** undefined when no round produced the figure (e.g. an arm that failed every time) */
export function spread(values: (number | undefined)[]): Spread | undefined {
  const v = values.filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (v.length === 0) return undefined;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** Rounded for reports: enough digits to compare, not more than the noise justifies. */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
