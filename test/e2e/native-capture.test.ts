/**
 * The native capture on the real kernel: BPF programs loaded by the addon see a server process
 * of our own (python, nginx with Lua), and only it, and the records say exactly what moved.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeBatch } from '../../src/capture/decoder';
import { createCapture, type CaptureOptions, type NativeCapture } from '../../src/capture/native';
import { Direction, EventType, LuaPhase, MAX_CAPTURE, Op, Source, type CaptureRecord } from '../../src/capture/records';
import { canConnect } from '../fixture/gateway';

const HTTP_PORT = 18471;
const OTHER_PORT = 18472;
const BURST_PORT = 18473;
const NGINX_PORT = 18474;
const LIBC_PORT = 18475;

const children: ChildProcess[] = [];
const tmpDirs: string[] = [];

after(() => {
  // SIGTERM: an nginx master killed with SIGKILL would leave its worker behind.
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Collected {
  capture: NativeCapture;
  records: CaptureRecord[];
  logs: string[];
}

/** Records are copied out of the batch: the decoder hands out views. */
function startCapture(overrides: Partial<CaptureOptions> = {}): Collected {
  const records: CaptureRecord[] = [];
  const logs: string[] = [];
  const capture = createCapture({
    ringBufferBytes: 1 << 22,
    captureBytes: MAX_CAPTURE,
    wakeupBytes: 1 << 16,
    pollIntervalMs: 10,
    dataPath: 'syscalls',
    onBatch: (batch) => {
      decodeBatch(batch, 0n, (r) =>
        records.push(r.type === EventType.Data ? { ...r, data: Buffer.from(r.data), tail: Buffer.from(r.tail) } : r),
      );
    },
    onLog: (level, message) => logs.push(`${level}: ${message}`),
    ...overrides,
  });
  capture.start();
  return { capture, records, logs };
}

/** stop() queues the last batches; they arrive on the next turns of the event loop. */
async function stopAndFlush(c: Collected): Promise<void> {
  c.capture.stop();
  await sleep(50);
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await sleep(50);
  }
}

function startPythonHttp(port: number): ChildProcess {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-bpf-www-'));
  tmpDirs.push(dir);
  fs.writeFileSync(path.join(dir, 'index.html'), 'hello from kw-bpf\n'.repeat(100));
  const child = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1'], {
    cwd: dir,
    stdio: 'ignore',
  });
  children.push(child);
  return child;
}

/** One request on a fresh connection; returns the client's port and every byte received. */
function rawRequest(port: number, request: string): Promise<{ clientPort: number; response: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve({ clientPort: clientPort ?? 0, response: Buffer.concat(chunks) }));
    let clientPort: number | undefined;
    s.on('connect', () => (clientPort = s.localPort));
  });
}

function ofPid<T extends CaptureRecord['type']>(records: CaptureRecord[], pid: number, type: T) {
  return records.filter((r): r is Extract<CaptureRecord, { type: T }> => r.pid === pid && r.type === type);
}

