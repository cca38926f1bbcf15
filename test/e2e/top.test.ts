/**
 * `kong-watcher top` against the real agent and the Kong-shaped gateway: after mixed traffic,
 * `top --once` totals and per-route counts equal nginx's access log; then the interactive view
 * runs in tmux as a person would use it: keys sort, the window is resized, q and Ctrl-C give the
 * terminal back, NO_COLOR turns colour off.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readAccessLog, type AccessLogEntry } from '../fixture/access-log';
import { startAgent, type AgentProcess } from '../fixture/agent-process';
import { fixtureRoutes, startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { runMixedTraffic, type TrafficSummary } from '../fixture/traffic';

const PROXY_PORT = 19170;
const ADMIN_PORT = 19171;
const UPSTREAM_PORT = 19172;
const TOP_PORT = 19175;
const TOP_URL = `http://127.0.0.1:${TOP_PORT}`;
const CLI = path.join(__dirname, '..', '..', 'src', 'cli.ts');
const TMUX_SOCKET = `kw-top-e2e-${process.pid}`;
const TRACE_ID = /\b[0-9a-f]{32}\b/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function snapshotTotal(): Promise<number> {
  return new Promise((resolve) => {
    http
      .get(`${TOP_URL}/snapshot`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve((JSON.parse(body) as { total: { requests: number } }).total.requests));
      })
      .on('error', () => resolve(-1));
  });
}

/** The route Kong's router gives a request target: the longest matching path prefix, as the fixture's router. */
function routeOf(target: string, routes: { paths: string[] }[]): string {
  const p = target.split('?')[0];
  let best = '';
  for (const r of routes)
    for (const prefix of r.paths) if (p.startsWith(prefix) && prefix.length > best.length) best = prefix;
  return best || '(no route)';
}

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', TMUX_SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
}

/** The screen as a person sees it: one string per terminal row. */
function screen(target: string, escapes = false): string[] {
  return tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', target)
    .replace(/\n$/, '')
    .split('\n');
}

