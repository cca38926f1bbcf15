/**
 * Trace identity as the native assembler decides it (ported from the TypeScript trace-context
 * tests): W3C traceparent and tracestate, B3 single and multi, their precedence, the sampling
 * decision a caller states, and the ids the assembler draws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeFlag } from '../../src/capture/exchange-layout';
import { Conversation, request, response } from './helpers/assembler-conversation';
import type { ExchangeView } from './helpers/frame-reader';

const T = '0af7651916cd43dd8448eb211c80319c';
const S = 'b7ad6b7169203331';

/** The SERVER exchange of one request carrying these headers. */
function inbound(headers: Record<string, string>): ExchangeView {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  c.read(1, request('GET', '/t', headers));
  c.write(1, response(200));
  return c.server()[0];
}

interface Seen {
  traceId?: string;
  parent?: string;
  sampled?: boolean;
  stated: boolean;
}

/** What the exchange took from its caller; traceId undefined when it started a trace of its own. */
function seen(headers: Record<string, string>): Seen {
  const e = inbound(headers);
  const caller = (e.flags & ExchangeFlag.CallerContext) !== 0;
  assert.equal(caller, e.parentSpanId !== undefined, 'a caller context comes with its parent span');
  return {
    traceId: caller ? e.traceId : undefined,
    parent: e.parentSpanId,
    sampled: (e.flags & ExchangeFlag.Sampled) !== 0,
    stated: (e.flags & ExchangeFlag.CallerSampledSet) !== 0,
  };
}

test('W3C traceparent validation', () => {
  assert.deepEqual(seen({ traceparent: `00-${T}-${S}-01` }), { traceId: T, parent: S, sampled: true, stated: true });
  assert.deepEqual(seen({ traceparent: `00-${T}-${S}-00` }), { traceId: T, parent: S, sampled: false, stated: true });
  assert.equal(seen({ traceparent: `00-${T}-${S}-03` }).sampled, true, 'other flag bits ignored');
  assert.equal(seen({ traceparent: `00-${T}-${S}-02` }).sampled, false, 'only bit 0');
  assert.equal(seen({ traceparent: `   00-${T}-${S}-01 ` }).traceId, T, 'surrounding spaces');
  assert.equal(seen({ traceparent: `01-${T}-${S}-01-future` }).traceId, T, 'later versions may have more fields');
  for (const bad of [
    `ff-${T}-${S}-01`,
    `00-${T}-${S}-01-extra`,
    `00-${'0'.repeat(32)}-${S}-01`,
    `00-${T}-${'0'.repeat(16)}-01`,
    `00-${T.toUpperCase()}-${S}-01`,
    `00-${T.slice(1)}-${S}-01`,
    `00-${T}-${S}-1`,
    `00_${T}_${S}_01`,
    `01-${T}-${S}-01x`,
    '',
    'garbage',
  ]) {
    const s = seen({ traceparent: bad });
    assert.deepEqual(s, { traceId: undefined, parent: undefined, sampled: true, stated: false }, bad);
  }
});

test('tracestate: kept with a valid traceparent, trimmed, at most 512 bytes', () => {
  assert.equal(inbound({ traceparent: `00-${T}-${S}-01`, tracestate: ' a=1,b=2 ' }).traceState, 'a=1,b=2');
  assert.equal(inbound({ traceparent: `00-${T}-${S}-01`, tracestate: `k=${'v'.repeat(510)}` }).traceState?.length, 512);
  assert.equal(
    inbound({ traceparent: `00-${T}-${S}-01`, tracestate: `k=${'v'.repeat(511)}` }).traceState,
    undefined,
    '513',
  );
  assert.equal(inbound({ traceparent: `00-${T}-${S}-01`, tracestate: '   ' }).traceState, undefined, 'blank');
  assert.equal(inbound({ traceparent: 'bad', tracestate: 'a=b' }).traceState, undefined, 'tracestate alone is nothing');
  assert.equal(inbound({ b3: `${T}-${S}-1`, tracestate: 'a=b' }).traceState, undefined, 'not with B3');
});

test('B3 single', () => {
  assert.deepEqual(seen({ b3: `${T}-${S}-1` }), { traceId: T, parent: S, sampled: true, stated: true });
  assert.deepEqual(seen({ b3: `${T}-${S}-d-0000000000000001` }).sampled, true, 'debug');
  assert.deepEqual(seen({ b3: `${T}-${S}-0` }), { traceId: T, parent: S, sampled: false, stated: true });
  assert.deepEqual(seen({ b3: `${T}-${S}` }), { traceId: T, parent: S, sampled: true, stated: false }, 'deferred');
  assert.equal(seen({ b3: `${S}-${S}` }).traceId, `0000000000000000${S}`, '64-bit trace ids padded');
  assert.equal(seen({ b3: `${T.toUpperCase()}-${S}` }).traceId, T, 'B3 is read in any case');
  assert.deepEqual(
    seen({ b3: '0' }),
    { traceId: undefined, parent: undefined, sampled: false, stated: true },
    'sampling only',
  );
  assert.deepEqual(seen({ b3: '1' }), { traceId: undefined, parent: undefined, sampled: true, stated: true });
  for (const bad of [
    `${T}-${S}-x`,
    `${T}`,
    `${T}-${S}-1-zz`,
    `${T}-${'0'.repeat(16)}`,
    `${T}-${S}-1-${S}-9`,
    `${T}--${S}`,
  ]) {
    assert.deepEqual(seen({ b3: bad }), { traceId: undefined, parent: undefined, sampled: true, stated: false }, bad);
  }
});

