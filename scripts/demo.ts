/**
 * The demo: a local Kong-shaped gateway (nginx + Lua, started like Kong) with an upstream,
 * light mixed traffic, and the agent, until Ctrl-C. Run by `make demo` after the build.
 *
 * On a terminal it opens the live view (`kong-watcher top`) on the running agent, and the agent's
 * JSON lines go to a log file. DEMO_VIEW=json prints the JSON lines instead, as the agent writes
 * them (also what happens when the output is not a terminal).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startGateway, startUpstream } from '../test/fixture/gateway';

const PROXY_PORT = Number(process.env.DEMO_PROXY_PORT ?? 8000);
const ADMIN_PORT = Number(process.env.DEMO_ADMIN_PORT ?? 8001);
const UPSTREAM_PORT = Number(process.env.DEMO_UPSTREAM_PORT ?? 9080);
const TOP_PORT = Number(process.env.TOP_PORT ?? 8687);
const CLI = path.join(__dirname, '..', 'dist', 'src', 'cli.js');
const AGENT_LOG = path.join(os.tmpdir(), 'kong-watcher-demo.log');

const PATHS = [
  ['GET', '/api/users/42'],
  ['GET', '/api/orders?page=2&apikey=s3cr3t'],
  ['POST', '/echo/items'],
  ['GET', '/svc/status/201'],
  ['GET', '/svc/big?bytes=65536'],
  ['GET', '/svc/slow?ms=25'],
  ['GET', '/fail'],
  ['GET', '/dead'],
  ['GET', '/no/such/route'],
] as const;

function send(i: number): void {
  const [method, target] = PATHS[i % PATHS.length];
  const headers: Record<string, string> = { 'user-agent': 'kong-watcher-demo/1.0' };
  if (i % 3 === 0) {
    const hex = (n: number) => [...Array(n)].map(() => Math.floor(Math.random() * 16).toString(16)).join('');
    headers.traceparent = `00-${hex(32)}-${hex(16)}-01`;
  }
  const req = http.request({ host: '127.0.0.1', port: PROXY_PORT, method, path: target, headers }, (res) =>
    res.resume(),
  );
  req.on('error', () => undefined);
  req.end(method === 'POST' ? JSON.stringify({ item: i }) : undefined);
}

/** Resolves once the agent's snapshot endpoint answers (it starts after BPF is attached). */
async function agentReady(agent: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && agent.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get({ host: '127.0.0.1', port: TOP_PORT, path: '/snapshot', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function main(): Promise<void> {
  const mode = process.env.DEMO_VIEW ?? (process.stdout.isTTY ? 'top' : 'json');
  if (mode !== 'top' && mode !== 'json') throw new Error(`DEMO_VIEW must be top or json, got "${mode}"`);
  const upstream = await startUpstream({ port: UPSTREAM_PORT });
  const gateway = await startGateway({ proxyPort: PROXY_PORT, adminPort: ADMIN_PORT, upstreamPort: UPSTREAM_PORT });
  process.stderr.write(
    `demo: Kong-shaped gateway on http://127.0.0.1:${PROXY_PORT} (prefix ${gateway.prefix}, master ${gateway.masterPid()}), ` +
      `upstream on :${UPSTREAM_PORT}; sending a few requests a second. Try: curl -i http://127.0.0.1:${PROXY_PORT}/api/hello\n`,
  );
  const log = mode === 'top' ? fs.openSync(AGENT_LOG, 'w') : undefined;
  const agent = spawn(process.execPath, [CLI], {
    stdio: log === undefined ? 'inherit' : ['ignore', log, log],
    env: {
      ENABLE_JSON_LOG: 'true',
      STATS_INTERVAL: '5s',
      KONG_PREFIX: gateway.prefix,
      KONG_ADMIN_URL: `http://127.0.0.1:${ADMIN_PORT}`,
      HEALTH_PORT: '0',
      TOP_PORT: String(TOP_PORT),
      ...process.env,
    },
  });
  // A slow wave between about 1 and 9 requests a second, so that the sparklines have a shape.
  let i = 0;
  const startedAt = Date.now();
  const traffic = setInterval(() => {
    const perSecond = 5 + 4 * Math.sin(((Date.now() - startedAt) / 30_000) * 2 * Math.PI);
    if (Math.random() < perSecond / 10) send(i++);
  }, 100);

  // The live view, once it runs.
  const shown: { view?: ChildProcess } = {};
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(traffic);
    shown.view?.kill('SIGTERM');
    agent.kill('SIGTERM');
    if (agent.exitCode === null) await new Promise((resolve) => agent.once('exit', resolve));
    await gateway.stop();
    await upstream.stop();
    if (log !== undefined) process.stderr.write(`demo: stopped. The agent's JSON lines are in ${AGENT_LOG}\n`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  agent.on('exit', (code) => {
    if (stopping) return;
    if (log !== undefined) {
      process.stderr.write(`demo: the agent exited (${code}); the end of ${AGENT_LOG}:\n`);
      process.stderr.write(fs.readFileSync(AGENT_LOG, 'utf8').split('\n').slice(-15).join('\n') + '\n');
    } else {
      process.stderr.write(`demo: the agent exited (${code}); stopping\n`);
    }
    void stop();
  });

  if (mode === 'json') {
    process.stderr.write('demo: Ctrl-C stops everything. (On a terminal, `make demo` shows the live view instead.)\n');
    return;
  }
  process.stderr.write(`demo: the agent's JSON lines go to ${AGENT_LOG} (DEMO_VIEW=json prints them here).\n`);
  if (!(await agentReady(agent, 30_000))) return;
  // The live view owns the terminal now: q or Ctrl-C ends it, and the demo with it.
  const view = spawn(process.execPath, [CLI, 'top', '--url', `http://127.0.0.1:${TOP_PORT}`], { stdio: 'inherit' });
  shown.view = view;
  view.on('exit', () => void stop());
}

main().catch((err: Error) => {
  process.stderr.write(`demo: ${err.message}\n`);
  process.exit(1);
});
