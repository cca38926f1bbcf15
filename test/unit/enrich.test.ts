import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Exchange } from '../../src/capture/exchange';
import { ErrorCode, ExchangeFlag, Method } from '../../src/capture/exchange-layout';
import { AF_INET6 } from '../../src/capture/records';
import { ERROR_GRPC, ERROR_STATUS, ResponseSource } from '../../src/enrich/enriched';
import type { RouteInfo } from '../../src/enrich/kong/route-table';
import type { PodInfo } from '../../src/enrich/pods';
import { Sampler, type SamplerKind } from '../../src/enrich/sampler';
import { HostTable } from '../../src/enrich/upstream-hosts';
import { clientSpec, serverSpec, type ExchangeFrameSpec } from './helpers/frames';
import { enrich, enrichBatches } from './helpers/pipeline';

const F = ExchangeFlag;
const ROUTE: RouteInfo = { index: 3, route: '/orders', routeName: 'orders', serviceName: 'shop', spanNames: [] };

test('route resolved once per SERVER exchange, never for a CLIENT; pod per pid for both', () => {
  const asked: Exchange[] = [];
  const routes = { resolve: (ex: Exchange) => (asked.push(ex), ROUTE) };
  const podA: PodInfo = { index: 1, name: 'kong-a', namespace: 'gw' };
  const pods = { get: (pid: number) => (pid === 100 ? podA : undefined) };
  const server = serverSpec();
  const out = enrich([server, clientSpec(server), serverSpec({ pid: 200 })], { routes, pods });
  assert.equal(asked.length, 2, 'one lookup per SERVER exchange, none for the CLIENT');
  assert.equal(out[0].route, ROUTE, 'the SERVER carries its route');
  assert.equal(out[1].route, undefined, 'a CLIENT has none');
  assert.equal(out[0].pod, podA, 'pod of pid 100');
  assert.equal(out[1].pod, podA, 'the CLIENT of the same worker too');
  assert.equal(out[2].pod, undefined, 'unknown pid: no pod');
});

test('query redacted by the one redactor, once, and only when asked for', () => {
  let calls = 0;
  const redactor = {
    query: (q: string) => (calls++, q.replace(/token=[^&]*/, 'token=REDACTED')),
    path: (p: string) => p,
  };
  const [withQuery, without] = enrich([serverSpec(), serverSpec({ query: undefined })], { redactor });
  assert.equal(calls, 0, 'nothing redacted until an output asks');
  assert.equal(withQuery.query, 'limit=5&token=REDACTED');
  assert.equal(withQuery.query, 'limit=5&token=REDACTED');
  assert.equal(calls, 1, 'decided once');
  assert.equal(without.query, undefined, 'no "?": no query');
  assert.equal(calls, 1);
});

test('error type: the error code, else status >= 500 for SERVER and >= 400 for CLIENT', () => {
  const server = serverSpec({ status: 404 });
  const out = enrich([
    server,
    clientSpec(server, { status: 404 }),
    serverSpec({ status: 503, attempts: 0 }),
    serverSpec({ status: 0, error: ErrorCode.ClientClosed, attempts: 0 }),
    serverSpec({ status: 200, error: ErrorCode.AgentStopped, attempts: 0 }),
  ]);
  assert.equal(out[0].errorType, undefined, 'a SERVER 404 is not a server error');
  assert.equal(out[0].errorKey, 0);
  assert.equal(out[1].errorType, '404', 'a CLIENT 404 is');
  assert.equal(out[1].errorKey, ERROR_STATUS);
  assert.equal(out[2].errorType, '503');
  assert.equal(out[3].errorType, 'client_closed', 'the error code names it');
  assert.equal(out[3].errorKey, ErrorCode.ClientClosed);
  assert.equal(out[4].errorType, 'agent_stopped', 'the code wins over a good status');
});

test('gRPC: a failed call is an error by its grpc-status, the server codes of the semantic conventions, every code for a CLIENT', () => {
  const server = serverSpec({ status: 200, grpcStatus: 14 });
  const out = enrich([server, clientSpec(server, { status: 200, grpcStatus: 14 })]);
  assert.equal(out[0].errorKey, ERROR_GRPC);
  assert.equal(out[0].errorType, 'UNAVAILABLE', 'error.type names the code');
  assert.equal(out[1].errorType, 'UNAVAILABLE', 'the attempt too');
  const [notFoundServer, notFoundClient, ok, badGateway] = enrich([
    serverSpec({ status: 200, grpcStatus: 5, attempts: 0 }),
    clientSpec(serverSpec(), { status: 200, grpcStatus: 5 }),
    serverSpec({ status: 200, grpcStatus: 0, attempts: 0 }),
    serverSpec({ status: 502, grpcStatus: 14, attempts: 0 }),
  ]);
  assert.equal(notFoundServer.errorType, undefined, "NOT_FOUND is the caller's problem, not the server's");
  assert.equal(notFoundClient.errorType, 'NOT_FOUND', 'but a CLIENT call failed');
  assert.equal(ok.errorKey, 0);
  assert.equal(badGateway.errorType, '502', 'an HTTP error status wins');
});

