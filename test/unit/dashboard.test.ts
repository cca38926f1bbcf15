/**
 * The Grafana dashboard: well-formed, templated on its data source, and every PromQL query asks
 * only for series and labels the agent really exports (src/otel/metric-names.ts, named the way
 * the collector's prometheus exporter names them: src/otel/prometheus-names.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METRICS } from '../../src/otel/metric-names';
import { prometheusLabel, prometheusName, prometheusSeries } from '../../src/otel/prometheus-names';
import { dashboardQueries, instantQuery, loadDashboard, panelsOf } from '../fixture/dashboard';

const dashboard = loadDashboard();

/** Resource attributes the collector turns into labels (resource_to_telemetry_conversion). */
const RESOURCE_LABELS = ['service.name', 'k8s.pod.name', 'k8s.namespace.name', 'k8s.node.name'].map(prometheusLabel);
const QUERY_LABELS = ['le', 'job', 'instance', 'status_class'];
const PROMQL_WORDS = new Set([
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'topk',
  'bottomk',
  'quantile',
  'stddev',
  'stdvar',
  'group',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'rate',
  'irate',
  'increase',
  'delta',
  'idelta',
  'deriv',
  'histogram_quantile',
  'label_replace',
  'label_join',
  'abs',
  'clamp_min',
  'clamp_max',
  'vector',
  'scalar',
  'time',
  'absent',
  'sum_over_time',
  'avg_over_time',
  'max_over_time',
  'min_over_time',
  'label_values',
  'inf',
  'nan',
]);

const KNOWN_SERIES = new Set(METRICS.flatMap((m) => prometheusSeries(m)));
const KNOWN_LABELS = new Set([
  ...RESOURCE_LABELS,
  ...QUERY_LABELS,
  ...METRICS.flatMap((m) => m.attributes.map(prometheusLabel)),
]);

const queries = () => dashboardQueries(dashboard);

/** Metric names in a PromQL expression: identifiers outside label sets, strings and ranges, not called. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/(label_values\([^)]*?),\s*[a-zA-Z_]\w*\s*\)/g, '$1)')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(') || PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

/** Label names a PromQL expression matches on or groups by. */
export function labelNames(expr: string): string[] {
  const labels: string[] = [];
  for (const set of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const m of set[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1]);
  }
  for (const g of expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)) {
    labels.push(
      ...g[1]
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    );
  }
  for (const lv of expr.matchAll(/label_values\([^)]*?,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g)) labels.push(lv[1]);
  return labels;
}

test('the collector names are derived as Prometheus shows them', () => {
  const named = (name: string) => prometheusName(METRICS.find((m) => m.name === name)!);
  assert.equal(named('http.server.request.duration'), 'http_server_request_duration_seconds');
  assert.equal(named('http.server.active_requests'), 'http_server_active_requests', 'braced units are dropped');
  assert.equal(named('kong_watcher.events.lost'), 'kong_watcher_events_lost_total', 'counters end in _total');
  assert.equal(named('kong_watcher.ringbuf.fill'), 'kong_watcher_ringbuf_fill_ratio', 'unit 1 on a gauge is ratio');
  assert.equal(named('process.cpu.time'), 'process_cpu_time_seconds_total');
  assert.equal(named('process.memory.usage'), 'process_memory_usage_bytes', 'an updowncounter is a gauge');
  assert.deepEqual(prometheusSeries({ name: 'a.b', unit: 'By', kind: 'histogram' }), [
    'a_b_bytes_bucket',
    'a_b_bytes_sum',
    'a_b_bytes_count',
  ]);
  assert.equal(prometheusName({ name: 'net.io', unit: 'By/s', kind: 'gauge' }), 'net_io_bytes_per_second');
});

test('the query parser finds metric and label names, and misses none', () => {
  const expr =
    'histogram_quantile(0.95, sum by (le, http_route) (rate(foo_seconds_bucket{a=~"$x", b="5.."}[$__rate_interval]))) / on (k) bar_total';
  assert.deepEqual(metricNames(expr), ['foo_seconds_bucket', 'bar_total']);
  assert.deepEqual(labelNames(expr).sort(), ['a', 'b', 'http_route', 'k', 'le']);
  assert.deepEqual(metricNames('label_values(m_count{x="1"}, y)'), ['m_count']);
});

