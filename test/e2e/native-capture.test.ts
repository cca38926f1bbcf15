/**
 * The native capture on the real kernel and a real Kong-shaped gateway: the addon loads and
 * attaches the BPF programs, the kernel follows Kong's processes from the master alone (forks,
 * exits, execs), the drain thread assembles records into frames laid out as
 * src/capture/exchange-layout.ts says, and every record is either delivered or counted lost.
 * Replay mode runs the same drain thread on injected records, without BPF.
 *
 * Runs alone, as root: node --import tsx --test test/e2e/native-capture.test.ts
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EventType, LuaPhase, MAX_CAPTURE, Direction, Op, ProcEvent } from '../../src/capture/records';
import { ErrorCode } from '../../src/capture/exchange-layout';
import { createCapture, loadNative, type CaptureOptions, type NativeCapture } from '../../src/capture/native';
import { canConnect, startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { isProc, readFrames, type ExchangeView, type FrameView, type ProcView } from '../unit/helpers/frame-reader';
import { batchOf, connCloseRecord, connOpenRecord, dataRecord, TEST_BASE_NS } from '../unit/helpers/records';

const PROXY_PORT = 18481;
const UPSTREAM_PORT = 18482;
const BURST_PORT = 18483;
const LIBC_PORT = 18484;

/** The programs kTracepoints (native/probes.cc) attaches with the default data path. */
const SYSCALL_HOOKS = [
  'kw_recvfrom',
  'kw_readv',
  'kw_sendto',
  'kw_writev',
  'kw_sendfile',
  'kw_accept4',
  'kw_accept',
  'kw_connect',
  'kw_close',
];
const PROCESS_HOOKS = ['kw_proc_fork', 'kw_proc_exit', 'kw_proc_exec'];

const children: ChildProcess[] = [];
const tmpDirs: string[] = [];

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

interface Run {
  capture: NativeCapture;
  frames: FrameView[];
  /** 'batch' per onBatch call and 'done' when stop's callback ran, in arrival order */
  calls: string[];
  logs: string[];
}

const BASE_OPTIONS = {
  ringBufferBytes: 1 << 22,
  captureBytes: MAX_CAPTURE,
  wakeupBytes: 1 << 16,
  pollIntervalMs: 10,
  dataPath: 'syscalls',
  execComm: 'nginx',
  ignoredLocalPorts: [] as number[],
} satisfies Partial<CaptureOptions>;

/** A started capture whose frames are decoded (and checked) as they arrive. */
function open(overrides: Partial<CaptureOptions> = {}): Run {
  const run: Run = { capture: undefined as unknown as NativeCapture, frames: [], calls: [], logs: [] };
  run.capture = createCapture({
    ...BASE_OPTIONS,
    onBatch: (batch, frames) => {
      run.calls.push('batch');
      const got = readFrames(batch);
      assert.equal(got.length, frames, 'onBatch frame count = frames in the batch');
      run.frames.push(...got);
    },
    onLog: (level, message) => run.logs.push(`${level}: ${message}`),
    ...overrides,
  });
  run.capture.start();
  return run;
}

/** stop(done) and wait for done; nothing may reach onBatch after it, and no batch failed to decode. */
async function stop(run: Run): Promise<void> {
  const done = new Promise<void>((resolve) =>
    run.capture.stop(() => {
      run.calls.push('done');
      resolve();
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('stop(done): done never ran')), 15_000);
  });
  await Promise.race([done, timeout]).finally(() => clearTimeout(timer));
  await sleep(100);
  assert.equal(run.calls.filter((c) => c === 'done').length, 1, 'done runs once');
  assert.equal(run.calls.indexOf('done'), run.calls.length - 1, `no batch after done: ${run.calls.join(',')}`);
  const failed = run.logs.filter((l) => l.includes('onBatch threw'));
  assert.deepEqual(failed, [], 'every batch decoded');
}

const procs = (run: Run, event: number): ProcView[] => run.frames.filter(isProc).filter((f) => f.event === event);
const exchanges = (run: Run, direction: 'server' | 'client'): ExchangeView[] =>
  run.frames.filter((f): f is ExchangeView => !isProc(f) && f.direction === direction);

