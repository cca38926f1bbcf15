/**
 * Sampling after the response (src/enrich/sampler.ts): the SDK's samplers with our tail rules as
 * their root, consistent ratio sampling on the trace id's random bits, and what a kept span says
 * about how it was kept (rule, ratio, `th` in tracestate).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ParentBasedSampler } from '@opentelemetry/sdk-trace-node';
import { ErrorCode, ExchangeFlag as F } from '../../src/capture/exchange-layout';
import {
  buildSdkSampler,
  callerRatio,
  ratioOfThreshold,
  sampledTraceState,
  Sampler,
  thresholdHex,
  type SamplingOutcome,
} from '../../src/enrich/sampler';
import { spanAttributes } from '../../src/otel/span';
import { ExchangeSpan } from '../../src/otel/spans';
import { clientSpec, serverSpec, type ExchangeFrameSpec } from './helpers/frames';
import { enrich, fakeClock } from './helpers/pipeline';

const CALLER = F.Response | F.CallerContext | F.ParentSpan | F.CallerSampledSet;
const PARENT = '00f067aa0ba902b7';
/** random part 0x80000000000000: kept at any ratio >= 0.5 */
const MID = '0123456789abcdef0080000000000000';
/** random part just under it: dropped at 0.5 */
const BELOW_MID = '0123456789abcdef007fffffffffffff';
const rules = { keepErrors: true, keepSlowerThanNs: 50e6 };

function outcomes(sampler: Sampler, frames: ExchangeFrameSpec[]): (SamplingOutcome | undefined)[] {
  return enrich(frames, { sampler }).map((e) => e.sampling);
}

test('th: the threshold (1 - ratio) * 2^56 in hex, trailing zeros removed, and back', () => {
  assert.equal(thresholdHex(1), '0', '100%');
  assert.equal(thresholdHex(0.5), '8');
  assert.equal(thresholdHex(0.25), 'c');
  assert.equal(thresholdHex(0.75), '4');
  assert.equal(thresholdHex(1 / 3), 'aaaaaaaaaaaaac', 'full precision (of 1/3 as a double)');
  assert.equal(thresholdHex(0), undefined, 'nothing is ever kept at 0');
  assert.equal(ratioOfThreshold('c'), 0.25);
  assert.equal(ratioOfThreshold('0'), 1);
  assert.equal(ratioOfThreshold('xyz'), undefined);
  assert.equal(callerRatio('vendor=1,ot=rv:0123;th:8'), 0.5, "a caller's th, among other sub-keys");
  assert.equal(callerRatio('vendor=1'), undefined);
});

test("the SDK's samplers decide: ParentBasedSampler around the tail rules; the ratio is consistent", () => {
  assert.ok(buildSdkSampler('parentbased_traceidratio', 0.5, rules) instanceof ParentBasedSampler);
  assert.ok(!(buildSdkSampler('traceidratio', 0.5, rules) instanceof ParentBasedSampler));
  const half = new Sampler('traceidratio', 0.5);
  const kept = outcomes(half, [serverSpec({ traceId: MID }), serverSpec({ traceId: BELOW_MID })]);
  assert.equal(kept[0]?.rule, 'sampler', 'random part at the threshold: kept');
  assert.equal(kept[0]?.ratio, 0.5);
  assert.equal(kept[0]?.threshold, '8');
  assert.equal(kept[1], undefined, 'just under it: dropped');
  const frames: ExchangeFrameSpec[] = [];
  for (let i = 0; i < 4000; i++) frames.push(serverSpec({ traceId: randomBytes(16).toString('hex'), attempts: 0 }));
  const quarter = outcomes(new Sampler('parentbased_traceidratio', 0.25), frames).filter((o) => o !== undefined);
  assert.ok(quarter.length > 850 && quarter.length < 1150, `about a quarter kept, got ${quarter.length}/4000`);
  assert.ok(
    quarter.every((o) => o.threshold === 'c'),
    'every kept span says th:c',
  );
});

