import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const file = join(__dirname, '..', '..', 'otel-collector.yaml');
const doc = parse(readFileSync(file, 'utf8'));

const typeOf = (id: string) => id.split('/')[0];

test('otel-collector.yaml is valid YAML with the expected sections', () => {
  for (const section of ['receivers', 'processors', 'exporters', 'service']) {
    assert.equal(typeof doc[section], 'object', `${section} present`);
  }
  assert.ok(doc.service.pipelines.traces, 'a traces pipeline');
  assert.ok(doc.service.pipelines.metrics, 'a metrics pipeline');
});

test('every pipeline references only defined components', () => {
  for (const [name, p] of Object.entries<Record<string, string[]>>(doc.service.pipelines)) {
    for (const kind of ['receivers', 'processors', 'exporters'] as const) {
      for (const id of p[kind] ?? []) {
        assert.ok(doc[kind] && id in doc[kind], `pipeline ${name}: ${kind.slice(0, -1)} "${id}" is defined`);
      }
    }
    assert.ok((p.receivers ?? []).length > 0, `pipeline ${name} has a receiver`);
    assert.ok((p.exporters ?? []).length > 0, `pipeline ${name} has an exporter`);
  }
  for (const ext of doc.service.extensions ?? []) assert.ok(ext in (doc.extensions ?? {}), `extension ${ext} defined`);
});

test('the shape the issue asks for: OTLP in, memory_limiter first, batch last, backends out', () => {
  assert.ok(doc.receivers.otlp.protocols.grpc, 'OTLP gRPC receiver');
  assert.ok(doc.receivers.otlp.protocols.http, 'OTLP HTTP receiver');
  for (const [name, p] of Object.entries<Record<string, string[]>>(doc.service.pipelines)) {
    assert.equal(p.processors[0], 'memory_limiter', `${name}: memory_limiter first`);
    assert.equal(p.processors[p.processors.length - 1], 'batch', `${name}: batch last`);
    assert.ok(p.exporters.includes('debug'), `${name}: debug exporter`);
  }
  assert.ok(
    doc.service.pipelines.traces.exporters.some((e: string) => typeOf(e) === 'otlp'),
    'traces leave over OTLP (Tempo/Jaeger)',
  );
  assert.ok(doc.service.pipelines.metrics.exporters.includes('prometheus'), 'metrics to Prometheus');
  assert.ok('prometheusremotewrite' in doc.exporters, 'remote write shown');
});
