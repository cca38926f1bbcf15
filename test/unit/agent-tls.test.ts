/**
 * TLS uprobes in the agent's wiring, with a fake native capture and a fake procfs: on by default,
 * per worker, with the libssl it maps (or its binary) for when OpenSSL's calls are used; forced to
 * OpenSSL with TLS_UPROBES=openssl, off with false; a missing library or symbol is a warning that
 * says what is lost, never a stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent';
import type { AttachResult, CaptureOptions, CaptureStats, NativeCapture, UprobeSet } from '../../src/capture/native';
import { createClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { Logger } from '../../src/log';
import { FRAME_BASE_NS } from './helpers/frames';

const KONG_MASTER = 'nginx: master process /usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf';
const NGINX = '/usr/local/openresty/nginx/sbin/nginx';
const LIBSSL = '/usr/local/kong/lib/libssl.so.3';

function addProc(root: string, pid: number, ppid: number, cmdline: string, maps?: string): void {
  const dir = path.join(root, String(pid));
  fs.mkdirSync(path.join(dir, 'ns'), { recursive: true });
  const fields = ['S', String(ppid), ...Array(17).fill('0'), String(pid * 10), '0', '0'];
  fs.writeFileSync(path.join(dir, 'stat'), `${pid} (nginx) ${fields.join(' ')}\n`);
  fs.writeFileSync(path.join(dir, 'cmdline'), `${cmdline}\0`);
  fs.symlinkSync(NGINX, path.join(dir, 'exe'));
  if (maps !== undefined) fs.writeFileSync(path.join(dir, 'maps'), maps);
}

interface AttachCall {
  pid: number;
  binaryPath: string;
  set: UprobeSet;
  sslPath?: string;
}

/** Records attachUprobes calls; answers with `answer` (or throws it). */
class AttachRecorder implements NativeCapture {
  readonly calls: AttachCall[] = [];
  constructor(private readonly answer: AttachResult | Error) {}
  start(): void {}
  addProcess(): void {}
  removeProcess(): void {}
  attachUprobes(pid: number, binaryPath: string, set: UprobeSet, _libcPath?: string, sslPath?: string): AttachResult {
    this.calls.push({ pid, binaryPath, set, sslPath });
    if (this.answer instanceof Error) throw this.answer;
    return this.answer;
  }
  detachUprobes(): void {}
  inject(): void {}
  stats(): CaptureStats {
    throw new Error('no stats in this test');
  }
  stop(done?: () => void): void {
    setImmediate(() => done?.());
  }
}