test('B3 multi', () => {
  assert.deepEqual(seen({ 'X-B3-TraceId': T, 'X-B3-SpanId': S, 'X-B3-Sampled': '1' }), {
    traceId: T,
    parent: S,
    sampled: true,
    stated: true,
  });
  assert.equal(seen({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'false' }).sampled, false);
  assert.equal(
    seen({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '0', 'x-b3-flags': '1' }).sampled,
    true,
    'debug',
  );
  assert.deepEqual(seen({ 'x-b3-sampled': '0' }), {
    traceId: undefined,
    parent: undefined,
    sampled: false,
    stated: true,
  });
  assert.deepEqual(seen({ 'x-b3-traceid': 'zz', 'x-b3-spanid': S }), {
    traceId: undefined,
    parent: undefined,
    sampled: true,
    stated: false,
  });
  assert.deepEqual(seen({}), { traceId: undefined, parent: undefined, sampled: true, stated: false });
});

test('precedence: W3C, then B3 single, then B3 multi; invalid traceparent falls through', () => {
  const b3 = `${'1'.repeat(32)}-${'2'.repeat(16)}-1`;
  assert.equal(seen({ traceparent: `00-${T}-${S}-01`, b3 }).traceId, T);
  assert.equal(seen({ traceparent: 'bad', b3 }).traceId, '1'.repeat(32));
  assert.equal(seen({ b3, 'x-b3-traceid': T, 'x-b3-spanid': S }).traceId, '1'.repeat(32), 'single before multi');
  assert.equal(seen({ b3: 'bad', 'x-b3-traceid': T, 'x-b3-spanid': S }).traceId, T, 'an invalid single falls through');
  assert.equal(
    seen({ b3: '0', 'x-b3-traceid': T, 'x-b3-spanid': S }).traceId,
    T,
    'a full multi context beats a sampling-only single',
  );
  assert.equal(
    seen({ b3: '0', 'x-b3-traceid': T, 'x-b3-spanid': S }).sampled,
    true,
    '...with its own decision (none: sampled)',
  );
  assert.deepEqual(seen({ b3: '0' }).sampled, false);
});

test('server ids: continue, or start a trace; a span id of its own', () => {
  const cont = inbound({ traceparent: `00-${T}-${S}-00`, tracestate: 'k=v' });
  assert.equal(cont.traceId, T);
  assert.equal(cont.parentSpanId, S);
  assert.equal(cont.traceState, 'k=v');
  assert.match(cont.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(cont.spanId, S);
  const fresh = inbound({});
  assert.match(fresh.traceId, /^[0-9a-f]{32}$/);
  assert.equal(fresh.parentSpanId, undefined);
  assert.ok(!(fresh.flags & ExchangeFlag.ParentSpan));
  assert.ok(fresh.flags & ExchangeFlag.Sampled, 'sampled without a stated decision');
});

test('client ids without a parent use a propagated context as their own', () => {
  const c = new Conversation();
  c.open(1, { direction: 'client' });
  c.write(1, request('GET', '/own', { traceparent: `00-${T}-${S}-01` }));
  c.read(1, response(200));
  const e = c.client()[0];
  assert.equal(e.parentId, 0n);
  assert.equal(e.traceId, T);
  assert.equal(e.spanId, S);
  assert.equal(e.parentSpanId, undefined);
});

test('ids: unique, well-formed, never all zero', () => {
  const c = new Conversation();
  c.open(1, { direction: 'server' });
  for (let i = 0; i < 5000; i++) {
    c.read(1, 'GET / HTTP/1.1\r\n\r\n');
    c.write(1, 'HTTP/1.1 204 No Content\r\n\r\n');
  }
  const spans = new Set(c.done.map((e) => e.spanId));
  const traces = new Set(c.done.map((e) => e.traceId));
  assert.equal(spans.size, 5000, 'span ids unique');
  assert.equal(traces.size, 5000, 'trace ids unique');
  assert.ok(!spans.has('0'.repeat(16)) && !traces.has('0'.repeat(32)), 'never zero');
  assert.equal(new Set(c.done.map((e) => e.id)).size, 5000, 'exchange ids unique');
});