test("Kong's latency split adds up to the duration and is clamped inside the exchange", () => {
  const [plain, early, running, none] = enrich([
    serverSpec({ startNs: 1_000_000, endNs: 5_500_000, upstreamStartNs: 2_000_000, upstreamEndNs: 5_000_000 }),
    serverSpec({ startNs: 1_000_000, endNs: 5_500_000, upstreamStartNs: 500_000, upstreamEndNs: 9_000_000 }),
    serverSpec({ startNs: 1_000_000, endNs: 5_500_000, upstreamStartNs: 2_000_000, upstreamEndNs: 0 }),
    serverSpec({ upstreamStartNs: 0, upstreamEndNs: 0, attempts: 0 }),
  ]);
  assert.deepEqual([plain.beforeUpstreamNs, plain.upstreamNs, plain.afterUpstreamNs], [1_000_000, 3_000_000, 500_000]);
  assert.deepEqual([early.beforeUpstreamNs, early.upstreamNs, early.afterUpstreamNs], [0, 4_500_000, 0], 'clamped');
  assert.deepEqual(
    [running.beforeUpstreamNs, running.upstreamNs, running.afterUpstreamNs],
    [1_000_000, 3_500_000, 0],
    'an attempt still running ran to the end',
  );
  for (const e of [plain, early, running]) {
    assert.equal(e.beforeUpstreamNs + e.upstreamNs + e.afterUpstreamNs, e.durationNs, 'adds up');
  }
  assert.equal(none.hasUpstreamSplit, false, 'no attempt seen: no split');
  assert.equal(none.beforeUpstreamNs, -1);
});

test('response source: Kong itself, or the upstream', () => {
  const source = (over: ExchangeFrameSpec) => enrich([serverSpec(over)])[0].responseSourceName;
  const base = { attempts: 0, kongUpstreamLatencyMs: -1, kongProxyLatencyMs: -1 };
  assert.equal(source({ ...base, flags: F.Response | F.ServerKong }), 'kong', 'Server: kong/ without Via');
  assert.equal(
    source({ ...base, flags: F.Response | F.ServerKong, attempts: 2 }),
    'kong',
    'a 502 after failed attempts',
  );
  assert.equal(source({ ...base, flags: F.Response | F.ServerKong | F.Via }), 'upstream', 'Via wins');
  assert.equal(source({ ...base, flags: F.Response, attempts: 1 }), 'upstream', 'an attempt was seen');
  assert.equal(source({ ...base, flags: F.Response | F.Via }), 'upstream', 'Via');
  assert.equal(source({ ...base, flags: F.Response, kongUpstreamLatencyMs: 3 }), 'upstream', 'X-Kong-Upstream-Latency');
  assert.equal(source({ ...base, flags: F.Response }), 'kong', 'no sign of proxying');
  const server = serverSpec();
  assert.equal(enrich([server, clientSpec(server)])[1].responseSource, ResponseSource.None, 'CLIENTs have none');
});

test('CLIENTs right after their SERVER are attached to it and handed on after it', () => {
  const s1 = serverSpec({ attempts: 2 });
  const s2 = serverSpec({ attempts: 1 });
  const c1a = clientSpec(s1);
  const c1b = clientSpec(s1, { attempt: 1 });
  const c2 = clientSpec(s2);
  const { exchanges: out, enricher } = enrichBatches([[s1, c1a, c1b, s2], [c2]]);
  assert.deepEqual(
    out.map((e) => e.ex.id),
    [s1.id, c1a.id, c1b.id, s2.id, c2.id],
    'each SERVER, then its attempts',
  );
  const [e1, a, b, e2, late] = out;
  assert.equal(e1.firstClient, a, 'first attempt attached');
  assert.equal(a.nextClient, b, 'second attempt linked');
  assert.equal(b.nextClient, undefined);
  assert.equal(e2.firstClient, undefined, 'the batch ended before its attempt: nothing attached');
  assert.equal(late.ex.parentId, s2.id, 'the late attempt still names its SERVER');
  assert.deepEqual(
    enricher.stats(),
    { servers: 2, clients: 3, attachedClients: 2, lateClients: 1, lateClientsUndecided: 0, unmatchedClients: 0 },
    'counts',
  );
});

