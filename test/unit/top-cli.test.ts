/**
 * `kong-watcher top` as a command, and the agent's endpoint it reads: TOP_PORT and TOP_ADDRESS,
 * the snapshot server (localhost by default), --once against a running agent (a fake capture),
 * the errors a person gets when nothing answers, and --help.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent';
import type { CaptureOptions, CaptureStats, NativeCapture } from '../../src/capture/native';
import { Method } from '../../src/capture/exchange-layout';
import { createClock } from '../../src/clock';
import { ConfigError, loadConfig } from '../../src/config';
import { Logger } from '../../src/log';
import { startLiveServer } from '../../src/output/live';
import type { LiveSnapshot } from '../../src/output/live/snapshot';
import { defaultUrl, fetchSnapshot, snapshotUrl } from '../../src/top/client';
import { FRAME_BASE_NS, frameBatch, serverSpec } from './helpers/frames';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.ts');
// 19170-19179 belong to the live view's tests (test/e2e/top.test.ts uses 19170-19175).
const SERVER_PORT = 19177;
const AGENT_PORT = 19178;
const NOTHING_PORT = 19179;

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function get(port: number, p: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .request({ host: '127.0.0.1', port, path: p, method, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject)
      .end();
  });
}

test('TOP_PORT and TOP_ADDRESS: 8687 on 127.0.0.1 by default, 0 turns it off', () => {
  const c = loadConfig({});
  assert.equal(c.topPort, 8687);
  assert.equal(c.topAddress, '127.0.0.1', 'not for the network unless asked');
  assert.equal(loadConfig({ TOP_PORT: '0' }).topPort, 0);
  assert.throws(() => loadConfig({ TOP_PORT: '70000' }), ConfigError);
});

test("the client finds the agent's endpoint from the same variables", () => {
  assert.equal(defaultUrl({}), 'http://127.0.0.1:8687');
  assert.equal(defaultUrl({ TOP_PORT: '9000' }), 'http://127.0.0.1:9000');
  assert.equal(
    defaultUrl({ TOP_ADDRESS: '0.0.0.0', TOP_PORT: '9000' }),
    'http://127.0.0.1:9000',
    'any address: loopback',
  );
  assert.equal(defaultUrl({ TOP_ADDRESS: '::1' }), 'http://[::1]:8687');
  assert.equal(snapshotUrl('http://127.0.0.1:8687').href, 'http://127.0.0.1:8687/snapshot');
  assert.equal(snapshotUrl('127.0.0.1:8687/').href, 'http://127.0.0.1:8687/snapshot');
  assert.equal(snapshotUrl('http://h:1/snapshot').href, 'http://h:1/snapshot');
  assert.throws(() => snapshotUrl('https://h:1'), /only http/);
});

test('the snapshot server: GET /snapshot as JSON, nothing else', async () => {
  let asked = 0;
  const server = await startLiveServer('127.0.0.1', SERVER_PORT, () => {
    asked++;
    return { version: 1, time: 1 } as LiveSnapshot;
  });
  try {
    const ok = await get(SERVER_PORT, '/snapshot');
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { version: 1, time: 1 });
    assert.equal(asked, 1, 'computed when asked');
    assert.equal((await get(SERVER_PORT, '/')).status, 404);
    assert.equal((await get(SERVER_PORT, '/snapshot', 'POST')).status, 405);
    assert.equal((await fetchSnapshot(snapshotUrl(`http://127.0.0.1:${SERVER_PORT}`))).time, 1);
  } finally {
    server.close();
  }
});

test('top --once when nothing answers: exit 1 and what to check', async () => {
  const r = await cli(['top', '--once', '--url', `http://127.0.0.1:${NOTHING_PORT}`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot read http:\/\/127\.0\.0\.1:19179\/snapshot: ECONNREFUSED\. Is the agent running/);
  assert.equal(r.stdout, '');
  const bad = await cli(['top', '--frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown argument --frobnicate/);
});

test('--help lists top; top --help explains it', async () => {
  const help = await cli(['--help']);
  assert.match(help.stdout, /kong-watcher top \[--once\] \[--url URL\]/);
  const top = await cli(['top', '--help'], { TOP_PORT: '9100' });
  assert.equal(top.code, 0);
  assert.match(top.stdout, /--once +print one plain-text snapshot/);
  assert.match(top.stdout, /default http:\/\/127\.0\.0\.1:9100/, 'the default follows TOP_PORT');
  assert.match(top.stdout, /q \(or Ctrl-C\) quits/);
  assert.match(top.stdout, /NO_COLOR/);
});

/** Just enough of the addon: the test hands batches to onBatch itself. */
class FakeCapture implements NativeCapture {
  constructor(readonly options: CaptureOptions) {}
  start(): void {}
  addProcess(): void {}
  removeProcess(): void {}
  attachUprobes(): never {
    throw new Error('none');
  }
  detachUprobes(): void {}
  inject(): void {}
  stats(): CaptureStats {
    const activeServer = new Array(Method.Max * 2).fill(0);
    activeServer[Method.Get * 2] = 4;
    return {
      lost: 2,
      ringUsedBytes: 1024,
      ringSizeBytes: 4096,
      assembler: { records: 10, activeServer },
    } as unknown as CaptureStats;
  }
  stop(done?: () => void): void {
    done?.();
  }
}