/** Names of the BPF programs this process holds attached (its bpf_link fds). */
function attachedPrograms(): { name: string; linkType: string }[] {
  const ids: { id: number; linkType: string }[] = [];
  for (const fd of fs.readdirSync('/proc/self/fdinfo')) {
    let info: string;
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const linkType = /^link_type:\s+(\S+)/m.exec(info);
    const progId = /^prog_id:\s+(\d+)/m.exec(info);
    if (linkType && progId) ids.push({ id: Number(progId[1]), linkType: linkType[1] });
  }
  const shown = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(shown.status, 0, `bpftool prog show: ${shown.stderr}`);
  const names = new Map((JSON.parse(shown.stdout) as { id: number; name?: string }[]).map((p) => [p.id, p.name ?? '']));
  return ids.map((l) => ({ name: names.get(l.id) ?? `prog ${l.id}`, linkType: l.linkType }));
}

/** GET on a fresh connection (agent: false) or a kept-alive one; resolves with the status. */
function get(port: number, urlPath: string, agent: http.Agent | false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

function workersOf(gateway: Gateway): number[] {
  return gateway.workerPids().sort((a, b) => a - b);
}

describe('native capture: arguments', () => {
  it('throws TypeError for wrong arguments, and Error for calls the capture cannot take', () => {
    const noop = (): void => undefined;
    // The addon's own class: createCapture() wraps the callbacks, so it would hide a missing one.
    const { Capture } = loadNative();
    const make = (o: Record<string, unknown>) => () =>
      new Capture({ ...BASE_OPTIONS, onBatch: noop, onLog: noop, ...o } as unknown as CaptureOptions);
    assert.throws(make({ ringBufferBytes: 5000 }), TypeError, 'ring size not a power of two');
    assert.throws(make({ ringBufferBytes: 2048 }), TypeError, 'ring smaller than a page');
    assert.throws(make({ captureBytes: MAX_CAPTURE + 1 }), TypeError, 'capture over KW_MAX_CAPTURE');
    assert.throws(make({ pollIntervalMs: 0 }), TypeError, 'poll period 0');
    assert.throws(make({ dataPath: 'kprobes' }), TypeError, 'unknown data path');
    assert.throws(make({ execComm: 'a-name-over-15-bytes' }), TypeError, 'execComm longer than a comm');
    assert.throws(make({ execComm: 7 }), TypeError, 'execComm not a string');
    assert.throws(make({ replay: 'yes' }), TypeError, 'replay not a boolean');
    assert.throws(make({ ignoredLocalPorts: [8001, 0] }), TypeError, 'port 0');
    assert.throws(make({ ignoredLocalPorts: 8001 }), TypeError, 'ports not an array');
    assert.throws(make({ maxConnections: -1 }), TypeError, 'negative maxConnections');
    assert.throws(make({ onBatch: undefined }), TypeError, 'no onBatch');

    const run = open({ replay: true });
    const c = run.capture;
    try {
      assert.throws(() => c.addProcess(-1), TypeError, 'negative pid');
      assert.throws(() => c.addProcess('1' as unknown as number), TypeError, 'pid as a string');
      assert.throws(() => c.addProcess(1 << 22), TypeError, 'pid past the bitmap (PID_MAX_LIMIT)');
      assert.throws(() => (c.removeProcess as () => void)(), TypeError, 'removeProcess without a pid');
      assert.throws(() => c.attachUprobes(1, '', {}), TypeError, 'empty binary path');
      assert.throws(() => c.attachUprobes(1, '/usr/sbin/nginx', 'lua' as never), TypeError, 'set not an object');
      assert.throws(() => c.attachUprobes(1, '/usr/sbin/nginx', { lua: 1 as never }), TypeError, 'lua not a boolean');
      assert.throws(() => c.inject('records' as unknown as Buffer), TypeError, 'records not a Buffer');
      assert.throws(() => c.inject(Buffer.from([9, 0, 0, 0, 1])), TypeError, 'a frame longer than the buffer');
      assert.throws(() => c.inject(Buffer.from([1, 0])), TypeError, 'a cut frame size');
      assert.throws(() => c.stop(42 as never), TypeError, 'done not a function');
      assert.throws(() => c.addProcess(1), /no kernel side/, 'replay has no processes to follow');
      assert.throws(() => c.start(), /already started/, 'start twice');
    } finally {
      c.stop();
    }
    assert.throws(() => c.start(), /stopped/, 'no restart after stop');
    assert.throws(() => c.addProcess(1), /stopped/, 'addProcess after stop');
  });
});

describe('native capture on a Kong-shaped gateway', () => {
  let upstream: Upstream;
  let gateway: Gateway;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({ proxyPort: PROXY_PORT, upstreamPort: UPSTREAM_PORT, workers: 2 });
  });

  after(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  it('attaches its hooks, and from the master alone follows a reload, a respawn and every death', async (t) => {
    const run = open();
    let stats: ReturnType<NativeCapture['stats']> | undefined;
    const master = gateway.masterPid();
    const unfollowed = workersOf(gateway);
    let first: number[] = [];
    let second: number[] = [];
    let respawned: number[] = [];
    const requests = 40;
    try {
      const links = attachedPrograms();
      for (const name of SYSCALL_HOOKS) {
        assert.ok(
          links.some((l) => l.name === name && l.linkType === 'perf'),
          `${name} attached to its tracepoint`,
        );
      }
      for (const name of PROCESS_HOOKS) {
        assert.ok(
          links.some((l) => l.name === name && l.linkType === 'raw_tracepoint'),
          `${name} attached as a raw tracepoint`,
        );
      }
      for (const dropped of ['kw_read', 'kw_write', 'kw_recvmsg', 'kw_sendmsg']) {
        assert.ok(!links.some((l) => l.name === dropped), `${dropped} is not a hook any more`);
      }

      run.capture.addProcess(master);
      // Workers forked before their master was added are not followed.
      for (let i = 0; i < 6; i++) assert.equal(await get(PROXY_PORT, `/api/native/unfollowed-${i}`, false), 200);
      await sleep(200);
      assert.equal(run.capture.stats().events, 0, 'no record from workers forked before the master was added');

      await gateway.reload();
      first = workersOf(gateway);
      await waitUntil('the kernel to follow the new workers', 5000, () => run.capture.stats().forksFollowed >= 2);
      const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 2 });
      for (let i = 0; i < requests; i++) {
        const status = await get(PROXY_PORT, `/api/native/followed-${i}`, i % 2 === 0 ? keepAlive : false);
        assert.equal(status, 200, `request ${i}`);
      }
      keepAlive.destroy();

      await gateway.reload();
      second = workersOf(gateway);
      const victim = second[0];
      process.kill(victim, 'SIGKILL');
      await waitUntil('the master to respawn the killed worker', 10_000, () => {
        const now = workersOf(gateway);
        return now.length === 2 && !now.includes(victim);
      });
      respawned = workersOf(gateway).filter((p) => !second.includes(p));
      await waitUntil('the PROC EXIT frame of the killed worker', 5000, () =>
        procs(run, ProcEvent.Exit).some((p) => p.pid === victim),
      ).catch((err: Error) => t.diagnostic(err.message));
      stats = run.capture.stats();
    } finally {
      await stop(run);
    }
    const final = run.capture.stats();
    t.diagnostic(`unfollowed ${unfollowed}, first ${first}, second ${second}, respawned ${respawned}`);
    t.diagnostic(`stats before stop: ${JSON.stringify({ ...stats, assembler: undefined })}`);

    // What the kernel did, from its own counters.
    const forked = [...first, ...second, ...respawned];
    assert.equal(first.length + second.length, 4, 'two generations of two workers');
    assert.equal(respawned.length, 1, 'one respawned worker');
    assert.equal(final.forksFollowed, forked.length, 'every worker forked after addProcess(master), and nothing else');
    assert.equal(final.lost, 0, 'nothing lost in a 4 MiB ring');
    assert.ok(final.connOpened >= requests / 2, `a connection per fresh request at least: ${final.connOpened}`);
    assert.equal(final.assembler.records, final.events, 'every record the kernel wrote reached the assembler');

    // Process events, as frames.
    for (const pid of forked) {
      const fork = procs(run, ProcEvent.Fork).filter((p) => p.pid === pid);
      assert.equal(fork.length, 1, `one PROC FORK for worker ${pid}`);
      assert.equal(fork[0].ppid, master, `worker ${pid} forked by the master`);
      assert.equal(fork[0].comm, 'nginx', 'comm of a worker');
    }
    for (const pid of [...first, second[0]]) {
      assert.equal(
        procs(run, ProcEvent.Exit).filter((p) => p.pid === pid).length,
        1,
        `one PROC EXIT for worker ${pid}`,
      );
    }
    assert.ok(
      run.frames.every((f) => !unfollowed.includes(f.pid)),
      'no frame about a worker forked before the master was added',
    );

    // Exchanges: every proxied request once, from a followed worker, with its upstream attempt.
    const servers = exchanges(run, 'server');
    const clients = exchanges(run, 'client');
    for (let i = 0; i < requests; i++) {
      const mine = servers.filter((s) => s.path === `/api/native/followed-${i}`);
      assert.equal(mine.length, 1, `one SERVER exchange for request ${i}`);
      const s = mine[0];
      assert.equal(s.method, 'GET');
      assert.equal(s.status, 200, `status of request ${i}`);
      assert.equal(s.error, '', `request ${i} ended normally`);
      assert.ok(first.includes(s.pid), `request ${i} served by a first-generation worker (${s.pid})`);
      assert.equal(s.local?.port, PROXY_PORT, 'local port of a SERVER exchange');
      assert.ok(s.startNs > 0 && s.endNs >= s.startNs, 'start and end times');
      const attempt = clients.filter((c) => c.parentId === s.id);
      assert.equal(attempt.length, 1, `one upstream attempt linked to request ${i}`);
      assert.equal(attempt[0].pid, s.pid, 'the attempt comes from the same worker');
      assert.equal(attempt[0].peer?.port, UPSTREAM_PORT, 'the attempt goes to the upstream');
      assert.equal(attempt[0].traceId, s.traceId, 'the attempt shares its trace');
    }
    assert.ok(
      servers.every((s) => !s.path?.includes('unfollowed')),
      'no exchange for requests served before the reload',
    );
  });

  it('stops draining while JS is behind: the ring holds the backlog and the kernel counts the loss', async (t) => {
    const ringBytes = 1 << 18;
    const run = open({ ringBufferBytes: ringBytes, wakeupBytes: 1 << 16 });
    const load = spawn('wrk', ['-t1', '-c4', '-d4s', `http://127.0.0.1:${PROXY_PORT}/api/native/backlog`], {
      stdio: 'ignore',
    });
    children.push(load);
    let atReturn: ReturnType<NativeCapture['stats']> | undefined;
    let burst = 0;
    try {
      run.capture.addProcess(gateway.masterPid());
      for (const pid of workersOf(gateway)) run.capture.addProcess(pid);
      await waitUntil('frames to flow', 5000, () => exchanges(run, 'server').length > 0);
      // JS is busy for 2 s. Consuming on regardless would queue a batch per drain pass (200 of
      // them) in this process; instead the drain thread stops once 16 wait, and the ring fills.
      const busyUntil = Date.now() + 2000;
      while (Date.now() < busyUntil) {
        // busy on purpose
      }
      atReturn = run.capture.stats();
      const before = run.calls.length;
      await new Promise((resolve) => setImmediate(resolve));
      burst = run.calls.length - before;
      await new Promise((resolve) => load.once('exit', resolve));
      await sleep(200);
    } finally {
      await stop(run);
    }
    const final = run.capture.stats();
    t.diagnostic(`when JS came back: ring ${atReturn.ringUsedBytes} of ${ringBytes} bytes used, ${atReturn.lost} lost`);
    t.diagnostic(`batches delivered before the next turn of the event loop: ${burst}; lost in all ${final.lost}`);
    assert.ok(atReturn.lost > 0, 'records were lost while JS was busy: the drain thread had stopped consuming');
    assert.ok(atReturn.ringUsedBytes >= ringBytes / 2, `the ring held the backlog: ${atReturn.ringUsedBytes} bytes`);
    assert.ok(exchanges(run, 'server').length > 0 && final.batches > 0, 'frames flowed again once JS was back');
    assert.equal(final.assembler.records, final.events, 'every record written reached the assembler');
  });

  it('attaches the Lua phase uprobes per worker, and their time reaches the exchanges', async (t) => {
    const run = open();
    const workers = workersOf(gateway);
    const requests = 10;
    try {
      run.capture.addProcess(gateway.masterPid());
      for (const pid of workers) {
        run.capture.addProcess(pid);
        const attach = run.capture.attachUprobes(pid, '/usr/sbin/nginx', { lua: true });
        t.diagnostic(
          `worker ${pid}: attached ${attach.attached.length}, missing ${attach.missing.join('; ') || 'none'}`,
        );
        for (const handler of ['rewrite', 'access', 'log']) {
          assert.ok(
            attach.attached.some(
              (a) => a.startsWith(`ngx_http_lua_${handler}_handler@`) && a.includes('ngx_http_lua_module'),
            ),
            `${handler} handler entry attached in the Lua module: ${attach.attached}`,
          );
          assert.ok(
            attach.attached.some((a) => a.startsWith(`ngx_http_lua_${handler}_handler (return)@`)),
            `${handler} handler return attached`,
          );
        }
      }
      for (let i = 0; i < requests; i++) assert.equal(await get(PROXY_PORT, `/api/native/lua-${i}`, false), 200);
      await sleep(200);
      for (const pid of workers) run.capture.detachUprobes(pid);
      // Removed processes are not followed any more: nothing more comes from them.
      run.capture.removeProcess(gateway.masterPid());
      for (const pid of workers) run.capture.removeProcess(pid);
      await sleep(50);
      const events = run.capture.stats().events;
      for (let i = 0; i < 4; i++) assert.equal(await get(PROXY_PORT, `/api/native/removed-${i}`, false), 200);
      await sleep(200);
      assert.equal(run.capture.stats().events, events, 'no record after removeProcess');
    } finally {
      await stop(run);
    }
    assert.ok(run.capture.stats().events > 0, 'records from the workers');
    assert.ok(
      exchanges(run, 'server').every((e) => !e.path?.includes('removed')),
      'no exchange for requests served after removeProcess',
    );
    for (let i = 0; i < requests; i++) {
      const s = exchanges(run, 'server').find((e) => e.path === `/api/native/lua-${i}`);
      assert.ok(s, `SERVER exchange for Lua request ${i}`);
      assert.ok(s.luaNs[LuaPhase.Rewrite] > 0, `rewrite phase time of request ${i}`);
      assert.ok(s.luaNs[LuaPhase.Access] > 0, `access phase time of request ${i}`);
    }
  });
});

