import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ErrorCode, ExchangeFlag, Method } from '../../src/capture/exchange-layout';
import { LuaPhase } from '../../src/capture/records';
import { RouteTable } from '../../src/enrich/kong/route-table';
import { OtlpTraceEncoder } from '../../src/otel/otlp-trace-encoder';
import { ReadableExportSpan } from '../../src/otel/readable-span';
import { spanAttributes, spanIdHex, type ExportSpan } from '../../src/otel/span';
import { ExchangeSpan } from '../../src/otel/spans';
import { clientSpec, serverSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';
import { StaticSpan } from './helpers/static-span';

const PROTO_ROOT = path.join(__dirname, '..', 'fixture', 'otlp-proto');
const defs = protoLoader.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});
const service = defs['opentelemetry.proto.collector.trace.v1.TraceService'] as protoLoader.ServiceDefinition;
const decode = (b: Buffer): any => service.Export.requestDeserialize(b);

const RESOURCE: Attributes = {
  'service.name': 'kong',
  'service.instance.id': 'gw/kong-0',
  'process.pid': 4242,
  'host.name': 'nöde-1',
};
const SCOPE = { name: 'kong-watcher', version: '0.1.0' };

const routes = new RouteTable();
routes.load(
  [{ id: 'r1', name: 'orders', paths: ['~/orders/\\d+$'], service: { id: 's1' } }],
  [{ id: 's1', name: 'shop' }],
);
const redactor = { query: (q: string) => q.replace(/token=[^&]*/, 'token=REDACTED'), path: (p: string) => p };

const hex = (b: Buffer | undefined): string => (b === undefined ? '' : Buffer.from(b).toString('hex'));
const unixNs = (t: [number, number]): string => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();

/** The AnyValue we expect on the wire for an attribute value, in proto-loader's decoded shape. */
function expectedAny(v: unknown): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(expectedAny) } };
  throw new Error(`no expectation for ${typeof v}`);
}

/** proto-loader fills every oneof member with its default: keep only the member that is set. */
function decodedAny(a: any): Record<string, unknown> {
  switch (a.value) {
    case 'stringValue':
      return { stringValue: a.stringValue };
    case 'boolValue':
      return { boolValue: a.boolValue };
    case 'intValue':
      return { intValue: a.intValue };
    case 'doubleValue':
      return { doubleValue: a.doubleValue };
    case 'arrayValue':
      return { arrayValue: { values: a.arrayValue.values.map(decodedAny) } };
    default:
      return { unexpected: a.value };
  }
}

function assertKeyValues(actual: any[], expected: Attributes, what: string): void {
  const keys = Object.keys(expected).filter((k) => expected[k] !== undefined);
  assert.deepEqual(
    actual.map((kv) => kv.key),
    keys,
    `${what}: keys in order`,
  );
  for (const kv of actual) assert.deepEqual(decodedAny(kv.value), expectedAny(expected[kv.key]), `${what}: ${kv.key}`);
}

/** Every field of every span, against the span it came from (read through ExportSpan). */
function assertRoundTrip(records: ExportSpan[], bytes: Buffer): void {
  const req = decode(bytes);
  assert.equal(req.resourceSpans.length, 1, 'one ResourceSpans');
  const rs = req.resourceSpans[0];
  assertKeyValues(rs.resource.attributes, RESOURCE, 'resource');
  assert.equal(rs.scopeSpans.length, 1, 'one ScopeSpans');
  assert.equal(rs.scopeSpans[0].scope.name, SCOPE.name);
  assert.equal(rs.scopeSpans[0].scope.version, SCOPE.version);
  const spans = rs.scopeSpans[0].spans;
  assert.equal(spans.length, records.length, 'every span');
  records.forEach((r, i) => {
    const s = spans[i];
    const what = `span ${i} (${r.name})`;
    assert.equal(hex(s.traceId), spanIdHex(r, r.traceIdAt, 16), `${what}: trace id`);
    assert.equal(hex(s.spanId), spanIdHex(r, r.spanIdAt, 8), `${what}: span id`);
    assert.equal(hex(s.parentSpanId), spanIdHex(r, r.parentSpanIdAt, 8) ?? '', `${what}: parent span id`);
    assert.equal(s.traceState, r.traceState ?? '', `${what}: trace state`);
    assert.equal(s.name, r.name, `${what}: name`);
    assert.equal(s.kind, r.kind + 1, `${what}: kind (OTLP numbering)`);
    assert.equal(s.startTimeUnixNano, unixNs(r.startTime([0, 0])), `${what}: start, exact ns`);
    assert.equal(s.endTimeUnixNano, unixNs(r.endTime([0, 0])), `${what}: end, exact ns`);
    assertKeyValues(s.attributes, spanAttributes(r), what);
    assert.equal(s.status.code, r.statusCode, `${what}: status code`);
    assert.equal(s.status.message, r.statusMessage ?? '', `${what}: status message`);
    const flags = r.traceFlags | 0x100 | (r.parentSpanIdAt >= 0 && r.parentIsRemote ? 0x200 : 0);
    assert.equal(s.flags, flags, `${what}: flags`);
    assert.equal(s.droppedAttributesCount, 0);
    assert.deepEqual(s.events, [], `${what}: no events`);
    assert.deepEqual(s.links, [], `${what}: no links`);
  });
}