test('the agent serves its snapshot on TOP_PORT, loopback only; top --once prints it plain', async () => {
  const procfs = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-top-proc-'));
  const config = loadConfig({
    HOST_PROC: procfs,
    HEALTH_PORT: '0',
    STATS_INTERVAL: '0',
    LOG_REQUESTS: 'false',
    TOP_PORT: String(AGENT_PORT),
  });
  let capture: FakeCapture | undefined;
  const agent = new Agent(config, new Logger({ level: 'error', json: true, write: () => undefined }), {
    createCapture: (o) => (capture = new FakeCapture(o)),
    env: {},
    clock: createClock({ monotonicNs: () => FRAME_BASE_NS, measureOffsetNs: () => 0n, refreshIntervalMs: 0 }),
  });
  await agent.start();
  try {
    capture!.options.onBatch(
      frameBatch([
        serverSpec({ path: '/a', status: 200, query: undefined }),
        serverSpec({ path: '/b', status: 503, query: undefined }),
        serverSpec({ path: '/c', status: 404, query: 'token=hunter2' }),
      ]),
      3,
    );
    const s = await fetchSnapshot(snapshotUrl(`http://127.0.0.1:${AGENT_PORT}`));
    assert.equal(s.total.requests, 3);
    assert.equal(s.total.errors, 2);
    assert.equal(s.totals.inFlight, 4, 'in flight from the capture');
    assert.equal(s.agent.lostEvents, 2);
    assert.equal(s.agent.ringFill, 0.25);
    assert.deepEqual(
      s.failing.map((r) => r.target),
      ['/c?token=REDACTED', '/b'],
    );
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    if (external !== undefined) {
      await assert.rejects(
        fetchSnapshot(snapshotUrl(`http://${external}:${AGENT_PORT}`), 1000),
        /ECONNREFUSED/,
        `not reachable on ${external}`,
      );
    }

    const once = await cli(['top', '--once', '--url', `http://127.0.0.1:${AGENT_PORT}`], { NO_COLOR: '' });
    assert.equal(once.code, 0, once.stderr);
    assert.equal(once.stdout.includes('\x1b'), false, 'plain text: no escape sequence');
    assert.match(once.stdout, /^Total +3 requests {2}2 errors: 4xx 1, 5xx 1, no response 0$/m);
    assert.match(once.stdout, /^\(no route\) .* 3 +2$/m, 'one row without routes: 3 requests, 2 errors');
    assert.match(once.stdout, /^GET +\/c\?token=REDACTED +404 /m);
    assert.ok(
      once.stdout.split('\n').every((l) => l.length < 100),
      'plain output is 100 columns wide',
    );
  } finally {
    await agent.stop(1000);
    fs.rmSync(procfs, { recursive: true, force: true });
  }
  await assert.rejects(get(AGENT_PORT, '/snapshot'), /ECONNREFUSED/, 'closed when the agent stops');
});
