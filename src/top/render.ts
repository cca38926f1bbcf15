/**
 * The live view as lines of text, from a snapshot and the view's state: a pure function, so the
 * interactive screen, `--once` and the tests print the same thing. Every line is at most
 * width - 1 columns (the last column is left alone: writing it makes terminals wrap lazily), and
 * with a finite height the lines are exactly that many, the keys on the last one.
 */
import type { LiveSnapshot, RouteRow } from '../output/live/snapshot';
import type { RecentRequest } from '../output/live/recent';
import { age, clean, clock, count, fit, mebibytes, ms, percent, perSecond, sparkline } from './format';
import { Table, type Column, type Paint } from './table';

export type SortKey = 'rate' | 'errors' | 'p99';
/** The keys that sort the table, as the screen shows them. */
export const SORT_KEYS: Readonly<Record<string, SortKey>> = { r: 'rate', e: 'errors', p: 'p99' };

export interface ViewState {
  /** where the snapshot comes from, as shown in the title */
  source: string;
  sort: SortKey;
  snapshot?: LiveSnapshot;
  /** the last fetch failed: why (the last snapshot, if any, is still shown) */
  error?: string;
}

export interface ScreenSize {
  width: number;
  /** Infinity: every row (--once) */
  height: number;
  color: boolean;
}

const SGR = {
  bold: '1',
  dim: '2',
  inverse: '7',
  red: '31',
  green: '32',
  yellow: '33',
  cyan: '36',
} as const;

const HISTORY_WIDTH = 60;

export function render(state: ViewState, size: ScreenSize): string[] {
  const width = Math.max(20, size.width) - 1;
  return layout(state, size, width).map((line) => cut(line, width));
}

function layout(state: ViewState, size: ScreenSize, width: number): string[] {
  const paint: Paint = size.color ? (t, sgr) => (sgr === undefined ? t : `\x1b[${sgr}m${t}\x1b[0m`) : (t) => t;
  const s = state.snapshot;
  const top: string[] = [title(state, width, paint)];
  if (state.error !== undefined) top.push(paint(fit(`! ${clean(state.error)}`, width).trimEnd(), SGR.red));
  if (s === undefined) {
    if (state.error === undefined) top.push(fit(`connecting to ${state.source} …`, width).trimEnd());
    return frame(top, [], [keys(state, width, paint)], size.height);
  }
  top.push(...summary(s, paint));
  top.push(...history(s, width, paint));

  const pods = s.scope === 'host' || s.routes.some((r) => r.pod !== undefined);
  const routes = routeTable(pods, width);
  const recent = recentTable(pods, s.time, width);
  const rows = sortRows(s.routes, state.sort);
  const bottom = [agentLine(s, width, paint), keys(state, width, paint)];

  const [showRoutes, showSlow, showFail] = share(
    size.height - top.length - 3 - bottom.length,
    rows.length,
    s.slowest.length,
    s.failing.length,
  );
  const sorted = SORT_COLUMN[state.sort];
  const middle: string[] = [routes.header(paint, SGR.bold, (c) => (c.title === sorted ? `${c.title}▼` : c.title))];
  for (const r of rows.slice(0, showRoutes)) middle.push(routes.row(r, paint));
  // The recent lists' first column is titled with the list's name.
  const listHeader = (name: string) =>
    recent.header(paint, SGR.bold, (c) => (c === recent.columns[0] ? name : c.title));
  middle.push(listHeader('SLOWEST'));
  for (const r of s.slowest.slice(0, showSlow)) middle.push(recent.row(r, paint));
  middle.push(listHeader('FAILING'));
  for (const r of s.failing.slice(0, showFail)) middle.push(recent.row(r, paint));
  return frame(top, middle, bottom, size.height);
}

/**
 * Rows for the table and the two recent lists when they do not all fit: the table gets at least
 * half, each list at least one row, then the failing and the slowest share the rest.
 */
function share(avail: number, routes: number, slow: number, fail: number): [number, number, number] {
  if (routes + slow + fail <= avail) return [routes, slow, fail];
  const reserve = Math.min(slow, 1) + Math.min(fail, 1);
  const r = Math.max(0, Math.min(routes, Math.max(Math.ceil(avail / 2), avail - reserve)));
  const left = Math.max(0, avail - r);
  const firstFail = Math.min(fail, left, Math.max(1, Math.floor(left / 2)));
  const s = Math.min(slow, left - firstFail);
  return [r, s, Math.min(fail, left - s)];
}

