/**
 * The live view's percentiles are Prometheus's: the same histograms give the same numbers in the
 * view and in a Grafana panel. Checked against promtool (Prometheus's own histogram_quantile),
 * installed by scripts/install-deps.sh with Prometheus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DURATION_BUCKETS_S } from '../../src/otel/metric-names';
import { histogramQuantile } from '../../src/output/live/quantile';

const B = [0.001, 0.0025, 0.005, 0.01];

function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual}, expected ${expected}`);
}

test('interpolates inside the bucket holding the rank, from 0 in the first', () => {
  // 10 observations: 2 <= 1 ms, 6 in (1, 2.5] ms, 2 in (2.5, 5] ms.
  const counts = [2, 6, 2, 0, 0];
  near(histogramQuantile(0.5, B, counts), 0.001 + 0.0015 * (3 / 6), 'p50: rank 5, 3 of 6 into the 2nd bucket');
  near(histogramQuantile(0.1, B, counts), 0.001 * (1 / 2), 'p10: half-way into the first bucket, from 0');
  near(histogramQuantile(0.99, B, counts), 0.0025 + 0.0025 * (1.9 / 2), 'p99');
  near(histogramQuantile(1, B, counts), 0.005, 'p100: the top of the highest bucket with counts');
});

test('a rank in the +Inf bucket gives the highest finite boundary; nothing gives NaN', () => {
  assert.equal(histogramQuantile(0.99, B, [0, 0, 0, 1, 9]), 0.01, 'as histogram_quantile does');
  assert.ok(Number.isNaN(histogramQuantile(0.5, B, [0, 0, 0, 0, 0])), 'no observation');
  assert.equal(histogramQuantile(-1, B, [1, 0, 0, 0, 0]), -Infinity);
  assert.equal(histogramQuantile(2, B, [1, 0, 0, 0, 0]), Infinity);
});

test('reads counts at an offset, as the window lays them out', () => {
  const row = new Float64Array([99, 99, 2, 6, 2, 0, 0, 99]);
  assert.equal(histogramQuantile(0.5, B, row, 2), histogramQuantile(0.5, B, [2, 6, 2, 0, 0]));
});

test('equal to promtool histogram_quantile on the duration buckets, bit for bit', () => {
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const width = DURATION_BUCKETS_S.length + 1;
  const cases: { counts: number[]; q: number }[] = [];
  for (let i = 0; i < 60; i++) {
    // Gateway-like: most in the sub-millisecond buckets, a tail, some buckets empty.
    const counts: number[] = Array.from({ length: width }, (_, b) =>
      rand() < 0.35 ? 0 : Math.floor(rand() * 1000 * 0.6 ** b),
    );
    if (i % 10 === 0) counts[width - 1] += 5;
    if (!counts.some((c) => c > 0)) counts[3] = 1;
    cases.push({ counts, q: [0.5, 0.95, 0.99, 0.999, 0.25][i % 5] });
  }
  const le = [...DURATION_BUCKETS_S.map(String), '+Inf'];
  const series: string[] = [];
  const exprs: string[] = [];
  cases.forEach(({ counts, q }, i) => {
    let cumulative = 0;
    counts.forEach((c, b) => {
      cumulative += c;
      series.push(`      - series: 'd_bucket{case="${i}",le="${le[b]}"}'\n        values: '${cumulative}'`);
    });
    const expected = histogramQuantile(q, DURATION_BUCKETS_S, counts);
    exprs.push(
      `      - expr: histogram_quantile(${q}, d_bucket{case="${i}"})\n        eval_time: 0s\n` +
        `        exp_samples:\n          - labels: '{case="${i}"}'\n            value: ${String(expected)}`,
    );
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-promtool-'));
  try {
    fs.writeFileSync(path.join(dir, 'rules.yml'), 'groups: []\n');
    fs.writeFileSync(
      path.join(dir, 'test.yml'),
      `rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n${series.join('\n')}\n` +
        `    promql_expr_test:\n${exprs.join('\n')}\n`,
    );
    const r = spawnSync('promtool', ['test', 'rules', 'test.yml'], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.error, undefined, `promtool runs (scripts/install-deps.sh installs prometheus): ${String(r.error)}`);
    assert.equal(r.status, 0, `promtool disagrees:\n${r.stdout}\n${r.stderr}`.slice(0, 4000));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