describe('native capture (syscall tracepoints)', () => {
  it('sees connections, bytes and closes of an added pid, and nothing of other pids', async () => {
    const server = startPythonHttp(HTTP_PORT);
    const other = startPythonHttp(OTHER_PORT);
    await Promise.all([waitForPort(HTTP_PORT), waitForPort(OTHER_PORT)]);
    const c = startCapture();
    c.capture.addProcess(server.pid!, 2);
    const request = 'GET /index.html HTTP/1.1\r\nHost: kw-bpf\r\nUser-Agent: kw-test\r\nConnection: close\r\n\r\n';
    const first = await rawRequest(HTTP_PORT, request);
    const second = await rawRequest(HTTP_PORT, request);
    await rawRequest(OTHER_PORT, request);
    await sleep(100);
    const stats = c.capture.stats();
    await stopAndFlush(c);

    assert.equal(ofPid(c.records, other.pid!, EventType.Data).length, 0, 'no records for a pid not added');
    assert.ok(
      c.records.every((r) => r.pid === server.pid),
      `only the added pid: ${[...new Set(c.records.map((r) => r.pid))]}`,
    );
    assert.equal(stats.lost, 0, 'nothing lost in a 4 MiB ring');
    assert.equal(stats.events, c.records.length, 'every record written reached JS');

    for (const got of [first, second]) {
      const open = ofPid(c.records, server.pid!, EventType.ConnOpen).find((r) => r.peerPort === got.clientPort);
      assert.ok(open, `CONN_OPEN for client port ${got.clientPort}`);
      assert.equal(open.direction, Direction.Server, 'accepted socket: server direction');
      assert.equal(open.localPort, HTTP_PORT, 'local port');
      assert.equal(open.localAddress, '127.0.0.1', 'local address');
      assert.equal(open.peerAddress, '127.0.0.1', 'peer address');
      const data = ofPid(c.records, server.pid!, EventType.Data).filter((r) => r.connId === open.connId);
      const reads = data.filter((r) => r.op === Op.Read && r.result > 0);
      const writes = data.filter((r) => r.op === Op.Write && r.result > 0);
      const readBytes = Buffer.concat(reads.map((r) => r.data)).toString('latin1');
      assert.ok(readBytes.startsWith(request), `reads carry the request: ${JSON.stringify(readBytes)}`);
      assert.ok(writes[0].data.toString('latin1').startsWith('HTTP/1.'), 'first write is the status line');
      assert.ok(
        data.every((r) => r.direction === Direction.Server && r.fd === open.fd),
        'direction and fd',
      );
      const written = writes.reduce((n, r) => n + r.result, 0);
      assert.equal(written, got.response.length, 'bytes written = bytes the client received');
      const last = writes[writes.length - 1];
      assert.deepEqual(last.tail, got.response.subarray(got.response.length - 16), 'tail = last 16 bytes sent');
      const close = ofPid(c.records, server.pid!, EventType.ConnClose).find((r) => r.connId === open.connId);
      assert.ok(close, 'CONN_CLOSE');
      assert.equal(close.bytesWritten, written, 'close carries the bytes written');
      assert.equal(
        close.bytesRead,
        reads.reduce((n, r) => n + r.result, 0),
        'close carries the bytes read',
      );
    }
    assert.ok(stats.connOpened >= 2 && stats.hookHits > 0, `stats: ${JSON.stringify(stats)}`);
    assert.equal(stats.ringSizeBytes, 1 << 22, 'ring size');
  });

  it('counts every record it had no room for (tiny ring)', async () => {
    const burst = 400;
    const script = [
      'import socket, sys',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(("127.0.0.1", ${BURST_PORT}))`,
      's.listen(8)',
      'print("ready", flush=True)',
      'sys.stdin.readline()',
      'c, _ = s.accept()',
      `for _ in range(${burst}):`,
      '    assert c.send(b"x" * 1000) == 1000',
      'c.close()',
    ].join('\n');
    const server = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(server);
    await new Promise((resolve) => server.stdout!.once('data', resolve));
    const c = startCapture({ ringBufferBytes: 4096, captureBytes: 64, wakeupBytes: 1024 });
    c.capture.addProcess(server.pid!, 2);
    server.stdin!.write('go\n');
    const got = await rawRequest(BURST_PORT, '');
    await sleep(100);
    const stats = c.capture.stats();
    await stopAndFlush(c);

    assert.equal(got.response.length, burst * 1000, 'client got everything');
    assert.equal(stats.events, c.records.length, 'records written = records received');
    assert.ok(stats.lost > 0, `a 4 KiB ring must overflow: ${JSON.stringify(stats)}`);
    assert.equal(stats.events + stats.lost, burst + 2, 'open + writes + close, each received or counted lost');
  });

  it('stop() is idempotent, keeps the final figures, and later calls say the capture stopped', async () => {
    const c = startCapture();
    await stopAndFlush(c);
    c.capture.stop();
    const final = c.capture.stats();
    assert.equal(final.events, c.records.length, 'final figures after stop: records written = received');
    assert.equal(final.ringSizeBytes, 1 << 22);
    assert.throws(() => c.capture.start(), /stopped/, 'no restart');
  });

  it('rejects bad arguments with TypeError', () => {
    assert.throws(() => startCapture({ ringBufferBytes: 5000 }), TypeError, 'ring size not a power of two');
    assert.throws(
      () => startCapture({ captureBytes: MAX_CAPTURE + 1 }),
      TypeError,
      'capture bytes over KW_MAX_CAPTURE',
    );
    const c = startCapture();
    try {
      assert.throws(() => c.capture.addProcess(-1, 2), TypeError, 'negative pid');
      assert.throws(() => c.capture.addProcess(1, 3 as 2), TypeError, 'unknown role');
    } finally {
      c.capture.stop();
    }
  });
});

describe('native capture (libc uprobes data path)', () => {
  it('captures reads and writes through libc uprobes', async () => {
    const server = startPythonHttp(LIBC_PORT);
    await waitForPort(LIBC_PORT);
    const c = startCapture({ dataPath: 'libc' });
    c.capture.addProcess(server.pid!, 2);
    const exe = fs.readlinkSync(`/proc/${server.pid}/exe`);
    const attach = c.capture.attachUprobes(server.pid!, exe, { libc: true });
    assert.ok(
      attach.attached.some((a) => a.startsWith('recv@')),
      `recv attached: ${attach.attached}`,
    );
    const got = await rawRequest(LIBC_PORT, 'GET / HTTP/1.1\r\nHost: kw-bpf\r\nConnection: close\r\n\r\n');
    await sleep(100);
    await stopAndFlush(c);
    const data = ofPid(c.records, server.pid!, EventType.Data);
    const reads = data.filter((r) => r.source === Source.LibcRead && r.result > 0);
    const writes = data.filter((r) => r.source === Source.LibcWrite && r.result > 0);
    assert.ok(
      reads.some((r) => r.data.toString('latin1').startsWith('GET / HTTP/1.1')),
      'libc read of the request',
    );
    assert.ok(
      writes.some((r) => r.data.toString('latin1').startsWith('HTTP/1.')),
      'libc write of the response',
    );
    assert.ok(
      data.every((r) => r.source === Source.LibcRead || r.source === Source.LibcWrite),
      'no syscall tracepoint data in libc mode',
    );
    assert.equal(
      writes.reduce((n, r) => n + r.result, 0),
      got.response.length,
      'libc writes add up to what the client received',
    );
  });
});

function nginxConf(prefix: string): string {
  return `
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
master_process on;
daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${NGINX_PORT};
    location / {
      rewrite_by_lua_block { ngx.ctx.kw = 1 }
      access_by_lua_block { ngx.ctx.kw = 2 }
      content_by_lua_block { ngx.say("kw-bpf ", ngx.ctx.kw) }
      log_by_lua_block { ngx.ctx.kw = 3 }
    }
  }
}
`;
}

async function startNginx(): Promise<{ master: ChildProcess; worker: number }> {
  const prefix = fs.mkdtempSync('/tmp/kw-bpf-nginx-');
  tmpDirs.push(prefix);
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), nginxConf(prefix));
  const master = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(master);
  let stderr = '';
  master.stderr!.on('data', (d) => (stderr += d));
  try {
    await waitForPort(NGINX_PORT);
  } catch (err) {
    throw new Error(`nginx did not start: ${stderr}`, { cause: err });
  }
  // The master listens before it forks its worker.
  for (let i = 0; i < 100; i++) {
    const pids = spawnSync('pgrep', ['-P', String(master.pid)], { encoding: 'utf8' }).stdout.trim();
    if (pids) {
      assert.equal(pids.split('\n').length, 1, `one nginx worker: ${pids}`);
      return { master, worker: Number(pids) };
    }
    await sleep(20);
  }
  throw new Error(`nginx ${master.pid} started no worker: ${stderr}`);
}

describe('native capture (nginx and Lua uprobes)', () => {
  it('attaches to /usr/sbin/nginx and its Lua module and emits NGX_REQUEST and LUA_PHASE', async (t) => {
    const { worker } = await startNginx();
    const c = startCapture();
    c.capture.addProcess(worker, 2);
    const attach = c.capture.attachUprobes(worker, '/usr/sbin/nginx', { nginx: true, lua: true });
    t.diagnostic(`attached: ${attach.attached.join(', ')}`);
    t.diagnostic(`missing: ${attach.missing.join(', ') || 'none'}`);
    for (const sym of ['ngx_http_process_request@/usr/sbin/nginx', 'ngx_http_free_request@/usr/sbin/nginx']) {
      assert.ok(attach.attached.includes(sym), `${sym} attached: ${attach.attached}`);
    }
    assert.ok(
      attach.attached.some((a) => a.startsWith('ngx_http_lua_access_handler@') && a.includes('ngx_http_lua_module')),
      `Lua handlers resolved in the module: ${attach.attached}`,
    );
    const requests = 5;
    const before = c.capture.stats().hookHits;
    const responses: Buffer[] = [];
    for (let i = 0; i < requests; i++) {
      const got = await rawRequest(NGINX_PORT, `GET /r${i} HTTP/1.1\r\nHost: kw-bpf\r\nConnection: close\r\n\r\n`);
      responses.push(got.response);
    }
    await sleep(100);
    const hits = c.capture.stats().hookHits - before;
    t.diagnostic(`hook hits per request (syscalls + nginx + Lua uprobes): ${hits / requests}`);
    c.capture.detachUprobes(worker);
    await stopAndFlush(c);

    assert.ok(
      responses.every((r) => r.toString('latin1').includes('kw-bpf 2')),
      'Lua served the requests',
    );
    const ngx = ofPid(c.records, worker, EventType.NgxRequest);
    assert.equal(ngx.length, requests, 'one NGX_REQUEST per request');
    const opens = ofPid(c.records, worker, EventType.ConnOpen);
    for (const r of ngx) {
      assert.ok(r.startNs > 0 && r.endNs >= r.startNs, `start ${r.startNs} <= end ${r.endNs}`);
      const open = opens.find((o) => o.connId === r.connId);
      assert.ok(open && open.fd === r.fd, `request fd ${r.fd} resolves to its connection ${r.connId}`);
    }
    const phases = ofPid(c.records, worker, EventType.LuaPhase);
    t.diagnostic(`Lua phase records: ${phases.map((p) => p.phase).join(',')}`);
    // A handler may run more than once per request (nginx re-enters a phase), never zero times.
    // The log phase runs inside ngx_http_free_request, so after the request's end_ns.
    for (const r of ngx) {
      for (const phase of [LuaPhase.Rewrite, LuaPhase.Access, LuaPhase.Content, LuaPhase.Log]) {
        assert.ok(
          phases.some(
            (p) =>
              p.phase === phase &&
              p.requestPtr === r.requestPtr &&
              p.connId === r.connId &&
              p.startNs >= r.startNs &&
              (phase === LuaPhase.Log || p.endNs <= r.endNs) &&
              p.startNs <= p.endNs,
          ),
          `Lua phase ${phase} inside request ${r.requestPtr} on connection ${r.connId}`,
        );
      }
    }
  });
});