async function run(
  env: Record<string, string>,
  answer: AttachResult | Error,
  workerMaps?: string,
): Promise<{ calls: AttachCall[]; logs: Record<string, unknown>[]; root: string }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kw-agent-tls-'));
  try {
    addProc(root, 100, 1, KONG_MASTER, `55d0-55e0 r-xp 0 08:01 7 ${LIBSSL}\n`);
    addProc(root, 101, 100, 'nginx: worker process', workerMaps);
    const config = loadConfig({
      HOST_PROC: root,
      KONG_WATCH_SCOPE: 'host',
      HEALTH_PORT: '0',
      STATS_INTERVAL: '0',
      ENABLE_JSON_LOG: 'true',
      ...env,
    });
    const lines: string[] = [];
    const log = new Logger({ level: 'info', json: true, write: (l) => lines.push(l) });
    const capture = new AttachRecorder(answer);
    const agent = new Agent(config, log, {
      createCapture: (_o: CaptureOptions) => capture,
      env: {},
      clock: createClock({ monotonicNs: () => FRAME_BASE_NS, measureOffsetNs: () => 0n, refreshIntervalMs: 0 }),
    });
    await agent.start();
    await agent.stop(1000);
    log.flush();
    const logs = lines.flatMap((l) => l.trim().split('\n')).map((l) => JSON.parse(l) as Record<string, unknown>);
    return { calls: capture.calls, logs, root };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const ALL_ATTACHED: AttachResult = { attached: ['ngx_ssl_recv@x', 'ngx_ssl_write@x'], missing: [] };

test('TLS uprobes are on by default, per worker, with the libssl the worker maps for OpenSSL', async () => {
  const maps = [
    `55d0-55e0 r-xp 0 08:01 7 ${NGINX}`,
    `7f10-7f20 r-xp 0 08:01 8 /usr/lib/x86_64-linux-gnu/libc.so.6`,
    `7f30-7f40 r-xp 0 08:01 9 ${LIBSSL}`,
  ].join('\n');
  const { calls, logs, root } = await run({}, ALL_ATTACHED, maps);
  assert.equal(calls.length, 1, 'the worker only: the master serves nothing');
  assert.equal(calls[0].pid, 101);
  assert.deepEqual(calls[0].set, { lua: false, libc: false, tls: true, tlsOpenSsl: false }, 'the TLS set alone');
  assert.equal(calls[0].sslPath, `${root}/101/root${LIBSSL}`, "Kong's libssl, through the worker's root");
  assert.ok(!logs.some((l) => l.level === 'warn'), 'no warning when every symbol attached');
  const attached = logs.find((l) => l.msg === 'uprobes attached');
  assert.equal(attached?.tls, 'ngx_ssl_recv/ngx_ssl_write', 'which calls the TLS plaintext comes from');
});

test('TLS_UPROBES=openssl asks for OpenSSL even where nginx has its own calls', async () => {
  const { calls, logs } = await run({ TLS_UPROBES: 'openssl' }, { attached: ['SSL_read@x'], missing: [] });
  assert.equal(calls[0].set.tlsOpenSsl, true);
  assert.equal(logs.find((l) => l.msg === 'uprobes attached')?.tls, 'OpenSSL');
});

test('no libssl mapped: the symbols are looked for in the nginx binary (OpenSSL linked in)', async () => {
  const { calls, root } = await run({}, ALL_ATTACHED, `55d0-55e0 r-xp 0 08:01 7 ${NGINX}\n`);
  assert.equal(calls[0].sslPath, `${root}/101/root${NGINX}`);
});

test('TLS_UPROBES=false attaches nothing; anything but true, openssl or false stops start-up', async () => {
  const { calls } = await run({ TLS_UPROBES: 'false' }, ALL_ATTACHED);
  assert.deepEqual(calls, []);
  assert.throws(() => loadConfig({ TLS_UPROBES: 'boringssl' }), /TLS_UPROBES must be true, openssl or false/);
});

test('OpenSSL used, a missing SSL symbol is a warning that says what is lost; missing _ex forms are not', async () => {
  const nginx = ['ngx_ssl_recv: symbol ngx_ssl_recv not found in /x'];
  const missing = ['SSL_read: symbol SSL_read not found in /x', 'SSL_read_ex: symbol SSL_read_ex not found in /x'];
  const { logs } = await run({}, { attached: ['SSL_set_fd@/x'], missing: [...nginx, ...missing] });
  const warns = logs.filter((l) => l.level === 'warn');
  assert.equal(warns.length, 1, JSON.stringify(warns));
  assert.equal(warns[0].msg, 'TLS uprobes incomplete: requests on TLS connections of this worker are not reported');
  assert.deepEqual(warns[0].missing, [missing[0]], 'SSL_read, not SSL_read_ex (nginx does not call it)');
  const onlyEx = await run({}, { attached: ['SSL_read@/x'], missing: [...nginx, missing[1]] });
  assert.ok(!onlyEx.logs.some((l) => l.level === 'warn'), 'missing _ex forms only: no warning');
});

test('nothing attachable (no OpenSSL at all): a warning, and the agent runs on', async () => {
  const { logs } = await run({}, new Error('no uprobe attached for pid 101: symbol SSL_set_fd not found in /x'));
  const warn = logs.find((l) => l.level === 'warn');
  assert.equal(
    warn?.msg,
    'uprobes not attached; syscall capture continues (requests on TLS connections of this worker are not reported)',
  );
  assert.match(String(warn?.error), /SSL_set_fd not found/);
  assert.ok(!logs.some((l) => l.level === 'error'), 'never an error');
});
