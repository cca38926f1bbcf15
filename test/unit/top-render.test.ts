/**
 * The live view's screen as text: it fits the terminal whatever its size (every line shorter
 * than the width, exactly `height` lines, the keys on the last), colour only when asked, the
 * table sorted by the key pressed, a pod column on a node-wide agent, nothing from the network
 * able to drive the terminal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RecentRequest } from '../../src/output/live/recent';
import type { Figures, LiveSnapshot, RouteRow } from '../../src/output/live/snapshot';
import { ms, perSecond, sparkline } from '../../src/top/format';
import { render, type SortKey } from '../../src/top/render';

const ESC = '\x1b';
// eslint-disable-next-line no-control-regex
const visible = (line: string) => line.replace(/\x1b\[[0-9;]*m/g, '');

function figures(rate: number, errorRate: number, p99: number): Figures {
  const lat = { p50: p99 / 4, p95: p99 / 2, p99, mean: p99 / 3 };
  return {
    rate,
    errorRate,
    errorRatio: rate > 0 ? errorRate / rate : null,
    retryRate: 0,
    duration: lat,
    kong: { p50: 0.0001, p95: 0.0002, p99: 0.0004, mean: 0.0001 },
    upstream: lat,
    kongShare: 0.1,
    upstreamShare: 0.85,
  };
}

function row(route: string, rate: number, errorRate: number, p99: number, extra: Partial<RouteRow> = {}): RouteRow {
  return {
    route,
    routeName: route.slice(1),
    service: `${route.slice(1)}-service`,
    window: figures(rate, errorRate, p99),
    total: {
      requests: rate * 100,
      errors: errorRate * 100,
      status4xx: 0,
      status5xx: errorRate * 100,
      noResponse: 0,
      retries: 0,
    },
    ...extra,
  };
}

function recent(target: string, status: number, durationS: number, extra: Partial<RecentRequest> = {}): RecentRequest {
  return {
    time: 1_700_000_000_000 - 3000,
    method: 'GET',
    target,
    status,
    durationS,
    traceId: '0af7651916cd43dd8448eb211c80319c',
    sampled: true,
    attempts: 1,
    ...extra,
  };
}

function snapshot(over: Partial<LiveSnapshot> = {}): LiveSnapshot {
  return {
    version: 1,
    time: 1_700_000_000_000,
    scope: 'netns',
    windowSeconds: 10,
    totals: { ...figures(40, 6, 0.05), inFlight: 3 },
    total: { requests: 4000, errors: 600, status4xx: 100, status5xx: 500, noResponse: 0, retries: 4 },
    routes: [row('/api', 30, 0, 0.002), row('/fail', 6, 6, 0.004), row('/svc', 4, 0, 0.045), row('/echo', 0, 0, 0.001)],
    history: {
      rate: Array.from({ length: 60 }, (_, i) => 30 + (i % 10)),
      errorRate: Array.from({ length: 60 }, (_, i) => (i % 7 === 0 ? 6 : 0)),
      p99: Array.from({ length: 60 }, () => 0.05),
    },
    slowest: [recent('/svc/slow?ms=45', 200, 0.047), recent('/svc/slow?ms=45', 200, 0.046)],
    failing: [recent('/fail/x?apikey=REDACTED', 500, 0.004), recent('/dead/y', 502, 0.001)],
    agent: {
      kongProcesses: 3,
      eventsPerSecond: 420,
      lostEvents: 0,
      lostEventsInWindow: 0,
      ringFill: 0.001,
      spansDropped: 0,
      spansDroppedInWindow: 0,
      exportFailures: 0,
      export: { traces: 'otlp', metrics: 'otlp', state: 'ok' },
      cpuPercent: 2.5,
      rssBytes: 120 * 1048576,
    },
    ...over,
  };
}

const view = (s: LiveSnapshot, sort: SortKey = 'rate') => ({ source: '127.0.0.1:8687', sort, snapshot: s });

/** The route labels of the table, in screen order. */
function tableRoutes(lines: string[]): string[] {
  const start = lines.findIndex((l) => l.startsWith('ROUTE'));
  const end = lines.findIndex((l) => l.startsWith('SLOWEST'));
  return lines.slice(start + 1, end).map((l) => l.split(/\s+/)[0]);
}

test('fits every terminal size: width - 1 columns at most, exactly the height, keys on the last line', () => {
  const fullAgent = render(view(snapshot()), { width: 400, height: 60, color: false }).find((l) =>
    l.startsWith('Agent'),
  )!;
  assert.ok(fullAgent.endsWith('420 events/s'), fullAgent);
  for (const width of [40, 60, 80, 100, 132, 200]) {
    for (const height of [10, 16, 24, 40, 60]) {
      for (const color of [false, true]) {
        const lines = render(view(snapshot()), { width, height, color });
        assert.equal(lines.length, height, `${width}x${height}: ${lines.length} lines`);
        for (const l of lines) {
          assert.ok(visible(l).length <= width - 1, `${width}x${height} color=${color}: "${visible(l)}" is too wide`);
        }
        assert.match(
          visible(lines[height - 1]),
          /^\[r\]ate {2}\[e\]rrors {2}\[p\]99 {2}\[q\]uit/,
          'keys on the last line',
        );
        // The agent line loses whole figures, never half of one.
        const agent = visible(lines.find((l) => visible(l).startsWith('Agent')) ?? '');
        assert.ok(fullAgent.startsWith(agent) && /^( {2}|$)/.test(fullAgent.slice(agent.length)), `${width}: ${agent}`);
      }
    }
  }
});