/** Top, then the middle, then the bottom lines at the screen's foot; blank lines between when there is room. */
function frame(top: string[], middle: string[], bottom: string[], height: number): string[] {
  if (!Number.isFinite(height)) return [...top, '', ...middle, '', ...bottom];
  const lines = [...top];
  const spare = height - top.length - middle.length - bottom.length;
  if (spare >= 2 && middle.length > 0) lines.push('');
  lines.push(...middle);
  const out = lines.slice(0, Math.max(0, height - bottom.length));
  while (out.length < height - bottom.length) out.push('');
  out.push(...bottom.slice(Math.max(0, bottom.length - height)));
  return out;
}

function title(state: ViewState, width: number, paint: Paint): string {
  const s = state.snapshot;
  const left = ['kong-watcher top', state.source];
  if (s !== undefined) {
    const n = s.agent.kongProcesses;
    left.push(`${n} Kong process${n === 1 ? '' : 'es'}`, `last ${Math.round(s.windowSeconds)} s`);
  }
  const right = s === undefined ? '' : clock(s.time);
  const text = left.join(' · ');
  const line = text.length + right.length + 1 <= width ? text.padEnd(width - right.length) + right : fit(text, width);
  return paint(line, SGR.inverse);
}

function summary(s: LiveSnapshot, paint: Paint): string[] {
  const t = s.totals;
  const red = (v: number, text: string) => paint(text, v > 0 ? SGR.red : undefined);
  const total = s.total;
  const line = (label: string, l: { p50: number | null; p95: number | null; p99: number | null }) =>
    `${label.padEnd(9)} p50 ${ms(l.p50).padStart(5)} ms  p95 ${ms(l.p95).padStart(5)} ms  p99 ${ms(l.p99).padStart(5)} ms`;
  const share = (v: number | null) => (v === null ? '' : `  ${percent(v)} of the time`);
  return [
    `${'Requests'.padEnd(9)} ${perSecond(t.rate)}/s  errors ${red(t.errorRate, `${perSecond(t.errorRate)}/s`)} (${percent(t.errorRatio)})` +
      `  in flight ${count(t.inFlight)}  retries ${perSecond(t.retryRate)}/s`,
    `${'Total'.padEnd(9)} ${count(total.requests)} requests  ${red(total.errors, `${count(total.errors)} errors`)}:` +
      ` 4xx ${count(total.status4xx)}, 5xx ${count(total.status5xx)}, no response ${count(total.noResponse)}`,
    line('Duration', t.duration),
    line('Kong', t.kong) + share(t.kongShare),
    line('Upstream', t.upstream) + share(t.upstreamShare),
  ];
}

function history(s: LiveSnapshot, width: number, paint: Paint): string[] {
  const h = s.history;
  const bars = Math.max(0, Math.min(HISTORY_WIDTH, width - 9 - 12));
  const last = <T>(a: T[]): T | undefined => a[a.length - 1];
  const row = (label: string, values: (number | null)[], now: string, sgr: string) =>
    `${label.padEnd(8)} ${paint(sparkline(values, bars), sgr)}  ${now}`;
  return [
    row('rate', h.rate, `${perSecond(last(h.rate) ?? 0)}/s`, SGR.green),
    row('errors', h.errorRate, `${perSecond(last(h.errorRate) ?? 0)}/s`, SGR.red),
    row('p99', h.p99, `${ms(last(h.p99) ?? null)} ms`, SGR.yellow),
  ];
}

const SORT_COLUMN: Record<SortKey, string> = { rate: 'REQ/S', errors: 'ERR%', p99: 'P99ms' };

function routeTable(pods: boolean, width: number): Table<RouteRow> {
  const cols: Column<RouteRow>[] = [];
  if (pods) cols.push({ title: 'POD', width: 16, cell: (r) => clean(r.pod ?? '-') });
  const errorRed = (r: RouteRow) => (r.window.errorRate > 0 ? SGR.red : undefined);
  cols.push(
    { title: 'ROUTE', width: 12, flex: true, cell: routeLabel },
    { title: 'SERVICE', width: 16, drop: 5, cell: (r) => clean(r.service ?? '-') },
    { title: 'REQ/S', width: 6, align: 'right', cell: (r) => perSecond(r.window.rate) },
    { title: 'ERR%', width: 5, align: 'right', cell: (r) => percent(r.window.errorRatio), color: errorRed },
    { title: 'P50ms', width: 6, align: 'right', cell: (r) => ms(r.window.duration.p50) },
    { title: 'P99ms', width: 6, align: 'right', cell: (r) => ms(r.window.duration.p99) },
    { title: 'KONGms', width: 6, align: 'right', cell: (r) => ms(r.window.kong.p50) },
    { title: 'UPSms', width: 6, align: 'right', cell: (r) => ms(r.window.upstream.p50) },
    { title: 'RETRY/S', width: 7, align: 'right', drop: 3, cell: (r) => perSecond(r.window.retryRate) },
    { title: 'REQS', width: 7, align: 'right', drop: 1, cell: (r) => count(r.total.requests) },
    { title: 'ERRS', width: 6, align: 'right', drop: 4, cell: (r) => count(r.total.errors) },
  );
  return new Table(cols, width);
}

