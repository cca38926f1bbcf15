/**
 * The one place monotonic time becomes wall-clock time. Everything before export carries
 * nanoseconds relative to `baseNs` (CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns and of
 * process.hrtime); outputs call toHrTime / toIso / toEpochNs. The monotonic -> wall offset is
 * measured with sub-microsecond precision and re-measured periodically, so NTP corrections
 * reach the output without a restart.
 */

export interface Clock {
  /** process.hrtime.bigint() when the clock was made: the zero of every relative time */
  readonly baseNs: bigint;
  /** monotonic now, relative to baseNs */
  nowRelNs(): number;
  /** wall-clock ns since the epoch */
  toEpochNs(relNs: number): bigint;
  /** [seconds, nanoseconds] since the epoch: what the OpenTelemetry SDK takes, exactly; written into `out` when given */
  toHrTime(relNs: number, out?: [number, number]): [number, number];
  /** RFC 3339, UTC, nanosecond fraction: 2024-05-01T12:00:00.123456789Z */
  toIso(relNs: number): string;
  /** re-measure the monotonic -> wall offset now */
  refresh(): void;
  /** stop the periodic refresh */
  stop(): void;
}

export interface ClockOptions {
  /** monotonic ns (default process.hrtime.bigint) */
  monotonicNs?: () => bigint;
  /** wall ns since the epoch minus monotonic ns, measured (default: measureWallOffsetNs) */
  measureOffsetNs?: (monotonicNs: () => bigint) => bigint;
  /** how often to re-measure the offset; 0 disables (default 60 s) */
  refreshIntervalMs?: number;
}

const NS_PER_S = 1_000_000_000;

export function createClock(options: ClockOptions = {}): Clock {
  const monotonicNs = options.monotonicNs ?? (() => process.hrtime.bigint());
  const measure = options.measureOffsetNs ?? measureWallOffsetNs;
  const baseNs = monotonicNs();
  // Wall time at the base, split so conversions stay in plain numbers.
  let wallBaseSec = 0;
  let wallBaseNanos = 0;
  let wallBaseNs = 0n;

  const refresh = (): void => {
    wallBaseNs = baseNs + measure(monotonicNs);
    wallBaseSec = Number(wallBaseNs / BigInt(NS_PER_S));
    wallBaseNanos = Number(wallBaseNs % BigInt(NS_PER_S));
  };
  refresh();

  const interval = options.refreshIntervalMs ?? 60_000;
  const timer = interval > 0 ? setInterval(refresh, interval) : undefined;
  timer?.unref();

  const toHrTime = (relNs: number, out: [number, number] = [0, 0]): [number, number] => {
    const ns = wallBaseNanos + Math.round(relNs);
    const carry = Math.floor(ns / NS_PER_S);
    out[0] = wallBaseSec + carry;
    out[1] = ns - carry * NS_PER_S;
    return out;
  };

  // Request lines carry two timestamps each, mostly within the same second: its text is kept.
  const scratch: [number, number] = [0, 0];
  let isoSec = -1;
  let isoPrefix = '';
  const toIso = (relNs: number): string => {
    const [sec, nanos] = toHrTime(relNs, scratch);
    if (sec !== isoSec) {
      isoPrefix = new Date(sec * 1000).toISOString().slice(0, -4); // ...T12:00:00.
      isoSec = sec;
    }
    return `${isoPrefix}${String(nanos).padStart(9, '0')}Z`;
  };

  return {
    baseNs,
    nowRelNs: () => Number(monotonicNs() - baseNs),
    toEpochNs: (relNs) => wallBaseNs + BigInt(Math.round(relNs)),
    toHrTime,
    toIso,
    refresh,
    stop: () => {
      if (timer) clearInterval(timer);
    },
  };
}

/**
 * wall - monotonic, in ns. Date.now() has millisecond steps, so wait for a step: the instant
 * Date.now() changes value is a whole millisecond of wall time, and the monotonic readings on
 * both sides of the calls that saw the change bound that instant to well under a microsecond.
 * Costs at most ~1 ms of spinning per sample; the best (narrowest) of a few samples wins.
 */
export function measureWallOffsetNs(monotonicNs: () => bigint = () => process.hrtime.bigint()): bigint {
  let best: bigint | undefined;
  let bestWidth = 0n;
  for (let sample = 0; sample < 3; sample++) {
    let before = monotonicNs();
    let last = Date.now();
    let prevAfter = monotonicNs();
    const deadline = before + 5_000_000n;
    for (;;) {
      before = monotonicNs();
      const now = Date.now();
      const after = monotonicNs();
      if (now !== last) {
        // The step fell between the previous read and this one: take the middle of the
        // monotonic readings that follow each, and keep the sample whose window is narrowest.
        const width = after - prevAfter;
        const offset = BigInt(now) * 1_000_000n - (prevAfter + after) / 2n;
        if (best === undefined || width < bestWidth) {
          best = offset;
          bestWidth = width;
        }
        break;
      }
      last = now;
      prevAfter = after;
      if (after > deadline) break;
    }
  }
  if (best !== undefined) return best;
  // A frozen or fake Date: fall back to millisecond precision rather than fail.
  return BigInt(Date.now()) * 1_000_000n - monotonicNs();
}
