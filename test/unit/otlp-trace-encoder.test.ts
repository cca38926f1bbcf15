import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { OtlpTraceEncoder } from '../../src/otel/otlp-trace-encoder';
import { createSampler } from '../../src/otel/sampler';
import { buildSpan, SpanRecord, type SpanAttributes, type SpanBuilderDeps } from '../../src/otel/spans';
import { clientExchange, fakeClock, ids, serverExchange } from '../fixture/otel-exchanges';

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

const deps: SpanBuilderDeps = {
  clock: fakeClock,
  sampler: createSampler('always_on', 1),
  redactQuery: (q) => q.replace(/token=[^&]*/, 'token=REDACTED'),
  routes: () => ({ route: '/orders/{id}', routeName: 'orders', serviceName: 'shop' }),
};

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

/** Every field of every span, against the record it came from. */
function assertRoundTrip(records: SpanRecord[], bytes: Buffer): void {
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
    assert.equal(hex(s.traceId), r.traceId, `${what}: trace id`);
    assert.equal(hex(s.spanId), r.spanId, `${what}: span id`);
    assert.equal(hex(s.parentSpanId), r.parentSpanId ?? '', `${what}: parent span id`);
    assert.equal(s.traceState, r.traceState ?? '', `${what}: trace state`);
    assert.equal(s.name, r.name, `${what}: name`);
    assert.equal(s.kind, r.kind + 1, `${what}: kind (OTLP numbering)`);
    assert.equal(s.startTimeUnixNano, unixNs(r.startTime), `${what}: start, exact ns`);
    assert.equal(s.endTimeUnixNano, unixNs(r.endTime), `${what}: end, exact ns`);
    assertKeyValues(s.attributes, r.attributes, what);
    assert.equal(s.status.code, r.statusCode, `${what}: status code`);
    assert.equal(s.status.message, r.statusMessage ?? '', `${what}: status message`);
    const flags = r.traceFlags | 0x100 | (r.parentSpanId !== undefined && r.parentIsRemote ? 0x200 : 0);
    assert.equal(s.flags, flags, `${what}: flags`);
    assert.equal(s.droppedAttributesCount, 0);
    assert.deepEqual(s.events, [], `${what}: no events`);
    assert.deepEqual(s.links, [], `${what}: no links`);
  });
}

function exchangeRecords(): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const status of [200, 404, 502]) {
    const server = serverExchange({ statusCode: status, startNs: 1_000_000_123, endNs: 1_999_999_999 });
    const attempt = clientExchange(server, { statusCode: status, startNs: 1_000_100_000, endNs: 1_900_000_000 });
    out.push(buildSpan(attempt, deps)!, buildSpan(server, deps)!);
  }
  const incoming = ids({
    parentSpanId: '00f067aa0ba902b7',
    remoteParent: true,
    traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
  });
  out.push(buildSpan(serverExchange({ ids: incoming, method: 'PROPFIND' }), deps)!);
  out.push(buildSpan(serverExchange({ statusCode: 0, errorCode: 'client_closed' }), deps)!);
  return out;
}

const flat = (a: Attributes): SpanAttributes => Object.entries(a).flat() as SpanAttributes;

/** What buildSpan never makes but the encoder must still get right. */
function edgeRecords(): SpanRecord[] {
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
    new SpanRecord(
      'edge',
      SpanKind.INTERNAL,
      'ffffffffffffffffffffffffffffffff',
      '0000000000000001',
      undefined,
      false,
      undefined,
      1,
      [0, 0],
      [1, 999_999_999],
      SpanStatusCode.UNSET,
      undefined,
      flat(attrs),
    ),
    new SpanRecord(
      'späte ✓'.repeat(30),
      SpanKind.SERVER,
      '0123456789abcdef0123456789abcdef',
      'fedcba9876543210',
      '1111111111111111',
      true,
      'k=v',
      1,
      [4_294_967_295, 999_999_999],
      [4_294_967_296, 1],
      SpanStatusCode.ERROR,
      'ü'.repeat(70),
      ['a', 'b'],
    ),
    new SpanRecord(
      'no attrs',
      SpanKind.CLIENT,
      '0123456789abcdef0123456789abcdef',
      'fedcba9876543211',
      '1111111111111111',
      false,
      undefined,
      0,
      [1_700_000_000, 5],
      [1_700_000_000, 6],
      SpanStatusCode.OK,
      undefined,
      [],
    ),
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
  const many: SpanRecord[] = [];
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

test('bad ids never throw: non-hex or wrong length becomes zero bytes', () => {
  const r = new SpanRecord(
    'bad',
    SpanKind.SERVER,
    'not-hex',
    'zz',
    'abc',
    false,
    undefined,
    1,
    [1, 2],
    [3, 4],
    0,
    undefined,
    [],
  );
  const req = decode(new OtlpTraceEncoder(RESOURCE, SCOPE).encode([r]));
  const s = req.resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(hex(s.traceId), '0'.repeat(32));
  assert.equal(hex(s.spanId), '0'.repeat(16));
  assert.equal(hex(s.parentSpanId), '0'.repeat(16));
  assert.equal(s.name, 'bad');
});

/** The SDK's ReadableSpan for a record: what the stock exporter would have been given. */
const sdkResource = resourceFromAttributes(RESOURCE);
function asReadableSpan(r: SpanRecord): ReadableSpan {
  const traceState = r.traceState === undefined ? undefined : { serialize: () => r.traceState! };
  return {
    name: r.name,
    kind: r.kind,
    spanContext: () => ({ traceId: r.traceId, spanId: r.spanId, traceFlags: r.traceFlags, traceState }) as never,
    parentSpanContext:
      r.parentSpanId === undefined
        ? undefined
        : { traceId: r.traceId, spanId: r.parentSpanId, traceFlags: r.traceFlags, isRemote: r.parentIsRemote },
    startTime: r.startTime,
    endTime: r.endTime,
    status: r.statusMessage === undefined ? { code: r.statusCode } : { code: r.statusCode, message: r.statusMessage },
    attributes: r.attributes,
    links: [],
    events: [],
    duration: [0, 0],
    ended: true,
    resource: sdkResource,
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

test('decodes to exactly what the SDK serializer sends for the same spans', () => {
  const records = [...exchangeRecords(), ...edgeRecords()];
  const ours = decode(new OtlpTraceEncoder(RESOURCE, SCOPE).encode(records));
  const sdkBytes = ProtobufTraceSerializer.serializeRequest(records.map(asReadableSpan));
  assert.ok(sdkBytes, 'the SDK serialized');
  const theirs = decode(Buffer.from(sdkBytes));
  assert.deepEqual(ours, theirs, 'same ExportTraceServiceRequest, field for field');
});
