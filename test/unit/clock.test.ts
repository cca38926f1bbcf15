import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClock, measureWallOffsetNs } from '../../src/clock';

const fixed = (monoStart: bigint, offset: bigint) => {
  let mono = monoStart;
  return {
    clock: createClock({ monotonicNs: () => mono, measureOffsetNs: () => offset, refreshIntervalMs: 0 }),
    advance: (ns: bigint) => (mono += ns),
  };
};

test('conversions are exact to the nanosecond', () => {
  // wall at base = 1700000000.999999999 s
  const { clock, advance } = fixed(5_000_000_000n, 1_700_000_000_999_999_999n - 5_000_000_000n);
  assert.equal(clock.baseNs, 5_000_000_000n, 'base');
  assert.deepEqual(clock.toHrTime(0), [1_700_000_000, 999_999_999], 'at base');
  assert.deepEqual(clock.toHrTime(1), [1_700_000_001, 0], 'carry into seconds');
  assert.deepEqual(clock.toHrTime(-1_000_000_000), [1_699_999_999, 999_999_999], 'before base');
  assert.equal(clock.toEpochNs(2), 1_700_000_001_000_000_001n, 'epoch ns');
  assert.equal(clock.toIso(1), '2023-11-14T22:13:21.000000000Z', 'iso carry');
  assert.equal(clock.toIso(123_456_790), '2023-11-14T22:13:21.123456789Z', 'iso fraction');
  advance(42n);
  assert.equal(clock.nowRelNs(), 42, 'now relative');
  // 104 days of uptime stay exact
  const rel = 104 * 86400 * 1e9 + 7;
  assert.equal(clock.toEpochNs(rel), 1_700_000_000_999_999_999n + BigInt(rel), 'long uptime');
});

test('refresh picks up a new offset', () => {
  let offset = 1_000_000_000_000_000_000n;
  const clock = createClock({ monotonicNs: () => 0n, measureOffsetNs: () => offset, refreshIntervalMs: 0 });
  assert.equal(clock.toEpochNs(0), offset);
  offset += 5_000_000n;
  clock.refresh();
  assert.equal(clock.toEpochNs(0), offset, 'after refresh');
});

test('measured offset agrees with the system clocks within a millisecond, repeatably', () => {
  const a = measureWallOffsetNs();
  const b = measureWallOffsetNs();
  const coarse = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  const diff = (x: bigint, y: bigint) => Number(x > y ? x - y : y - x);
  assert.ok(diff(a, coarse) < 2_000_000, `within 2 ms of the coarse offset: ${diff(a, coarse)}`);
  assert.ok(diff(a, b) < 200_000, `two measurements agree within 200 us: ${diff(a, b)}`);
  // performance.timeOrigin is a second, independent sub-ms estimate of the same offset.
  const viaPerf = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) - process.hrtime.bigint();
  assert.ok(diff(a, viaPerf) < 2_000_000, `close to performance.timeOrigin: ${diff(a, viaPerf)}`);
});

test('the default clock tracks real time', () => {
  const clock = createClock({ refreshIntervalMs: 0 });
  const iso = clock.toIso(clock.nowRelNs());
  assert.match(iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/, 'RFC 3339 with ns');
  assert.ok(Math.abs(new Date(iso).getTime() - Date.now()) < 50, 'close to Date.now()');
  clock.stop();
});
