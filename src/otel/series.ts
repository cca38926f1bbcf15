/**
 * The storage of in-place metric aggregation: series found by numeric keys in an open-addressed
 * table (no string keys, nothing allocated per lookup), and histograms kept as columns of typed
 * arrays indexed by series.
 */
import type { Histogram } from '@opentelemetry/sdk-metrics';

const EMPTY = -1;

/** (a, b, c) int32 keys -> series index. */
export class SeriesIndex {
  private keys: Int32Array;
  private values: Int32Array;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 256) {
    let capacity = 16;
    while (capacity < initialCapacity) capacity *= 2;
    this.keys = new Int32Array(capacity * 3);
    this.values = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The series of (a, b, c), or -1. */
  get(a: number, b: number, c: number): number {
    const keys = this.keys;
    const values = this.values;
    for (let slot = hash(a, b, c) & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = values[slot];
      if (v === EMPTY) return EMPTY;
      const k = slot * 3;
      if (keys[k] === a && keys[k + 1] === b && keys[k + 2] === c) return v;
    }
  }

  /** (a, b, c) must not be present yet. */
  set(a: number, b: number, c: number, series: number): void {
    if ((this.count + 1) * 2 > this.values.length) this.grow();
    this.place(a, b, c, series);
    this.count++;
  }

  private place(a: number, b: number, c: number, series: number): void {
    let slot = hash(a, b, c) & this.mask;
    while (this.values[slot] !== EMPTY) slot = (slot + 1) & this.mask;
    const k = slot * 3;
    this.keys[k] = a;
    this.keys[k + 1] = b;
    this.keys[k + 2] = c;
    this.values[slot] = series;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const capacity = oldValues.length * 2;
    this.keys = new Int32Array(capacity * 3);
    this.values = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    for (let slot = 0; slot < oldValues.length; slot++) {
      if (oldValues[slot] === EMPTY) continue;
      const k = slot * 3;
      this.place(oldKeys[k], oldKeys[k + 1], oldKeys[k + 2], oldValues[slot]);
    }
  }
}

function hash(a: number, b: number, c: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77) ^ Math.imul(c + 0x165667b1, 0xc2b2ae3d);
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) ^ (h >>> 13);
}

/**
 * One histogram family's data, a row per series: bucket counts, count, sum, min, max. Values are
 * recorded in their own unit (ns, bytes) against boundaries converted once, and reported in the
 * metric's unit (`scale` per recorded unit), so recording never divides.
 */
export class HistogramColumns {
  private readonly limits: Float64Array;
  private readonly width: number;
  private counts: Float64Array;
  private totals: Float64Array;
  private sums: Float64Array;
  private mins: Float64Array;
  private maxes: Float64Array;
  private capacity: number;

  constructor(
    /** in the metric's unit (seconds, bytes) */
    readonly boundaries: number[],
    /** metric unit per recorded unit: 1e-9 for durations recorded in ns */
    private readonly scale: number,
    initialCapacity = 64,
  ) {
    this.limits = Float64Array.from(boundaries, (b) => Math.round(b / scale));
    this.width = boundaries.length + 1;
    this.capacity = initialCapacity;
    this.counts = new Float64Array(initialCapacity * this.width);
    this.totals = new Float64Array(initialCapacity);
    this.sums = new Float64Array(initialCapacity);
    this.mins = new Float64Array(initialCapacity).fill(Infinity);
    this.maxes = new Float64Array(initialCapacity).fill(-Infinity);
  }

  /** The bucket of a value in recorded units: the first boundary it does not exceed, else the last bucket. */
  bucket(value: number): number {
    const limits = this.limits;
    let i = 0;
    while (i < limits.length && value > limits[i]) i++;
    return i;
  }

  /** `bucket` must be bucket(value): computed once when a value goes to several families. */
  add(series: number, bucket: number, value: number): void {
    if (series >= this.capacity) this.grow(series + 1);
    this.counts[series * this.width + bucket]++;
    this.totals[series]++;
    this.sums[series] += value;
    if (value < this.mins[series]) this.mins[series] = value;
    if (value > this.maxes[series]) this.maxes[series] = value;
  }

  count(series: number): number {
    return series < this.capacity ? this.totals[series] : 0;
  }

  /**
   * Adds the series' cumulative bucket counts into `into` from `at` (boundaries.length + 1 of
   * them) and returns its count: an in-process reader's copy, without allocating.
   */
  addCountsTo(series: number, into: Float64Array, at: number): number {
    const n = this.count(series);
    if (n === 0) return 0;
    const counts = this.counts;
    const from = series * this.width;
    for (let i = 0; i < this.width; i++) into[at + i] += counts[from + i];
    return n;
  }

  /** The series' sum in the metric's unit. */
  sumOf(series: number): number {
    return this.count(series) > 0 ? this.sums[series] * this.scale : 0;
  }

  snapshot(series: number): Histogram {
    const n = this.count(series);
    const counts = new Array<number>(this.width).fill(0);
    if (n > 0) for (let i = 0; i < this.width; i++) counts[i] = this.counts[series * this.width + i];
    return {
      buckets: { boundaries: this.boundaries, counts },
      count: n,
      sum: n > 0 ? this.sums[series] * this.scale : 0,
      min: n > 0 ? this.mins[series] * this.scale : undefined,
      max: n > 0 ? this.maxes[series] * this.scale : undefined,
    };
  }

  private grow(needed: number): void {
    let capacity = this.capacity * 2;
    while (capacity < needed) capacity *= 2;
    const counts = new Float64Array(capacity * this.width);
    counts.set(this.counts);
    this.counts = counts;
    this.totals = extend(this.totals, capacity, 0);
    this.sums = extend(this.sums, capacity, 0);
    this.mins = extend(this.mins, capacity, Infinity);
    this.maxes = extend(this.maxes, capacity, -Infinity);
    this.capacity = capacity;
  }
}

function extend(a: Float64Array, capacity: number, fill: number): Float64Array {
  const b = new Float64Array(capacity).fill(fill);
  b.set(a);
  return b;
}