test('80 x 24: what a person sees', () => {
  const lines = render(view(snapshot()), { width: 80, height: 24, color: false });
  const text = lines.join('\n');
  assert.match(lines[0], /^kong-watcher top · 127\.0\.0\.1:8687 · 3 Kong processes · last 10 s +\d\d:\d\d:\d\d$/);
  assert.match(text, /^Requests +40\/s {2}errors 6\.0\/s \(15%\) {2}in flight 3/m, 'rate, errors, in flight');
  assert.match(text, /^Total +4000 requests {2}600 errors: 4xx 100, 5xx 500, no response 0/m, 'counts since start');
  assert.match(text, /^Duration +p50 +12\.5 ms {2}p95 +25\.0 ms {2}p99 +50\.0 ms/m, 'p50/p95/p99');
  assert.match(text, /^Kong +p50 +0\.10 ms .* 10% of the time$/m, "Kong's own time");
  assert.match(text, /^Upstream +p50 .* 85% of the time$/m, "the upstream's time");
  for (const label of ['rate', 'errors', 'p99']) {
    assert.match(text, new RegExp(`^${label} +[ ▁▂▃▄▅▆▇█]{20,}`, 'm'), `${label} sparkline`);
  }
  const header = lines.find((l) => l.startsWith('ROUTE'))!;
  for (const col of ['REQ/S▼', 'ERR%', 'P50ms', 'P99ms', 'KONGms', 'UPSms', 'REQS']) {
    assert.ok(header.includes(col), `column ${col} at 80 columns: ${header}`);
  }
  assert.ok(!header.includes('SERVICE'), 'the service column waits for a wider terminal');
  assert.match(text, /^SLOWEST PATH +STATUS +MS .*TRACE ID$/m);
  assert.match(
    text,
    /^GET +\/svc\/slow\?ms=45 +200 +47\.0 .*0af7651916cd43dd8448eb211c80319c$/m,
    'slowest with its trace id',
  );
  assert.match(text, /^FAILING PATH/m);
  assert.match(text, /^GET +\/fail\/x\?apikey=RED… +500 /m, 'failing, the path cut to fit');
  assert.match(text, /^Agent +lost 0 {2}ring 0\.1% {2}spans dropped 0 {2}export ok {2}cpu 2\.5% {2}rss 120M/m);
  assert.ok(lines[23].endsWith('sort: rate'), 'the sort in force');
  assert.equal(text.includes(ESC), false, 'no colour unless asked');
});

test('wider terminals get more columns; narrower ones drop them, never the trace id before the path', () => {
  const wide = render(view(snapshot()), { width: 132, height: 40, color: false });
  const wideHeader = wide.find((l) => l.startsWith('ROUTE'))!;
  for (const col of ['SERVICE', 'RETRY/S', 'REQS', 'ERRS']) assert.ok(wideHeader.includes(col), `${col} at 132`);
  assert.ok(
    wide.some((l) => /^\/api +api-service +30 /.test(l)),
    'the service named',
  );
  const narrow = render(view(snapshot()), { width: 60, height: 24, color: false });
  const narrowHeader = narrow.find((l) => l.startsWith('ROUTE'))!;
  assert.ok(narrowHeader.includes('P99ms') && !narrowHeader.includes('REQS'), narrowHeader);
});

test('sorted by rate, errors or p99', () => {
  const order = (sort: SortKey) =>
    tableRoutes(render(view(snapshot(), sort), { width: 100, height: Infinity, color: false }));
  assert.deepEqual(order('rate'), ['/api', '/fail', '/svc', '/echo']);
  assert.deepEqual(order('errors'), ['/fail', '/api', '/svc', '/echo'], 'errors first, then the rest by rate');
  assert.deepEqual(order('p99'), ['/svc', '/fail', '/api', '/echo']);
  const lines = render(view(snapshot(), 'p99'), { width: 100, height: 30, color: false });
  assert.ok(lines.find((l) => l.startsWith('ROUTE'))!.includes('P99ms▼'), 'the sorted column marked');
  assert.ok(lines[29].endsWith('sort: p99'));
});

