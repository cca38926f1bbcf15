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
  assert.deepEqual(config.metricsExporters, []);
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
  assert.deepEqual(config.metricsExporters, ['otlp']);
  assert.equal(config.exportDisabledByDefault, false);
  assert.equal(config.traces.protocol, 'grpc', 'gRPC unless told otherwise');
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
  assert.deepEqual(config.metricsExporters, []);
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

test('OTLP/HTTP: the signal path is appended to the base endpoint, a per-signal endpoint is used as it is', () => {
  const base = loadTelemetryConfig({
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
  }).config;
  assert.equal(base.traces.protocol, 'http/protobuf');
  assert.equal(base.traces.httpUrl, 'http://collector:4318/v1/traces');
  assert.equal(base.metrics.httpUrl, 'http://collector:4318/v1/metrics');
  const withPath = loadTelemetryConfig({
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp/',
  }).config;
  assert.equal(withPath.traces.httpUrl, 'https://gw.example/otlp/v1/traces', 'a base path is kept, one slash');
  assert.equal(withPath.traces.insecure, false, 'https: TLS');
  const perSignal = loadTelemetryConfig({
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/custom/path',
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://mimir:4318',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
  }).config;
  assert.equal(perSignal.traces.httpUrl, 'http://tempo:4318/custom/path', 'as it is');
  assert.equal(perSignal.metrics.httpUrl, 'http://mimir:4318/', 'no path: the root, nothing appended');
  assert.equal(perSignal.metrics.protocol, 'http/json');
  const defaults = loadTelemetryConfig({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
  assert.equal(defaults.config.traces.httpUrl, 'http://localhost:4318/v1/traces', "HTTP's default port");
  const grpc = loadTelemetryConfig({ OTEL_TRACES_EXPORTER: 'otlp' }).config;
  assert.equal(grpc.traces.address, 'localhost:4317', "gRPC's default port");
  const bad = loadTelemetryConfig({
    OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
  });
  assert.equal(bad.config.traces.protocol, 'grpc', 'an unknown protocol falls back to grpc');
  assert.equal(bad.warnings.length, 2, 'said once per signal');
  const noScheme = loadTelemetryConfig({
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
  });
  assert.equal(noScheme.config.traces.httpUrl, 'http://localhost:4318/v1/traces');
  assert.ok(
    noScheme.warnings.some((w) => /not an http/.test(w)),
    'an HTTP endpoint must be a URL',
  );
});

test('metric exporters: a list runs each; prometheus host and port', () => {
  const both = loadTelemetryConfig({
    OTEL_METRICS_EXPORTER: 'otlp, prometheus',
    OTEL_EXPORTER_PROMETHEUS_HOST: '0.0.0.0',
    OTEL_EXPORTER_PROMETHEUS_PORT: '19464',
  });
  assert.deepEqual(both.config.metricsExporters, ['otlp', 'prometheus']);
  assert.deepEqual(both.config.prometheus, { host: '0.0.0.0', port: 19464 });
  assert.equal(both.config.tracesExporter, 'none', 'no endpoint: no spans unless asked');
  const defaults = loadTelemetryConfig({ OTEL_METRICS_EXPORTER: 'prometheus' }).config;
  assert.deepEqual(defaults.prometheus, { host: 'localhost', port: 9464 }, "the specification's defaults");
  const odd = loadTelemetryConfig({ OTEL_METRICS_EXPORTER: 'prometheus,zipkin', OTEL_TRACES_EXPORTER: 'otlp,console' });
  assert.deepEqual(odd.config.metricsExporters, ['prometheus'], 'unknown names are left out');
  assert.equal(odd.config.tracesExporter, 'otlp', 'one span exporter: the first');
  assert.equal(odd.warnings.length, 2, odd.warnings.join('; '));
  assert.deepEqual(loadTelemetryConfig({ OTEL_METRICS_EXPORTER: 'none' }).config.metricsExporters, []);
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