describe('native capture: limits and lifecycle', () => {
  it('counts every record a 4 KiB ring had no room for', async () => {
    const sends = 400;
    const script = [
      'import socket, sys',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(("127.0.0.1", ${BURST_PORT}))`,
      's.listen(8)',
      'print("ready", flush=True)',
      'sys.stdin.readline()',
      'c, _ = s.accept()',
      `for _ in range(${sends}):`,
      '    assert c.send(b"x" * 1000) == 1000',
      'c.close()',
    ].join('\n');
    const server = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(server);
    const exited = new Promise((resolve) => server.once('exit', resolve));
    await new Promise((resolve) => server.stdout!.once('data', resolve));
    // Records of ~1 KiB in a 4 KiB ring: three fit, so the sends overflow it however fast the drain is.
    const run = open({ ringBufferBytes: 4096, captureBytes: 1024, wakeupBytes: 1024 });
    let received = 0;
    try {
      run.capture.addProcess(server.pid!);
      server.stdin!.write('go\n');
      received = await new Promise<number>((resolve, reject) => {
        let n = 0;
        const s = net.connect(BURST_PORT, '127.0.0.1');
        s.on('data', (d) => (n += d.length));
        s.on('error', reject);
        s.on('close', () => resolve(n));
      });
      await exited;
      await sleep(100);
    } finally {
      await stop(run);
    }
    const stats = run.capture.stats();
    assert.equal(received, sends * 1000, 'the client got every byte');
    assert.ok(stats.lost > 0, `a 4 KiB ring must overflow: ${JSON.stringify({ ...stats, assembler: undefined })}`);
    // accept4, one DATA per send, close, and the process's exit: each delivered or counted lost.
    assert.equal(stats.events + stats.lost, 1 + sends + 1 + 1, 'written + lost = every record');
    assert.equal(stats.assembler.records, stats.events, 'every record written reached the assembler');
  });

  it('starts while another process floods it with SIGPROF every millisecond', async (t) => {
    let signals = 0;
    const onProf = (): void => {
      signals++;
    };
    process.on('SIGPROF', onProf);
    const flood = spawn(
      'python3',
      [
        '-c',
        `import os, signal, time\nwhile True:\n    os.kill(${process.pid}, signal.SIGPROF)\n    time.sleep(0.001)`,
      ],
      { stdio: 'ignore' },
    );
    children.push(flood);
    try {
      await waitUntil('the flood to begin', 10_000, () => signals > 50);
      const before = signals;
      const startedAt = Date.now();
      const run = open();
      const tookMs = Date.now() - startedAt;
      await sleep(50);
      const during = signals - before;
      t.diagnostic(`start() took ${tookMs} ms with ${during} SIGPROF delivered meanwhile`);
      for (const line of run.logs.filter((l) => /attempt/.test(l))) t.diagnostic(line);
      try {
        assert.ok(during >= 10, `the flood went on during start(): ${during} signals`);
        assert.ok(run.capture.stats().ringSizeBytes > 0, 'the capture runs');
      } finally {
        await stop(run);
      }
    } finally {
      flood.kill('SIGKILL');
      await sleep(50);
      process.off('SIGPROF', onProf);
    }
  });

  it('reports a process that execs a binary named like execComm, though nothing follows it', async () => {
    // A comm of its own, so that no other nginx started on this machine meanwhile adds records.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-exec-'));
    tmpDirs.push(dir);
    const comm = `kwx${process.pid % 100000}`;
    const binary = path.join(dir, comm);
    fs.copyFileSync('/bin/true', binary);
    fs.chmodSync(binary, 0o755);
    const run = open({ execComm: comm });
    let pid = 0;
    try {
      assert.throws(() => run.capture.inject(batchOf([])), /replay/, 'inject is for replay captures only');
      const child = spawnSync(binary, []);
      assert.equal(child.status, 0);
      pid = child.pid;
      await waitUntil('the exec record', 5000, () => run.capture.stats().events >= 1);
      await sleep(100);
    } finally {
      await stop(run);
    }
    assert.equal(run.capture.stats().events, 1, 'one record: the exec (the process is not followed)');
    const execs = procs(run, ProcEvent.Exec);
    assert.equal(execs.length, 1, 'one PROC EXEC frame');
    assert.equal(execs[0].pid, pid, "about the process that exec'd");
    assert.equal(execs[0].comm, comm, 'with its new comm');
  });

  it('carries the bytes through libc uprobes with the libc data path', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-www-'));
    tmpDirs.push(dir);
    fs.writeFileSync(path.join(dir, 'index.html'), 'hello from kw\n'.repeat(50));
    const server = spawn('python3', ['-m', 'http.server', String(LIBC_PORT), '--bind', '127.0.0.1'], {
      cwd: dir,
      stdio: 'ignore',
    });
    children.push(server);
    await waitUntil('python http.server', 10_000, () => server.exitCode === null);
    for (let i = 0; i < 200 && !(await canConnect(LIBC_PORT)); i++) await sleep(50);
    const exe = fs.readlinkSync(`/proc/${server.pid}/exe`);

    const syscalls = open();
    try {
      syscalls.capture.addProcess(server.pid!);
      assert.throws(
        () => syscalls.capture.attachUprobes(server.pid!, exe, { libc: true }),
        /libc data path/,
        'no libc uprobes with the syscall data path: both would report the same bytes',
      );
    } finally {
      await stop(syscalls);
    }

    const run = open({ dataPath: 'libc' });
    try {
      run.capture.addProcess(server.pid!);
      const attach = run.capture.attachUprobes(server.pid!, exe, { libc: true });
      t.diagnostic(`attached: ${attach.attached.join(', ')}`);
      assert.ok(
        attach.attached.some((a) => a.startsWith('recv@')) && attach.attached.some((a) => a.startsWith('send@')),
        `recv and send attached: ${attach.attached}`,
      );
      assert.equal(await get(LIBC_PORT, '/index.html?libc=1', false), 200);
      await sleep(200);
    } finally {
      await stop(run);
    }
    const stats = run.capture.stats();
    assert.ok(stats.connOpened >= 1 && stats.connClosed >= 1, 'accept and close come from the tracepoints');
    assert.ok(stats.events >= 4, `open, read, write, close at least: ${stats.events}`);
    const s = exchanges(run, 'server').find((e) => e.path === '/index.html');
    assert.ok(s, 'SERVER exchange from the libc data path');
    assert.equal(s.status, 200);
    assert.equal(s.query, 'libc=1');
  });
});

describe('native capture: replay', () => {
  it('assembles injected records on the drain thread; done comes after the last batch', async () => {
    const pid = 4242;
    const conversations = 200;
    const records: Buffer[] = [];
    let t = TEST_BASE_NS;
    const tick = (): bigint => (t += 1000n);
    for (let i = 0; i < conversations; i++) {
      const connId = i + 1;
      records.push(
        connOpenRecord({ pid, ktimeNs: tick(), connId, fd: 10 + i, direction: Direction.Server, localPort: 8000 }),
        dataRecord({
          pid,
          ktimeNs: tick(),
          connId,
          fd: 10 + i,
          op: Op.Read,
          direction: Direction.Server,
          bytes: `GET /replay/${i}?n=${i} HTTP/1.1\r\nHost: kong.test\r\nUser-Agent: kw-replay\r\n\r\n`,
        }),
        dataRecord({
          pid,
          ktimeNs: tick(),
          connId,
          fd: 10 + i,
          op: Op.Write,
          direction: Direction.Server,
          bytes: 'HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
        }),
        connCloseRecord({ pid, ktimeNs: tick(), connId, fd: 10 + i, direction: Direction.Server }),
      );
    }
    // A request still waiting for its answer when the capture stops.
    const unfinished = conversations + 1;
    records.push(
      connOpenRecord({ pid, ktimeNs: tick(), connId: unfinished, fd: 9, direction: Direction.Server, localPort: 8000 }),
      dataRecord({
        pid,
        ktimeNs: tick(),
        connId: unfinished,
        fd: 9,
        op: Op.Read,
        direction: Direction.Server,
        bytes: 'GET /replay/unfinished HTTP/1.1\r\nHost: kong.test\r\n\r\n',
      }),
    );
    assert.equal(records[0][0], EventType.ConnOpen, 'records start with the type byte');

    const run = open({ replay: true });
    try {
      // Several buffers, with records cut across none of them.
      for (let at = 0; at < records.length; at += 97) run.capture.inject(batchOf(records.slice(at, at + 97)));
      await waitUntil('the drain thread to take every record', 10_000, () => {
        return run.capture.stats().assembler.records === records.length;
      });
      const stats = run.capture.stats();
      assert.equal(stats.events, 0, 'no kernel in replay');
      assert.equal(stats.ringSizeBytes, 0, 'no ring in replay');
    } finally {
      await stop(run);
    }
    assert.equal(run.capture.stats().assembler.records, records.length, 'final figures after stop');
    const servers = exchanges(run, 'server');
    for (let i = 0; i < conversations; i++) {
      const mine = servers.filter((s) => s.path === `/replay/${i}`);
      assert.equal(mine.length, 1, `one SERVER exchange for conversation ${i}`);
      assert.equal(mine[0].status, 201);
      assert.equal(mine[0].query, `n=${i}`);
      assert.equal(mine[0].pid, pid);
    }
    const stopped = servers.filter((s) => s.path === '/replay/unfinished');
    assert.equal(stopped.length, 1, 'the unfinished request is reported at stop');
    assert.equal(stopped[0].errorCode, ErrorCode.AgentStopped, 'as stopped with the agent');
    assert.equal(exchanges(run, 'client').length, 0, 'no CLIENT exchange: nothing was connected');
    assert.equal(run.frames.filter(isProc).length, 0, 'no process event was injected');
    // The unfinished request's frame is the last one delivered, and done came after it.
    assert.equal((run.frames[run.frames.length - 1] as ExchangeView).path, '/replay/unfinished', 'FlushAll last');
  });
});