test('short terminals: every list keeps a row, the table at least half of what is left', () => {
  const many = snapshot({
    routes: Array.from({ length: 30 }, (_, i) => row(`/r${i}`, 30 - i, 0, 0.001)),
    slowest: Array.from({ length: 10 }, () => recent('/slow', 200, 0.5)),
    failing: Array.from({ length: 20 }, () => recent('/fail', 500, 0.001)),
  });
  const lines = render(view(many), { width: 80, height: 24, color: false });
  const at = (p: string) => lines.findIndex((l) => l.startsWith(p));
  assert.ok(at('ROUTE') > 0 && at('SLOWEST') > at('ROUTE') + 1 && at('FAILING') > at('SLOWEST') + 1, lines.join('\n'));
  assert.ok(lines[at('FAILING') + 1].startsWith('GET'), 'a failing request shown');
  assert.ok(at('SLOWEST') - at('ROUTE') - 1 >= 3, 'the table has rows');
  const all = render(view(many), { width: 80, height: Infinity, color: false });
  assert.equal(tableRoutes(all).length, 30, '--once shows every row');
  assert.equal(all.filter((l) => l.startsWith('GET') && l.includes('/fail')).length, 20, 'and every recent request');
});

test('colour: red errors, coloured sparklines, inverse title; widths unchanged', () => {
  const lines = render(view(snapshot()), { width: 80, height: 24, color: true });
  const text = lines.join('\n');
  assert.ok(lines[0].startsWith(`${ESC}[7m`), 'inverse title bar');
  assert.ok(text.includes(`${ESC}[31m6.0/s${ESC}[0m`), 'the error rate in red');
  assert.ok(text.includes(`${ESC}[31m  500${ESC}[0m`) || text.includes(`${ESC}[31m   500${ESC}[0m`), '5xx in red');
  assert.ok(text.includes(`${ESC}[32m`), 'the rate sparkline in green');
});

test('a node-wide agent: a pod column, in the table and the recent lists', () => {
  const s = snapshot({
    scope: 'host',
    routes: [
      row('/api', 20, 0, 0.002, { pod: 'kong-7d9f-abcde', namespace: 'edge' }),
      row('/api', 10, 1, 0.002, { pod: 'kong-7d9f-fghij', namespace: 'edge' }),
    ],
    failing: [recent('/api/x', 500, 0.001, { pod: 'kong-7d9f-fghij', namespace: 'edge' })],
  });
  const lines = render(view(s), { width: 100, height: 30, color: false });
  assert.ok(lines.find((l) => l.startsWith('POD'))?.includes('ROUTE'), 'POD before ROUTE');
  assert.ok(
    lines.some((l) => /^kong-7d9f-abcde +\/api +20 /.test(l)),
    'a row per pod',
  );
  assert.ok(
    lines.some((l) => /^GET +kong-7d9f-fghij +\/api\/x/.test(l)),
    'the pod of a failing request',
  );
  const narrow = render(view(s), { width: 80, height: 24, color: false });
  assert.ok(
    narrow.find((l) => l.startsWith('POD')),
    'the pod column stays at 80 columns',
  );
});

test('text from the network cannot drive the terminal', () => {
  const evil = `/x${ESC}[2J${ESC}]0;pwned\u0007\u009b31m`;
  const s = snapshot({
    routes: [row(evil, 1, 0, 0.001)],
    failing: [recent(evil, 500, 0.001, { method: `G${ESC}T` })],
  });
  const text = render(view(s), { width: 100, height: Infinity, color: false }).join('\n');
  // eslint-disable-next-line no-control-regex
  assert.equal(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), false, 'no control character but newlines');
  assert.ok(text.includes('/x?[2J?]0;pwned??31m'), 'shown, defanged');
});

test('before the first snapshot, and when the agent cannot be reached', () => {
  const waiting = render({ source: '127.0.0.1:8687', sort: 'rate' }, { width: 80, height: 24, color: false });
  assert.match(waiting.join('\n'), /connecting to 127\.0\.0\.1:8687/);
  assert.equal(waiting.length, 24);
  const failed = render(
    {
      source: '127.0.0.1:8687',
      sort: 'rate',
      snapshot: snapshot(),
      error: 'cannot read 127.0.0.1:8687: ECONNREFUSED (retrying)',
    },
    { width: 80, height: 24, color: false },
  );
  assert.match(
    failed[1],
    /^! cannot read 127\.0\.0\.1:8687: ECONNREFUSED/,
    'the error under the title, the last figures kept',
  );
  assert.ok(failed.some((l) => l.startsWith('ROUTE')));
});

test('numbers in few characters', () => {
  assert.deepEqual([0.00004, 0.00042, 0.0042, 0.042, 0.42, 4.2, 42.25].map(ms), [
    '0.04',
    '0.42',
    '4.20',
    '42.0',
    '420',
    '4200',
    '42.3s',
  ]);
  assert.equal(ms(null), '-');
  assert.deepEqual([0, 0.04, 2.5, 57, 1234, 56789].map(perSecond), ['0', '0.0', '2.5', '57', '1.2k', '57k']);
  assert.equal(sparkline([0, 1, 2, 4, 8, null], 8), '   ▁▂▄█ '.slice(0, 2) + ' ▁▂▄█ ');
  assert.equal(sparkline([1, 1], 4), '  ██', 'left-padded');
});