test('the instant queries the end-to-end test sends: variables at All, windows given, label_values as group by', () => {
  const windows = { rateInterval: '30s', range: '5m' };
  assert.deepEqual(instantQuery('rate(a{p=~"$pod", r=~"${route}"}[$__rate_interval])', windows), {
    expr: 'rate(a{p=~".*", r=~".*"}[30s])',
  });
  assert.deepEqual(instantQuery('label_values(m{ns=~"$namespace"}, k8s_pod_name)', windows), {
    expr: 'group by (k8s_pod_name) (m{ns=~".*"})',
    label: 'k8s_pod_name',
  });
  assert.equal(
    instantQuery('label_replace(x, "c", "${1}xx", "s", "(.)")', windows).expr,
    'label_replace(x, "c", "${1}xx", "s", "(.)")',
  );
  for (const q of queries())
    assert.doesNotMatch(instantQuery(q.expr, windows).expr, /\$(?!\{1\})/, `${q.where}: a variable left`);
});

test('the dashboard is valid Grafana JSON with unique panel ids and a templated datasource', () => {
  assert.equal(typeof dashboard.uid, 'string', 'uid');
  assert.ok(dashboard.title, 'title');
  assert.ok(Number.isInteger(dashboard.schemaVersion), 'schemaVersion');
  const panels = panelsOf(dashboard.panels);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, `panel ids repeat: ${ids.join(',')}`);
  for (const p of panels) {
    for (const k of ['h', 'w', 'x', 'y'] as const) {
      assert.ok(Number.isInteger(p.gridPos?.[k]), `panel "${p.title}": gridPos.${k}`);
    }
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel "${p.title}" wider than the grid`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the $datasource variable`);
    assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
  }
  const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
  assert.equal(vars.get('datasource')?.type, 'datasource', 'a datasource variable');
  assert.equal(vars.get('datasource')?.query, 'prometheus', 'of Prometheus data sources');
  for (const name of ['namespace', 'pod']) assert.ok(vars.has(name), `a $${name} variable`);
  for (const q of queries()) {
    for (const used of q.expr.matchAll(/\$(\w+)/g)) {
      if (used[1].startsWith('__')) continue;
      assert.ok(vars.has(used[1]), `${q.where}: $${used[1]} is not a dashboard variable`);
    }
  }
});

test('the dashboard covers RED, latency heatmap, Kong vs upstream, top slow routes and agent health', () => {
  const panels = panelsOf(dashboard.panels);
  const exprs = queries()
    .map((q) => q.expr)
    .join('\n');
  assert.ok(
    panels.some((p) => p.type === 'heatmap'),
    'a latency heatmap',
  );
  assert.match(exprs, /topk\(\d+, histogram_quantile/, 'top slow routes');
  assert.match(exprs, /status_class/, 'requests by status class');
  assert.match(exprs, /by \(http_route\)/, 'per route');
  assert.match(exprs, /service_name/, 'per service');
  for (const m of [
    'kong.latency.proxy',
    'kong.latency.upstream',
    'kong_watcher.events.lost',
    'kong_watcher.spans.dropped',
    'process.cpu.time',
    'process.memory.usage',
  ]) {
    const name = prometheusName(METRICS.find((x) => x.name === m)!);
    assert.ok(exprs.includes(name), `the dashboard shows ${m} (${name})`);
  }
});

test('every series and label a query uses is one the agent exports', () => {
  const qs = queries();
  assert.ok(qs.length >= 15, `expected many queries, found ${qs.length}`);
  for (const q of qs) {
    const names = metricNames(q.expr);
    assert.ok(names.length > 0, `${q.where}: no metric in ${q.expr}`);
    for (const n of names) {
      assert.ok(KNOWN_SERIES.has(n), `${q.where}: ${n} is not exported (known: ${[...KNOWN_SERIES].join(', ')})`);
    }
    for (const l of labelNames(q.expr)) assert.ok(KNOWN_LABELS.has(l), `${q.where}: label ${l} is never set`);
  }
});
