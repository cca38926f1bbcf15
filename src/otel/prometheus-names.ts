/**
 * The names our OTLP metrics get in Prometheus after the OpenTelemetry Collector's prometheus
 * exporter (add_metric_suffixes on, its default), so that dashboards and alerts can be checked
 * against src/otel/metric-names.ts: dots become underscores, the unit becomes a suffix
 * (annotations in braces are dropped, "1" on a gauge reads "ratio"), monotonic counters end in
 * _total, and a histogram is the _bucket, _sum and _count series.
 */
import type { MetricKind } from './metric-names';

const UNIT_WORDS: Record<string, string> = {
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  min: 'minutes',
  h: 'hours',
  d: 'days',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  '%': 'percent',
};

/** Units after a slash read in the singular: "By/s" -> "bytes_per_second". */
const UNIT_WORDS_PER: Record<string, string> = { s: 'second', m: 'minute', h: 'hour', d: 'day' };

export interface PrometheusMetric {
  name: string;
  unit: string;
  kind: MetricKind;
}

/** The collector's name for one metric (the histogram's family name, without _bucket). */
export function prometheusName(metric: PrometheusMetric): string {
  const tokens = metric.name.split(/[^a-zA-Z0-9]+/).filter((t) => t !== '');
  for (const word of unitWords(metric)) {
    if (!tokens.includes(word)) tokens.push(word);
  }
  if (metric.kind === 'counter' && tokens[tokens.length - 1] !== 'total') tokens.push('total');
  return tokens.join('_');
}

/** Every series name the metric appears under in Prometheus. */
export function prometheusSeries(metric: PrometheusMetric): string[] {
  const name = prometheusName(metric);
  return metric.kind === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
}

/** An OTel attribute key as a Prometheus label ("http.route" -> "http_route"). */
export function prometheusLabel(attribute: string): string {
  const label = attribute.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(label) ? `key_${label}` : label;
}

function unitWords(metric: PrometheusMetric): string[] {
  const unit = metric.unit.replace(/\{[^}]*\}/g, '').trim();
  if (unit === '1') return metric.kind === 'gauge' ? ['ratio'] : [];
  if (unit === '') return [];
  const [main, per] = unit.split('/', 2);
  const words: string[] = [];
  if (main) words.push(UNIT_WORDS[main] ?? main);
  if (per) words.push('per', UNIT_WORDS_PER[per] ?? UNIT_WORDS[per] ?? per);
  return words.flatMap((w) => w.split(/[^a-zA-Z0-9]+/).filter((t) => t !== ''));
}