async function waitScreen(
  target: string,
  what: string,
  ok: (rows: string[]) => boolean,
  timeoutMs = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let rows: string[] = [];
  while (Date.now() < deadline) {
    rows = screen(target);
    if (ok(rows)) return rows;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}; the screen:\n${rows.join('\n')}`);
}

/** The shell has printed the exit code and `stty -a` (its local modes line names icanon or -icanon). */
const stty = (rows: string[]) =>
  rows.some((l) => l.startsWith('TOP_EXIT=')) && rows.some((l) => /(^|\s)-?icanon(\s|$)/.test(l));

/** The route labels of the view's table, top to bottom. */
function tableRoutes(rows: string[]): string[] {
  const start = rows.findIndex((l) => l.startsWith('ROUTE'));
  const end = rows.findIndex((l) => l.startsWith('SLOWEST'));
  return start < 0 || end < 0 ? [] : rows.slice(start + 1, end).map((l) => l.split(/\s+/)[0]);
}

/** Keep-alive requests on one path pattern, paced, until stopped. */
function loop(pathOf: (n: number) => string, pauseMs: number): () => Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let running = true;
  const run = (async () => {
    const until = Date.now() + 180_000; // bounded, whatever happens to the test
    for (let n = 1; running && Date.now() < until; n++) {
      await new Promise<void>((resolve) => {
        http
          .get({ host: '127.0.0.1', port: PROXY_PORT, path: pathOf(n), agent, timeout: 10_000 }, (res) => {
            res.resume();
            res.on('end', resolve);
            res.on('error', () => resolve());
          })
          .on('error', () => resolve());
      });
      await sleep(pauseMs);
    }
  })();
  return async () => {
    running = false;
    await run;
    agent.destroy();
  };
}

describe('kong-watcher top: the live view of the running agent', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let agent: AgentProcess;
  let traffic: TrafficSummary;
  let access: AccessLogEntry[];
  const stops: (() => Promise<void>)[] = [];

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 2,
    });
    agent = startAgent({
      KONG_PREFIX: gateway.prefix,
      KONG_ADMIN_URL: `http://127.0.0.1:${ADMIN_PORT}`,
      TOP_PORT: String(TOP_PORT),
      STATS_INTERVAL: '0',
    });
    await agent.waitForMonitored(gateway.workerPids());
    await agent.waitFor((l) => l.msg === 'Kong routes loaded from the Admin API', 20_000, 'routes from the Admin API');
    traffic = await runMixedTraffic({ port: PROXY_PORT, concurrency: 40, requests: 600, burst: 60, seed: 17 });
    // Every request nginx logged is counted once the agent has seen its end.
    const deadline = Date.now() + 30_000;
    let stable = 0;
    while (Date.now() < deadline && stable < 3) {
      await sleep(500);
      access = readAccessLog(gateway.accessLogPath);
      stable = (await snapshotTotal()) === access.length ? stable + 1 : 0;
    }
    access = readAccessLog(gateway.accessLogPath);
  });

  after(async () => {
    try {
      tmux('kill-server');
    } catch {
      // no server left
    }
    // tmux leaves its socket behind.
    const dir = path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`);
    fs.rmSync(path.join(dir, TMUX_SOCKET), { force: true });
    for (const stop of stops) await stop();
    agent?.saveOutput('top');
    await agent?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('top --once: totals and per-route counts equal the access log', async () => {
    assert.equal(traffic.errors.length, 0, `traffic errors: ${traffic.errors.slice(0, 5).join('; ')}`);
    assert.ok(access.length >= 500, `${access.length} requests logged`);
    const r = await cli(['top', '--once', '--url', TOP_URL], { COLUMNS: '160' });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout;
    assert.equal(out.includes('\x1b'), false, 'plain text');

    const errors = access.filter((e) => e.status >= 400);
    const total = /^Total +(\d+) requests {2}(\d+) errors: 4xx (\d+), 5xx (\d+), no response (\d+)$/m.exec(out);
    assert.ok(total, `a totals line in:\n${out}`);
    assert.deepEqual(
      total.slice(1, 5).map(Number),
      [
        access.length,
        errors.length,
        access.filter((e) => e.status >= 400 && e.status < 500).length,
        access.filter((e) => e.status >= 500).length,
      ],
      'requests, errors, 4xx, 5xx as nginx logged them',
    );

    const routes = fixtureRoutes(UPSTREAM_PORT);
    const expected = new Map<string, [number, number]>();
    for (const e of access) {
      const key = e.method === '' ? '(no route)' : routeOf(e.target, routes);
      const [n, err] = expected.get(key) ?? [0, 0];
      expected.set(key, [n + 1, err + (e.status >= 400 ? 1 : 0)]);
    }
    const lines = out.split('\n');
    const header = lines.find((l) => l.startsWith('ROUTE')) ?? '';
    assert.ok(header.includes('SERVICE') && header.endsWith('REQS   ERRS'), `a wide table: ${header}`);
    const serviceAt = header.indexOf('SERVICE');
    const shown = new Map<string, [number, number]>();
    for (const l of lines.slice(
      lines.indexOf(header) + 1,
      lines.findIndex((x) => x.startsWith('SLOWEST')),
    )) {
      const cells = l.trim().split(/\s+/);
      shown.set(l.slice(0, serviceAt).trim(), [Number(cells[cells.length - 2]), Number(cells[cells.length - 1])]);
    }
    assert.deepEqual(
      [...shown.entries()].sort(),
      [...expected.entries()].sort(),
      'per route: [requests, errors] as in the access log',
    );

    // The slowest request shown is the slowest nginx logged (ms resolution, and nginx's cached clock).
    const slowest = lines[lines.findIndex((l) => l.startsWith('SLOWEST')) + 1];
    const slowestMs = Number(slowest.trim().split(/\s+/).at(-3));
    const maxMs = Math.max(...access.map((e) => e.requestTime * 1000));
    assert.ok(Math.abs(slowestMs - maxMs) <= 5, `slowest shown ${slowestMs} ms, nginx's slowest ${maxMs} ms`);
    // A failing request's trace id is the one in the agent's request line for it.
    const failing = lines[lines.findIndex((l) => l.startsWith('FAILING')) + 1];
    const traceId = TRACE_ID.exec(failing)?.[0];
    const line = agent.requests('server').find((l) => l.trace_id === traceId);
    assert.ok(line, `the request line of ${traceId}: ${failing}`);
    assert.ok(Number(line.status_code) >= 400 || Number(line.status_code) === 0, 'it failed');
    assert.ok(failing.includes(String(line.path).slice(0, 20)), `its path: ${failing} vs ${String(line.path)}`);
  });

  it('in a terminal: sorts by key, fits a resized window, and gives the terminal back on q', async () => {
    stops.push(
      loop((n) => `/api/tmux/${n}`, 40),
      loop((n) => `/fail/tmux/${n}?apikey=s3cr3t`, 150),
      loop((n) => `/svc/slow?ms=60&n=${n}`, 300),
    );
    const run = `env -u NO_COLOR ${process.execPath} --import tsx ${CLI} top --url ${TOP_URL}; echo TOP_EXIT=$?; stty -a; sleep 600`;
    tmux('new-session', '-d', '-s', 'top', '-x', '100', '-y', '32', run);
    // The three loops' routes have requests within the window (the rest of the table is idle).
    const active = (rows: string[]) =>
      rows.filter((l) => /^\/(api|fail|svc) /.test(l) && !/ 0 +- /.test(l)).map((l) => l.split(' ')[0]);
    const view = (rows: string[]) => ['/api', '/fail', '/svc'].every((r) => active(rows).includes(r));
    let rows = await waitScreen('top', 'the view with the three routes', view);
    assert.equal(rows.length, 32, 'the whole terminal');
    assert.match(rows[0], /^kong-watcher top · 127\.0\.0\.1:19175 · 3 Kong processes · last \d+ s +\d\d:\d\d:\d\d$/);
    assert.match(rows.join('\n'), /^Requests +\d+\/s {2}errors \d/m);
    assert.match(rows.join('\n'), /^Duration +p50 +[\d.]+ ms {2}p95/m);
    assert.match(rows.join('\n'), /^rate +[ ▁▂▃▄▅▆▇█]+ +\d/m, 'a sparkline');
    assert.match(rows.join('\n'), /^Agent +lost 0 /m);
    assert.match(rows[31], /^\[r\]ate {2}\[e\]rrors {2}\[p\]99 {2}\[q\]uit +sort: rate$/, 'keys on the last row');
    assert.equal(tableRoutes(rows)[0], '/api', 'busiest first');

    const colored = screen('top', true).join('\n');
    assert.ok(colored.includes('\x1b[7m'), 'an inverse title bar');
    assert.ok(colored.includes('\x1b[31m'), 'errors in red');

    tmux('send-keys', '-t', 'top', 'e');
    rows = await waitScreen(
      'top',
      'sorted by errors',
      (r) => r[31]?.endsWith('sort: errors') && tableRoutes(r)[0] === '/fail',
    );
    assert.ok(rows.find((l) => l.startsWith('ROUTE'))!.includes('ERR%▼'));
    tmux('send-keys', '-t', 'top', 'p');
    rows = await waitScreen(
      'top',
      'sorted by p99',
      (r) => r[31]?.endsWith('sort: p99') && tableRoutes(r)[0] === '/svc',
    );

    const text = rows.join('\n');
    assert.equal(text.includes('s3cr3t'), false, 'no credential on screen');
    const failing = rows
      .slice(rows.findIndex((l) => l.startsWith('FAILING')) + 1)
      .find((l) => l.includes('/fail/tmux/'));
    assert.ok(
      failing && /\?apikey=RED/.test(failing) && / 500 /.test(failing),
      `a failing request, redacted: ${failing}`,
    );
    const traceId = TRACE_ID.exec(failing)![0];
    await agent.waitFor((l) => l.trace_id === traceId, 5000, `the request line of ${traceId}`);
    const line = agent.requests('server').find((l) => l.trace_id === traceId)!;
    assert.ok(
      String(line.path).startsWith('/fail/tmux/') && line.status_code === 500,
      'the id pastes into a trace search',
    );
    // The slowest of the last minute: the mixed traffic's, or the 60 ms /svc/slow calls.
    const slow = rows[rows.findIndex((l) => l.startsWith('SLOWEST')) + 1];
    assert.ok(TRACE_ID.test(slow) && Number(slow.trim().split(/\s+/).at(-3)) >= 60, `the slowest: ${slow}`);

    for (const [width, height] of [
      [80, 24],
      [60, 20],
    ]) {
      tmux('resize-window', '-t', 'top', '-x', String(width), '-y', String(height));
      rows = await waitScreen(
        'top',
        `the view redrawn at ${width}x${height}`,
        (r) => r.length === height && r[height - 1].includes('sort: p99') && r.some((l) => l.startsWith('ROUTE')),
      );
      for (const l of rows) assert.ok(l.length <= width - 1, `${width}x${height}: "${l}" does not fit`);
      const header = rows.find((l) => l.startsWith('ROUTE'))!;
      assert.ok(header.includes('P99ms▼') && header.includes('REQ/S'), `${width}: ${header}`);
      assert.equal(header.includes('SERVICE'), false, `${width}: the service column dropped`);
      assert.equal(header.includes('REQS'), width >= 80, `${width}: REQS only where it fits`);
      assert.equal(tableRoutes(rows)[0], '/svc', 'still sorted');
      const slowAt = rows.findIndex((l) => l.startsWith('SLOWEST'));
      const failAt = rows.findIndex((l) => l.startsWith('FAILING'));
      assert.ok(slowAt > 0 && failAt > slowAt + 1 && rows[failAt + 1].startsWith('GET'), 'both lists keep a row');
    }

    tmux('send-keys', '-t', 'top', 'q');
    rows = await waitScreen('top', 'the shell after q, and stty', stty);
    assert.ok(rows.includes('TOP_EXIT=0'), 'exit 0');
    assert.equal(
      rows.some((l) => l.startsWith('ROUTE') || l.startsWith('kong-watcher top')),
      false,
      'the view is gone',
    );
    assert.equal(
      tmux('display-message', '-p', '-t', 'top', '#{alternate_on} #{cursor_flag}').trim(),
      '0 1',
      'main screen, cursor shown',
    );
    const modes = rows.join(' ');
    assert.match(modes, /(^|\s)icanon(\s|$)/, 'canonical mode back');
    assert.match(modes, /(^|\s)echo(\s|$)/, 'echo back');
  });

  it('NO_COLOR: no colour at all; Ctrl-C gives the terminal back', async () => {
    const run = `env NO_COLOR=1 ${process.execPath} --import tsx ${CLI} top --url ${TOP_URL}; echo TOP_EXIT=$?; stty -a; sleep 600`;
    tmux('new-session', '-d', '-s', 'plain', '-x', '80', '-y', '24', run);
    await waitScreen('plain', 'the view', (r) => tableRoutes(r).length > 0 && r[23]?.includes('[q]uit'));
    const escapes = screen('plain', true).join('\n');
    // eslint-disable-next-line no-control-regex
    assert.equal(/\x1b\[[0-9;]*m/.test(escapes), false, `no colour: ${JSON.stringify(escapes.slice(0, 200))}`);
    tmux('send-keys', '-t', 'plain', 'C-c');
    const rows = await waitScreen('plain', 'the shell after Ctrl-C, and stty', stty);
    assert.ok(rows.includes('TOP_EXIT=0'));
    assert.equal(tmux('display-message', '-p', '-t', 'plain', '#{alternate_on} #{cursor_flag}').trim(), '0 1');
    assert.match(rows.join(' '), /(^|\s)icanon(\s|$)/, 'canonical mode back');
  });
});
