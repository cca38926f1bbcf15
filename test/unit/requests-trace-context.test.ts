import { randomFillSync } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IdGenerator,
  clientIds,
  incomingContext,
  parseB3Multi,
  parseB3Single,
  parseTraceparent,
  serverIds,
} from '../../src/requests/trace-context';

const T = '0af7651916cd43dd8448eb211c80319c';
const S = 'b7ad6b7169203331';

test('W3C traceparent validation', () => {
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-01`), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-00`), { traceId: T, spanId: S, sampled: false });
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-03`)?.sampled, true, 'other flag bits ignored');
  assert.deepEqual(parseTraceparent(` 00-${T}-${S}-01 `)?.traceId, T, 'surrounding spaces');
  assert.ok(parseTraceparent(`01-${T}-${S}-01-future`), 'later versions may have more fields');
  for (const bad of [
    `ff-${T}-${S}-01`,
    `00-${T}-${S}-01-extra`,
    `00-${'0'.repeat(32)}-${S}-01`,
    `00-${T}-${'0'.repeat(16)}-01`,
    `00-${T.toUpperCase()}-${S}-01`,
    `00-${T.slice(1)}-${S}-01`,
    `00-${T}-${S}-1`,
    `00_${T}_${S}_01`,
    '',
    'garbage',
  ]) {
    assert.equal(parseTraceparent(bad), undefined, bad);
  }
});

test('B3 single', () => {
  assert.deepEqual(parseB3Single(`${T}-${S}-1`), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseB3Single(`${T}-${S}-d-0000000000000001`)?.sampled, true, 'debug');
  assert.deepEqual(parseB3Single(`${T}-${S}-0`)?.sampled, false);
  assert.deepEqual(parseB3Single(`${T}-${S}`), { traceId: T, spanId: S, sampled: undefined }, 'deferred');
  assert.equal(parseB3Single(`${S}-${S}`)?.traceId, `0000000000000000${S}`, '64-bit trace ids padded');
  assert.deepEqual(parseB3Single('0'), { sampled: false }, 'sampling only');
  assert.deepEqual(parseB3Single('1'), { sampled: true });
  for (const bad of [`${T}-${S}-x`, `${T}`, `${T}-${S}-1-zz`, `${T}-${'0'.repeat(16)}`, `${T}-${S}-1-${S}-9`]) {
    assert.equal(parseB3Single(bad), undefined, bad);
  }
});

test('B3 multi', () => {
  assert.deepEqual(parseB3Multi({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' }), {
    traceId: T,
    spanId: S,
    sampled: true,
  });
  assert.equal(parseB3Multi({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'false' })?.sampled, false);
  assert.equal(parseB3Multi({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' })?.sampled, true);
  assert.deepEqual(parseB3Multi({ 'x-b3-sampled': '0' }), { sampled: false });
  assert.equal(parseB3Multi({ 'x-b3-traceid': 'zz', 'x-b3-spanid': S }), undefined);
  assert.equal(parseB3Multi({}), undefined);
});

test('precedence: W3C, then B3 single, then B3 multi; invalid traceparent falls through', () => {
  const b3 = `${'1'.repeat(32)}-${'2'.repeat(16)}-1`;
  assert.equal(incomingContext({ traceparent: `00-${T}-${S}-01`, b3 })?.traceId, T);
  assert.equal(incomingContext({ traceparent: 'bad', b3 })?.traceId, '1'.repeat(32));
  assert.equal(incomingContext({ b3: '0', 'x-b3-traceid': T, 'x-b3-spanid': S })?.traceId, T);
  assert.deepEqual(incomingContext({ b3: '0' }), { sampled: false });
  assert.equal(incomingContext({ traceparent: 'bad', tracestate: 'a=b' }), undefined, 'tracestate alone is nothing');
});

test('server ids: continue, or start a trace; sampled flag honoured', () => {
  const gen = new IdGenerator();
  const cont = serverIds({ traceparent: `00-${T}-${S}-00`, tracestate: 'k=v' }, gen);
  assert.equal(cont.traceId, T);
  assert.equal(cont.parentSpanId, S);
  assert.equal(cont.sampled, false);
  assert.equal(cont.traceState, 'k=v');
  assert.equal(cont.remoteParent, true);
  assert.match(cont.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(cont.spanId, S);
  const fresh = serverIds({}, gen);
  assert.match(fresh.traceId, /^[0-9a-f]{32}$/);
  assert.equal(fresh.parentSpanId, undefined);
  assert.equal(fresh.remoteParent, false);
  assert.equal(fresh.sampled, true);
  assert.equal(serverIds({ b3: '0' }, gen).sampled, false, 'sampling-only B3 respected');
});

test('client ids without a parent use a propagated context as their own', () => {
  const gen = new IdGenerator();
  const ids = clientIds(undefined, { traceparent: `00-${T}-${S}-01` }, gen);
  assert.equal(ids.traceId, T);
  assert.equal(ids.spanId, S);
});

test('id generator: unique, well-formed, never all zero, pooled', () => {
  let fills = 0;
  const gen = new IdGenerator((b) => {
    fills++;
    randomFillSync(b);
  }, 256);
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(gen.spanId());
  assert.equal(seen.size, 10_000);
  assert.ok(fills <= 10_000 / 32 + 1, `pooled: ${fills} fills`);
  let calls = 0;
  const flaky = new IdGenerator((b) => b.fill(calls++ === 0 ? 0 : 7), 8);
  assert.equal(flaky.spanId(), '0707070707070707', 'all-zero id redrawn');
});
