/** The agent's wiring, with a fake native capture and a fake procfs: no kernel, no addon. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent';
import type { CaptureOptions, CaptureStats, NativeCapture } from '../../src/capture/native';
import { ErrorCode, Method } from '../../src/capture/exchange-layout';
import { ProcEvent } from '../../src/capture/records';
import { createClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { Logger } from '../../src/log';
import { FRAME_BASE_NS, frameBatch, procFrame, serverSpec, clientSpec } from './helpers/frames';

const KONG_MASTER = 'nginx: master process /usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf';

function addProc(root: string, pid: number, comm: string, ppid: number, cmdline: string): void {
  const dir = path.join(root, String(pid));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'ns'), { recursive: true });
  const fields = ['S', String(ppid), ...Array(17).fill('0'), String(pid * 10), '0', '0'];
  fs.writeFileSync(path.join(dir, 'stat'), `${pid} (${comm}) ${fields.join(' ')}\n`);
  fs.writeFileSync(path.join(dir, 'cmdline'), `${cmdline}\0`);
  fs.symlinkSync('/usr/local/openresty/nginx/sbin/nginx', path.join(dir, 'exe'));
}

class FakeCapture implements NativeCapture {
  readonly added: number[] = [];
  readonly removed: number[] = [];
  started = false;
  stopped = false;
  constructor(readonly options: CaptureOptions) {}
  start(): void {
    this.started = true;
  }
  addProcess(pid: number): void {
    this.added.push(pid);
  }
  removeProcess(pid: number): void {
    this.removed.push(pid);
  }
  attachUprobes(): never {
    throw new Error('no uprobes in this test');
  }
  detachUprobes(): void {}
  inject(): void {}
  stats(): CaptureStats {
    const activeServer = new Array(Method.Max * 2).fill(0);
    return {
      events: 0,
      lost: 0,
      connOpened: 0,
      connClosed: 0,
      connMapFull: 0,
      forksFollowed: 0,
      tlsUnlinked: 0,
      batches: 0,
      ringUsedBytes: 0,
      ringSizeBytes: 4096,
      assembler: {
        records: 5,
        malformedRecords: 0,
        exchanges: 0,
        serverExchanges: 0,
        clientExchanges: 0,
        connections: 0,
        inFlight: 0,
        evicted: 0,
        ignored: 0,
        notHttp: 0,
        protocolErrors: 0,
        skippedBytes: 0,
        lostHeads: 0,
        orphanResponses: 0,
        droppedRequests: 0,
        unmatchedAttempts: 0,
        http2Connections: 0,
        hpackLost: 0,
        processExits: 0,
        activeServer,
      },
    };
  }
  /** As the addon: the last batch (what was in flight, agent_stopped) arrives, then done. */
  stop(done?: () => void): void {
    this.stopped = true;
    setTimeout(() => {
      this.options.onBatch(
        frameBatch([serverSpec({ status: 0, error: ErrorCode.AgentStopped, path: '/last', attempts: 0 })]),
        1,
      );
      done?.();
    }, 30);
  }
}

test('capture options, discovery by PROC frames, batches to the outputs, stop awaited', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-agent-'));
  try {
    addProc(root, 100, 'nginx', 1, KONG_MASTER);
    addProc(root, 101, 'nginx', 100, 'nginx: worker process');
    const config = loadConfig({
      HOST_PROC: root,
      KONG_WATCH_SCOPE: 'host',
      HEALTH_PORT: '0',
      STATS_INTERVAL: '0',
      ENABLE_JSON_LOG: 'true',
      KONG_ADMIN_URL: 'http://127.0.0.1:1/',
      IGNORE_PORTS: '8001,8444',
    });
    const lines: string[] = [];
    const log = new Logger({ level: 'info', json: true, write: (l) => lines.push(l) });
    let capture: FakeCapture | undefined;
    const agent = new Agent(config, log, {
      createCapture: (o) => (capture = new FakeCapture(o)),
      env: {},
      clock: createClock({ monotonicNs: () => FRAME_BASE_NS, measureOffsetNs: () => 0n, refreshIntervalMs: 0 }),
    });
    await agent.start();
    assert.ok(capture?.started, 'capture started');
    assert.equal(capture.options.execComm, 'nginx', 'execs of nginx are reported');
    assert.deepEqual([...capture.options.ignoredLocalPorts!].sort(), [1, 8001, 8444], 'Admin API port ignored too');
    assert.ok(capture.options.maxConnections! > 0, 'assembler bounds');
    assert.deepEqual(capture.added, [100, 101], 'master and worker followed');

    const server = serverSpec({ path: '/hello' });
    capture.options.onBatch(frameBatch([server, clientSpec(server)]), 2);
    log.flush();
    const requests = () =>
      lines
        .flatMap((l) => l.trim().split('\n'))
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'HTTP Request');
    assert.deepEqual(
      requests().map((l) => `${l.direction} ${l.path}`),
      ['server /hello', 'client /hello'],
      'a line per exchange, SERVER first',
    );

    addProc(root, 200, 'nginx', 1, KONG_MASTER.replace('/usr/local/kong', '/srv/kong'));
    capture.options.onBatch(
      frameBatch([procFrame({ event: ProcEvent.Exec, pid: 200 }), procFrame({ event: ProcEvent.Exit, pid: 101 })]),
      2,
    );
    assert.deepEqual(capture.added, [100, 101, 200], 'an exec is checked at once');
    assert.deepEqual(capture.removed, [101], 'an exit is removed at once');

    addProc(root, 300, 'sh', 200, '/bin/sh -c date');
    capture.options.onBatch(
      frameBatch([
        procFrame({ event: ProcEvent.Fork, pid: 300, ppid: 200 }),
        procFrame({ event: ProcEvent.Exec, pid: 300, comm: 'sh' }),
      ]),
      2,
    );
    assert.deepEqual(capture.removed, [101, 300], 'a followed child that execs something else is let go');
    assert.deepEqual(capture.added, [100, 101, 200], 'and never added');

    await agent.stop(1000);
    assert.ok(capture.stopped, 'capture stopped');
    log.flush();
    assert.equal(requests().at(-1)?.path, '/last', 'the batch delivered before done was logged');
    assert.equal(requests().at(-1)?.error_code, 'agent_stopped');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