function routeLabel(r: RouteRow): string {
  if (r.overflow) return '(overflow)';
  return clean(r.route ?? r.routeName ?? '(no route)');
}

function recentTable(pods: boolean, now: number, width: number): Table<RecentRequest> {
  const cols: Column<RecentRequest>[] = [{ title: 'METHOD', width: 7, cell: (r) => clean(r.method) }];
  if (pods) cols.push({ title: 'POD', width: 16, drop: 2, cell: (r) => clean(r.pod ?? '-') });
  cols.push(
    { title: 'PATH', width: 12, flex: true, cell: (r) => clean(r.target) },
    {
      title: 'STATUS',
      width: 6,
      align: 'right',
      cell: (r) => (r.status > 0 ? String(r.status) : 'none'),
      color: (r) => (r.status >= 500 || r.status === 0 ? SGR.red : r.status >= 400 ? SGR.yellow : undefined),
    },
    { title: 'MS', width: 6, align: 'right', cell: (r) => ms(r.durationS) },
    { title: 'AGE', width: 4, align: 'right', drop: 3, cell: (r) => age(now - r.time) },
    { title: 'TRACE ID', width: 32, cell: (r) => r.traceId, color: (r) => (r.sampled ? SGR.cyan : SGR.dim) },
  );
  return new Table(cols, width);
}

function sortRows(rows: RouteRow[], key: SortKey): RouteRow[] {
  // Ties: the same figure since start, then the rate.
  const keyOf = (r: RouteRow): number[] =>
    key === 'rate'
      ? [r.window.rate, r.total.requests]
      : key === 'errors'
        ? [r.window.errorRate, r.total.errors, r.window.rate]
        : [r.window.duration.p99 ?? -1, r.window.rate];
  return [...rows].sort((a, b) => {
    const ka = keyOf(a);
    const kb = keyOf(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return kb[i] - ka[i];
    return routeLabel(a).localeCompare(routeLabel(b));
  });
}

function agentLine(s: LiveSnapshot, width: number, paint: Paint): string {
  const a = s.agent;
  const exportState = a.export.state === 'failing' ? 'FAILING' : a.export.state;
  // [text, in red]: whole parts, as many as fit.
  const parts: [string, boolean][] = [
    ['Agent    ', false],
    [`lost ${count(a.lostEvents)}`, a.lostEventsInWindow > 0],
    [`ring ${percent(a.ringFill)}`, false],
    [`spans dropped ${count(a.spansDropped)}`, a.spansDroppedInWindow > 0],
    [`export ${exportState}`, a.export.state === 'failing'],
    [`cpu ${a.cpuPercent.toFixed(1)}%`, false],
    [`rss ${mebibytes(a.rssBytes)}`, false],
    [`${perSecond(a.eventsPerSecond)} events/s`, false],
  ];
  let used = 0;
  const shown: string[] = [];
  for (const [text, bad] of parts) {
    const sep = shown.length === 0 ? 0 : shown.length === 1 ? 1 : 2;
    if (used + sep + text.length > width) break;
    used += sep + text.length;
    shown.push(paint(text, bad ? SGR.red : undefined));
  }
  return shown.length < 2 ? shown.join('') : `${shown[0]} ${shown.slice(1).join('  ')}`;
}

function keys(state: ViewState, width: number, paint: Paint): string {
  const key = (k: string, rest: string, on: boolean) => `${paint(`[${k}]`, on ? SGR.inverse : SGR.bold)}${rest}`;
  const left =
    `${key('r', 'ate', state.sort === 'rate')}  ${key('e', 'rrors', state.sort === 'errors')}  ` +
    `${key('p', '99', state.sort === 'p99')}  ${key('q', 'uit', false)}`;
  const right = `sort: ${state.sort}`;
  const plainLeft = '[r]ate  [e]rrors  [p]99  [q]uit';
  const gap = width - plainLeft.length - right.length;
  return gap >= 2 ? `${left}${' '.repeat(gap)}${right}` : left;
}

/** Cuts a line that may hold colour codes to `width` visible columns; the codes after the cut stay (they close colours). */
function cut(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible === width) continue;
    out += line[i];
    visible++;
  }
  return out.trimEnd();
}
