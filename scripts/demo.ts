/**
 * The demo: a local Kong-shaped gateway (nginx + Lua, started like Kong) with an upstream,
 * light mixed traffic, and the agent printing what it sees as JSON request lines and stats,
 * until Ctrl-C. Run by `make demo` after the build.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { startGateway, startUpstream } from '../test/fixture/gateway';

const PROXY_PORT = Number(process.env.DEMO_PROXY_PORT ?? 8000);
const ADMIN_PORT = Number(process.env.DEMO_ADMIN_PORT ?? 8001);
const UPSTREAM_PORT = Number(process.env.DEMO_UPSTREAM_PORT ?? 9080);

const PATHS = [
  ['GET', '/api/users/42'],
  ['GET', '/api/orders?page=2&apikey=s3cr3t'],
  ['POST', '/echo/items'],
  ['GET', '/svc/status/201'],
  ['GET', '/svc/big?bytes=65536'],
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

async function main(): Promise<void> {
  const upstream = await startUpstream({ port: UPSTREAM_PORT });
  const gateway = await startGateway({ proxyPort: PROXY_PORT, adminPort: ADMIN_PORT, upstreamPort: UPSTREAM_PORT });
  process.stderr.write(
    `demo: Kong-shaped gateway on http://127.0.0.1:${PROXY_PORT} (prefix ${gateway.prefix}, master ${gateway.masterPid()}), ` +
      `upstream on :${UPSTREAM_PORT}; sending a few requests a second. Try: curl -i http://127.0.0.1:${PROXY_PORT}/api/hello\n` +
      'demo: Ctrl-C stops everything.\n',
  );
  const agent = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'src', 'cli.js')], {
    stdio: 'inherit',
    env: {
      ENABLE_JSON_LOG: 'true',
      STATS_INTERVAL: '5s',
      KONG_PREFIX: gateway.prefix,
      KONG_ADMIN_URL: `http://127.0.0.1:${ADMIN_PORT}`,
      HEALTH_PORT: '0',
      ...process.env,
    },
  });
  let i = 0;
  const traffic = setInterval(() => send(i++), 400);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(traffic);
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent.once('exit', resolve));
    await gateway.stop();
    await upstream.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  agent.on('exit', (code) => {
    if (!stopping) {
      process.stderr.write(`demo: the agent exited (${code}); stopping\n`);
      void stop();
    }
  });
}

main().catch((err: Error) => {
  process.stderr.write(`demo: ${err.message}\n`);
  process.exit(1);
});