/** Spans of exchanges as the agent makes them: proxied, failed, continued, aborted, TLS, pods, Lua. */
function exchangeRecords(): ExportSpan[] {
  const frames = [];
  for (const status of [200, 404, 502]) {
    const server = serverSpec({ status, startNs: 1_000_000_123, endNs: 1_999_999_999, upstreamStartNs: 1_000_100_000 });
    frames.push(server, clientSpec(server, { status, startNs: 1_000_100_000, endNs: 1_900_000_000 }));
  }
  const luaNs: number[] = [];
  luaNs[LuaPhase.Access] = 3400;
  frames.push(
    serverSpec({
      method: Method.Other,
      methodText: 'PROPFIND',
      flags:
        ExchangeFlag.Response |
        ExchangeFlag.Sampled |
        ExchangeFlag.CallerContext |
        ExchangeFlag.ParentSpan |
        ExchangeFlag.Tls,
      parentSpanId: '00f067aa0ba902b7',
      traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      path: '/caf\u00e9',
      luaNs,
      attempts: 0,
    }),
    serverSpec({ status: 0, error: ErrorCode.ClientClosed, attempts: 0, upstreamStartNs: 0 }),
  );
  const pods = new Map([[100, { index: 1, name: 'kong-0', namespace: 'gw', uid: 'u-1' }]]);
  return enrich(frames, { routes, redactor, pods }).map((e) => ExchangeSpan.of(e, fakeClock));
}

/** What exchanges never make but the encoder must still get right. */
function edgeRecords(): ExportSpan[] {
  const longAscii = '/a'.repeat(100); // > 127 bytes: two-byte length
  const hugeUtf8 = 'ü€'.repeat(6000); // span body > 16 KiB: three-byte length, body moved
  const attrs: Attributes = {
    'short.utf8': 'grüße ✓',
    'long.ascii': longAscii,
    'huge.utf8': hugeUtf8,
    'empty.string': '',
    'int.zero': 0,
    'int.big': 2 ** 40 + 7,
    'int.max_safe': Number.MAX_SAFE_INTEGER,
    'int.negative': -42,
    'int.negative_big': -(2 ** 40),
    'double.value': 1.5,
    'double.negative': -0.25,
    'bool.true': true,
    'bool.false': false,
    'array.strings': ['a', 'bé'],
    'array.ints': [1, 2, 300],
    'clé.non_ascii': 'key bytes are UTF-8',
  };
  return [
    new StaticSpan({
      name: 'edge',
      kind: SpanKind.INTERNAL,
      traceId: 'ffffffffffffffffffffffffffffffff',
      spanId: '0000000000000001',
      startTime: [0, 0],
      endTime: [1, 999_999_999],
      attributes: attrs,
    }),
    new StaticSpan({
      name: 'späte ✓'.repeat(30),
      kind: SpanKind.SERVER,
      traceId: '0123456789abcdef0123456789abcdef',
      spanId: 'fedcba9876543210',
      parentSpanId: '1111111111111111',
      parentIsRemote: true,
      traceState: 'k=v',
      startTime: [4_294_967_295, 999_999_999],
      endTime: [4_294_967_296, 1],
      statusCode: SpanStatusCode.ERROR,
      statusMessage: 'ü'.repeat(70),
      attributes: { a: 'b' },
    }),
    new StaticSpan({
      name: 'no attrs',
      kind: SpanKind.CLIENT,
      traceId: '0123456789abcdef0123456789abcdef',
      spanId: 'fedcba9876543211',
      parentSpanId: '1111111111111111',
      traceFlags: 0,
      startTime: [1_700_000_000, 5],
      endTime: [1_700_000_000, 6],
      statusCode: SpanStatusCode.OK,
    }),
  ];
}

test('round trip through the official protos: every field of real spans', () => {
  const records = exchangeRecords();
  const enc = new OtlpTraceEncoder(RESOURCE, SCOPE);
  assertRoundTrip(records, enc.encode(records));
  const errors = records.filter((r) => r.statusCode === SpanStatusCode.ERROR);
  assert.ok(errors.length >= 2, 'the fixture has error spans');
  assert.ok(
    records.some((r) => r.parentIsRemote && r.traceState),
    'and a remote parent with tracestate',
  );
  const attrs = records.map(spanAttributes);
  assert.ok(
    attrs.some((a) => a['http.route'] === '/orders/\\d+$' && a['kong.service.name'] === 'shop'),
    'and route names',
  );
  assert.ok(
    attrs.some((a) => a['kong.lua.access_ns'] === 3400 && a['k8s.pod.uid'] === 'u-1'),
    'and Lua times and pods',
  );
  assert.ok(
    attrs.some((a) => a['url.path'] === '/caf\u00e9'),
    'and a latin1 path, sent as UTF-8',
  );
});