test('after the response: errors and slow requests are kept whatever the ratio, and say so', () => {
  const sampler = new Sampler('parentbased_traceidratio', 0.01, rules);
  const [ok, err5xx, closed, slow, fast] = outcomes(sampler, [
    serverSpec({ traceId: BELOW_MID, status: 200, attempts: 0 }),
    serverSpec({ traceId: BELOW_MID, status: 503, attempts: 0 }),
    serverSpec({ traceId: BELOW_MID, status: 0, error: ErrorCode.ClientClosed, attempts: 0 }),
    serverSpec({ traceId: BELOW_MID, status: 200, startNs: 1e6, endNs: 1e6 + 60e6, attempts: 0 }),
    serverSpec({ traceId: BELOW_MID, status: 200, startNs: 1e6, endNs: 1e6 + 40e6, attempts: 0 }),
  ]);
  assert.equal(ok, undefined, 'a plain 200 goes by the ratio (1%): dropped');
  assert.deepEqual([err5xx?.rule, err5xx?.ratio, err5xx?.threshold], ['error', 1, '0'], 'a 5xx: kept, counts once');
  assert.equal(closed?.rule, 'error', 'an error type without a status (client gone)');
  assert.deepEqual([slow?.rule, slow?.ratio], ['slow', 1], 'slower than 50 ms');
  assert.equal(fast, undefined, 'faster: by the ratio');

  const headOnly = new Sampler('parentbased_traceidratio', 0.01, { keepErrors: false, keepSlowerThanNs: 0 });
  assert.deepEqual(
    outcomes(headOnly, [serverSpec({ traceId: BELOW_MID, status: 503, attempts: 0 })]),
    [undefined],
    'SAMPLE_KEEP_ERRORS=false: the ratio alone',
  );
  const four = outcomes(new Sampler('parentbased_traceidratio', 0.01, rules), [
    serverSpec({ traceId: BELOW_MID, status: 404, attempts: 0 }),
  ]);
  assert.deepEqual(four, [undefined], 'a 4xx is not an error of the server');
});

test("a caller's decision is honoured both ways; CLIENT spans follow their SERVER", () => {
  const sampler = new Sampler('parentbased_traceidratio', 0.01, rules);
  const [unsampledError] = outcomes(sampler, [
    serverSpec({ flags: CALLER, parentSpanId: PARENT, status: 500, attempts: 0 }),
  ]);
  assert.equal(unsampledError, undefined, 'a caller that said "not sampled" gets no spans, even for an error');
  const server = serverSpec({
    traceId: BELOW_MID,
    flags: CALLER | F.Sampled,
    parentSpanId: PARENT,
    traceState: 'ot=th:c',
    status: 200,
  });
  const [s, c] = enrich([server, clientSpec(server, { traceState: 'ot=th:c' })], { sampler });
  assert.equal(s.sampling?.rule, 'parent', 'a caller that sampled: kept, whatever our ratio');
  assert.equal(c.sampling, s.sampling, 'its upstream attempt follows');
  const span = ExchangeSpan.of(s, fakeClock);
  assert.equal(span.traceState, 'ot=th:c', "the caller's tracestate unchanged");
  assert.equal(spanAttributes(span)['kong_watcher.sampling.ratio'], 0.25, 'the ratio its th states');

  const deferred = serverSpec({
    traceId: BELOW_MID,
    flags: F.Response | F.CallerContext | F.ParentSpan | F.Sampled,
    parentSpanId: PARENT,
    attempts: 0,
  });
  assert.deepEqual(outcomes(sampler, [deferred]), [undefined], 'B3 without a decision: our root decides');
  const notParentBased = new Sampler('traceidratio', 0.5, rules);
  const [root] = outcomes(notParentBased, [
    serverSpec({
      traceId: MID,
      flags: CALLER | F.Sampled,
      parentSpanId: PARENT,
      traceState: 'v=1,ot=th:c;rv:ab',
      attempts: 0,
    }),
  ]);
  assert.equal(root?.rule, 'sampler', 'not parent-based: the root decides, though the caller sampled');
});

test('a kept span carries the rule, the ratio, and th in its tracestate', () => {
  const sampler = new Sampler('traceidratio', 0.5, rules);
  const server = serverSpec({ traceId: MID, traceState: 'vendor=abc,ot=rv:01;th:f', status: 200 });
  const [s, c] = enrich([server, clientSpec(server)], { sampler }).map((e) => ExchangeSpan.of(e, fakeClock));
  assert.equal(s.traceState, 'ot=th:8;rv:01,vendor=abc', 'th replaced, the ot entry first, the rest kept');
  const a = spanAttributes(s);
  assert.equal(a['kong_watcher.sampling.rule'], 'sampler');
  assert.equal(a['kong_watcher.sampling.ratio'], 0.5);
  assert.equal(spanAttributes(c)['kong_watcher.sampling.ratio'], 0.5, 'the CLIENT span too');
  assert.equal(sampledTraceState(undefined, { decision: 2, rule: 'error', ratio: 1, threshold: '0' }), 'ot=th:0');
  const [err] = enrich([serverSpec({ traceId: BELOW_MID, status: 502, attempts: 0 })], { sampler }).map((e) =>
    ExchangeSpan.of(e, fakeClock),
  );
  assert.equal(err.traceState, 'ot=th:0', 'kept by a rule: adjusted count 1');
  assert.equal(spanAttributes(err)['kong_watcher.sampling.rule'], 'error');
});