function sampled(kind: SamplerKind, ratio: number, frames: ExchangeFrameSpec[]): boolean[] {
  return enrich(frames, { sampler: new Sampler(kind, ratio) }).map((e) => e.sampled);
}

test("sampling keeps today's head samplers' semantics", () => {
  const caller = F.Response | F.CallerContext | F.ParentSpan | F.CallerSampledSet;
  const unsampledCaller = serverSpec({ flags: caller, attempts: 0 });
  assert.deepEqual(sampled('parentbased_always_on', 1, [unsampledCaller]), [false], 'the caller said not sampled');
  assert.deepEqual(
    sampled('always_on', 1, [unsampledCaller]),
    [false],
    'whatever the sampler (b3: 0, traceparent -00)',
  );
  assert.deepEqual(sampled('always_off', 1, [serverSpec()]), [false], 'always_off');
  assert.deepEqual(sampled('always_on', 1, [serverSpec()]), [true], 'always_on');
  const sampledCaller = serverSpec({ flags: caller | F.Sampled, attempts: 0, parentSpanId: '00f067aa0ba902b7' });
  assert.deepEqual(
    sampled('parentbased_always_off', 1, [sampledCaller]),
    [true],
    'parent-based follows a sampled caller',
  );
  assert.deepEqual(sampled('parentbased_always_off', 1, [serverSpec()]), [false], 'its root decides without one');
  assert.deepEqual(sampled('always_off', 1, [sampledCaller]), [false], 'not parent-based: the root decides');

  // Kept when the trace id's last 56 bits reach the threshold (1 - ratio) * 2^56.
  const high = serverSpec({ traceId: '0123456789abcdef00ffffffffffffff' });
  const low = serverSpec({ traceId: '0123456789abcdef0000000000000001' });
  assert.deepEqual(
    sampled('traceidratio', 0.5, [high, clientSpec(high), low, clientSpec(low)]),
    [true, true, false, false],
    'ratio from the trace id; a CLIENT follows its SERVER',
  );
  const random: ExchangeFrameSpec[] = [];
  for (let i = 0; i < 2000; i++) random.push(serverSpec({ traceId: randomBytes(16).toString('hex'), attempts: 0 }));
  const kept = sampled('traceidratio', 0.5, random).filter(Boolean).length;
  assert.ok(kept > 850 && kept < 1150, `about half of random traces kept, got ${kept}/2000`);
  assert.deepEqual(
    enrich([serverSpec()], { sampler: undefined }).map((e) => e.sampled),
    [false],
    'no spans configured: nothing sampled',
  );
});

test('a late CLIENT takes its SERVER decision from the recent ones, else its own trace id', () => {
  const sampler = new Sampler('traceidratio', 0.5);
  const keptTrace = '0123456789abcdef00ffffffffffffff';
  const droppedTrace = '0123456789abcdef0000000000000001';
  // The SERVER's own trace id decides it; its late attempt carries another trace id that would decide otherwise.
  const kept = serverSpec({ traceId: keptTrace, attempts: 1 });
  const dropped = serverSpec({ traceId: droppedTrace, attempts: 1 });
  const lateKept = clientSpec(kept, { traceId: droppedTrace });
  const lateDropped = clientSpec(dropped, { traceId: keptTrace });
  const { exchanges } = enrichBatches(
    [
      [kept, dropped],
      [lateKept, lateDropped],
    ],
    { sampler },
  );
  assert.deepEqual(
    exchanges.map((e) => e.sampled),
    [true, false, true, false],
    'late attempts follow their SERVER, not their own trace id',
  );

  const forgotten = serverSpec({ traceId: droppedTrace, attempts: 1 });
  const fillers = [serverSpec({ attempts: 1 }), serverSpec({ attempts: 1 })];
  const { exchanges: after, enricher } = enrichBatches(
    [[forgotten, ...fillers], [clientSpec(forgotten, { traceId: keptTrace })]],
    {
      sampler,
      recentDecisions: 2,
    },
  );
  assert.equal(after[3].sampled, true, 'decision forgotten (bound 2): decided by its own trace id');
  assert.equal(enricher.stats().lateClientsUndecided, 1, 'and counted');

  const held = serverSpec({ traceId: keptTrace, attempts: 1 });
  const { exchanges: heldOut } = enrichBatches(
    [[held, clientSpec(held)], [clientSpec(held, { traceId: droppedTrace, attempt: 1 })]],
    {
      sampler,
      recentDecisions: 8,
    },
  );
  assert.equal(heldOut[2].sampled, false, 'all attempts were attached: its decision was not kept');

  const own = clientSpec(
    {},
    { parentId: 0, parentSpanId: undefined, flags: F.Response | F.Sampled, traceId: keptTrace },
  );
  const ownDropped = clientSpec({}, { parentId: 0, flags: F.Response | F.Sampled, traceId: droppedTrace });
  const unsampled = clientSpec({}, { parentId: 0, flags: F.Response, traceId: keptTrace });
  const { exchanges: unmatched, enricher: e2 } = enrichBatches([[own, ownDropped, unsampled]], { sampler });
  assert.deepEqual(
    unmatched.map((e) => e.sampled),
    [true, false, false],
    "Kong's own calls: their own trace id and sampled flag",
  );
  assert.equal(e2.stats().unmatchedClients, 3);
});