test('round trip: UTF-8, long strings, large and negative ints, doubles, bools, arrays, far times', () => {
  const records = edgeRecords();
  // A tiny scratch buffer: growth in the middle of a span must not lose or shift bytes.
  const enc = new OtlpTraceEncoder(RESOURCE, SCOPE, 64);
  assertRoundTrip(records, enc.encode(records));
});

test('round trip: large batches, empty batches, encoder reuse', () => {
  const enc = new OtlpTraceEncoder(RESOURCE, SCOPE, 1024);
  const one = exchangeRecords();
  const many: ExportSpan[] = [];
  for (let i = 0; i < 5000; i++) many.push(one[i % one.length]);
  const big = enc.encode(many);
  assert.ok(big.length > 2 ** 21, `a multi-MiB request (${big.length} bytes): 3-byte ScopeSpans length`);
  assertRoundTrip(many, big);
  assertRoundTrip([], enc.encode([]));
  const again = enc.encode(one);
  assertRoundTrip(one, again);
  assert.deepEqual(enc.encode(one), again, 'same spans, same bytes');
  assert.notEqual(enc.encode(one).buffer, again.buffer, 'each request has its own memory');
});

test('round trip: values that repeat, more of them than the encoder keeps per key, in any order', () => {
  const many = new RouteTable();
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  many.load(
    names.map((n) => ({ id: n, name: `route-${n}`, paths: [`/${n}`], service: { id: `s-${n}` } })),
    names.map((n) => ({ id: `s-${n}`, name: `service-${n}`.repeat(n === 'g' ? 20 : 1) })),
  );
  const frames = [];
  for (let i = 0; i < 60; i++) {
    const n = names[(i * 5) % names.length];
    const server = serverSpec({ path: `/${n}/${i}`, method: [Method.Get, Method.Post, Method.Put][i % 3] });
    frames.push(server, clientSpec(server, { host: `up-${(i * 3) % 6}.internal:${8000 + (i % 2)}` }));
  }
  const records = enrich(frames, { routes: many, redactor }).map((e) => ExchangeSpan.of(e, fakeClock));
  const enc = new OtlpTraceEncoder(RESOURCE, SCOPE, 256);
  assertRoundTrip(records, enc.encode(records));
  assertRoundTrip(records.slice().reverse(), enc.encode(records.slice().reverse()));
  assert.ok(
    records.some((r) => String(spanAttributes(r)['kong.service.name']).length > 128),
    'and a value too long to be kept',
  );
});

test('request buffers are reused once released, never while still owned', () => {
  const enc = new OtlpTraceEncoder(RESOURCE, SCOPE, 1024);
  const records = exchangeRecords();
  const first = enc.encode(records);
  const copy = Buffer.from(first);
  const second = enc.encode(records);
  assert.notEqual(second.buffer, first.buffer, 'an owned request is not written over');
  assert.deepEqual(first, copy, 'and stays intact');
  enc.release(first);
  const third = enc.encode(records);
  assert.equal(third.buffer, first.buffer, 'a released one is reused');
  assertRoundTrip(records, third);
});

test('ids out of range never throw: those bytes are zeros', () => {
  const r = new StaticSpan({
    name: 'bad',
    kind: SpanKind.SERVER,
    traceId: '0123456789abcdef0123456789abcdef',
    spanId: '0123456789abcdef',
    parentSpanId: '0123456789abcdef',
    startTime: [1, 2],
    endTime: [3, 4],
  });
  r.traceIdAt = 30; // runs past the bytes
  r.spanIdAt = -4;
  r.parentSpanIdAt = 1000;
  const req = decode(new OtlpTraceEncoder(RESOURCE, SCOPE).encode([r]));
  const s = req.resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(hex(s.traceId), '0'.repeat(32));
  assert.equal(hex(s.spanId), '0'.repeat(16));
  assert.equal(hex(s.parentSpanId), '0'.repeat(16));
  assert.equal(s.name, 'bad');
});

/** What the SDK's exporters are given for the same spans: the agent's ReadableSpan view (src/otel/readable-span.ts). */
const sdkResource = resourceFromAttributes(RESOURCE);
const asReadableSpan = (r: ExportSpan) => new ReadableExportSpan(r, sdkResource, SCOPE);

test('decodes to exactly what the SDK serializer sends for the same spans', () => {
  const records = [...exchangeRecords(), ...edgeRecords()];
  const ours = decode(new OtlpTraceEncoder(RESOURCE, SCOPE).encode(records));
  const sdkBytes = ProtobufTraceSerializer.serializeRequest(records.map(asReadableSpan));
  assert.ok(sdkBytes, 'the SDK serialized');
  const theirs = decode(Buffer.from(sdkBytes));
  assert.deepEqual(ours, theirs, 'same ExportTraceServiceRequest, field for field');
});
