import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grpcAddress, loadTelemetryConfig, QUEUE_DEFAULTS } from '../../src/otel/config';
import { buildResourceAttributes } from '../../src/otel/resource';

test('nothing configured: export off, said so by a flag', () => {
  const { config, warnings } = loadTelemetryConfig({});
  assert.equal(config.tracesExporter, 'none');
  assert.equal(config.metricsExporter, 'none');
  assert.equal(config.exportDisabledByDefault, true);
  assert.equal(config.sampler, 'parentbased_always_on');
  assert.equal(config.serviceName, 'kong');
  assert.deepEqual(config.queue, QUEUE_DEFAULTS);
  assert.deepEqual(warnings, []);
});

test('an endpoint turns OTLP on for both signals; per-signal variables win', () => {
  const { config } = loadTelemetryConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://metrics.example:4443',
    OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s%3Dcret,x-team=gw',
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
  });
  assert.equal(config.tracesExporter, 'otlp');
  assert.equal(config.metricsExporter, 'otlp');
  assert.equal(config.exportDisabledByDefault, false);
  assert.equal(config.traces.address, 'collector:4317');
  assert.equal(config.traces.insecure, true, 'http:// means plaintext');
  assert.equal(config.traces.timeoutMs, 2500);
  assert.equal(config.metrics.timeoutMs, 10000, 'per-signal timeout applies to its signal only');
  assert.equal(config.metrics.address, 'metrics.example:4443');
  assert.equal(config.metrics.insecure, false, 'https:// means TLS');
  assert.deepEqual(config.traces.headers, { 'api-key': 's=cret', 'x-team': 'gw' }, 'percent-decoded headers');
  assert.equal(config.traces.compression, 'gzip');
});

test('exporter kinds, sampler, queue sizes; bad values warn and fall back', () => {
  const { config, warnings } = loadTelemetryConfig({
    OTEL_TRACES_EXPORTER: 'console',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_BSP_MAX_QUEUE_SIZE: '1000',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '5000',
    OTEL_BSP_SCHEDULE_DELAY: 'soon',
    OTEL_METRIC_EXPORT_INTERVAL: '5000',
  });
  assert.equal(config.tracesExporter, 'console');
  assert.equal(config.metricsExporter, 'none');
  assert.equal(config.sampler, 'parentbased_traceidratio');
  assert.equal(config.samplerRatio, 0.25);
  assert.equal(config.queue.maxQueueSize, 1000);
  assert.equal(config.queue.maxExportBatchSize, 1000, 'batch capped at the queue size');
  assert.equal(config.queue.scheduledDelayMs, QUEUE_DEFAULTS.scheduledDelayMs);
  assert.equal(config.metricExportIntervalMs, 5000);
  assert.equal(warnings.length, 2, `two warnings: ${warnings.join('; ')}`);
  const bad = loadTelemetryConfig({ OTEL_TRACES_SAMPLER: 'sometimes', OTEL_TRACES_SAMPLER_ARG: '2' });
  assert.equal(bad.config.sampler, 'parentbased_always_on');
  assert.equal(bad.warnings.length, 1, 'ratio ignored for a non-ratio sampler');
});

test('TLS: no scheme + INSECURE decides; CERTIFICATE read as PEM; unreadable warns', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kw-otel-cfg-'));
  try {
    const pem = join(dir, 'ca.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const tls = loadTelemetryConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317',
      OTEL_EXPORTER_OTLP_CERTIFICATE: pem,
    });
    assert.equal(tls.config.traces.insecure, false, 'no scheme: TLS by default');
    assert.match(tls.config.traces.rootCertificate!.toString(), /BEGIN CERTIFICATE/);
    const plain = loadTelemetryConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317',
      OTEL_EXPORTER_OTLP_INSECURE: 'true',
    });
    assert.equal(plain.config.traces.insecure, true);
    const missing = loadTelemetryConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://c:4317',
      OTEL_EXPORTER_OTLP_CERTIFICATE: join(dir, 'none.pem'),
    });
    assert.equal(missing.warnings.length, 2, 'one warning per signal');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('grpcAddress: default ports, IPv6, paths ignored', () => {
  assert.deepEqual(grpcAddress('http://c'), { address: 'c:4317', scheme: 'http' });
  assert.deepEqual(grpcAddress('https://c/v1/traces'), { address: 'c:443', scheme: 'https' });
  assert.deepEqual(grpcAddress('http://[::1]:4317'), { address: '[::1]:4317', scheme: 'http' });
  assert.deepEqual(grpcAddress('c:4317'), { address: 'c:4317' });
});

test('resource: service name, k8s from the downward API, OTEL_RESOURCE_ATTRIBUTES', () => {
  const env = {
    K8S_POD_NAME: 'kong-7d9',
    K8S_NAMESPACE_NAME: 'gw',
    K8S_NODE_NAME: 'node-1',
    OTEL_SERVICE_NAME: 'edge',
  };
  const a = buildResourceAttributes(env, 'edge', { 'deployment.environment.name': 'prod', 'service.name': 'ignored' });
  assert.equal(a['service.name'], 'edge', 'OTEL_SERVICE_NAME wins');
  assert.equal(a['k8s.pod.name'], 'kong-7d9');
  assert.equal(a['k8s.namespace.name'], 'gw');
  assert.equal(a['k8s.node.name'], 'node-1');
  assert.equal(a['service.instance.id'], 'gw/kong-7d9', 'stable per pod');
  assert.equal(a['deployment.environment.name'], 'prod');
  assert.equal(typeof a['host.name'], 'string');
  const b = buildResourceAttributes({}, 'kong', { 'service.name': 'from-attrs' });
  assert.equal(b['service.name'], 'from-attrs', 'OTEL_RESOURCE_ATTRIBUTES used when OTEL_SERVICE_NAME is unset');
  assert.match(String(b['service.instance.id']), /^[0-9a-f-]{36}$/, 'a UUID outside Kubernetes');
});