test('upstream host: Host as Kong sent it, interned; else the peer socket', () => {
  const hosts = new HostTable(6);
  const server = serverSpec();
  const out = enrich(
    [
      server,
      clientSpec(server, { host: 'Upstream.Internal:9000' }),
      clientSpec(server, { host: 'upstream.internal:9000' }),
      clientSpec(server, { host: 'upstream.internal' }),
      clientSpec(server, { host: 'upstream.internal', flags: F.Response | F.Tls }),
      clientSpec(server, { host: '[::1]:8080' }),
      clientSpec(server, { host: undefined, peerPort: 9001 }),
      clientSpec(server, { host: 'other:bad' }),
      clientSpec(server, { host: 'one.more' }),
    ],
    { hosts },
  );
  const [, a, b, noPort, tls, v6, socket, badPort, full] = out;
  assert.deepEqual([a.upstream?.address, a.upstream?.port], ['upstream.internal', 9000], 'lowercase address, port');
  assert.equal(a.upstream, b.upstream, 'the same upstream is one interned entry');
  assert.equal(noPort.upstream?.port, 80, 'no port: the scheme default');
  assert.equal(tls.upstream?.port, 443, 'https default');
  assert.deepEqual([v6.upstream?.address, v6.upstream?.port], ['::1', 8080], 'IPv6 literal');
  assert.deepEqual([socket.upstream?.address, socket.upstream?.port], ['127.0.0.2', 9001], 'no Host: the socket');
  assert.deepEqual([badPort.upstream?.address, badPort.upstream?.port], ['other', 80], 'a bad port: the default');
  assert.equal(full.upstream?.index, -1, 'beyond the bound: overflow');
  assert.equal(full.upstream?.address, 'one.more', 'still named on spans');
  assert.deepEqual(
    [a, noPort, tls, v6, socket, badPort].map((e) => e.upstream?.index),
    [1, 2, 3, 4, 5, 6],
    'indexes in order of first sight',
  );
  assert.equal(hosts.size, 6, 'bounded');
  assert.equal(socket.serverAddress, '127.0.0.2', 'serverAddress of a CLIENT is its upstream');
});

test('SERVER server.address/port: the Host the client asked for, else the local socket', () => {
  const [host, noPort, tls, none, v6] = enrich([
    serverSpec({ host: 'API.example.com:8000', attempts: 0 }),
    serverSpec({ host: 'api.example.com', attempts: 0 }),
    serverSpec({ host: 'api.example.com', flags: F.Response | F.Tls, attempts: 0 }),
    serverSpec({ host: undefined, localPort: 8000, attempts: 0 }),
    serverSpec({
      host: undefined,
      family: AF_INET6,
      localAddr: [...Buffer.alloc(15), 1],
      localPort: 8443,
      attempts: 0,
    }),
  ]);
  assert.deepEqual([host.serverAddress, host.serverPort], ['api.example.com', 8000]);
  assert.deepEqual([noPort.serverAddress, noPort.serverPort], ['api.example.com', 80]);
  assert.deepEqual([tls.serverAddress, tls.serverPort], ['api.example.com', 443]);
  assert.deepEqual([none.serverAddress, none.serverPort], ['127.0.0.1', 8000], 'the listener');
  assert.deepEqual([v6.serverAddress, v6.serverPort], ['::1', 8443]);
});

test('methods outside the nine keep their text for logs and spans', () => {
  const [e] = enrich([serverSpec({ method: Method.Other, methodText: 'PROPFIND', attempts: 0 })]);
  assert.equal(e.ex.methodOriginal, 'PROPFIND');
});
