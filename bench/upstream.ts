/**
 * The bench's upstream: a bare nginx answering every request with a small fixed JSON body. The
 * test fixture's Node upstream tops out near the gateway's own rate on a shared CPU, and the
 * load CPU must have room to spare, or the bench measures the upstream instead of the gateway.
 * It runs as one process (master_process off) on the CPU this process is pinned to; its prefix
 * is not the gateway's, so the agent never watches it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { canConnect } from '../test/fixture/gateway';

export interface BenchUpstream {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const BODY = '{"method":"GET","path":"/api/bench","bodyBytes":0}';

function conf(prefix: string, port: number): string {
  return `master_process off;
daemon off;
error_log ${prefix}/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    client_body_temp_path ${prefix}/body;
    proxy_temp_path ${prefix}/proxy;
    fastcgi_temp_path ${prefix}/fastcgi;
    uwsgi_temp_path ${prefix}/uwsgi;
    scgi_temp_path ${prefix}/scgi;
    server {
        listen 127.0.0.1:${port};
        location / {
            default_type application/json;
            return 200 '${BODY}';
        }
    }
}
`;
}

export async function startBenchUpstream(port: number, dir: string): Promise<BenchUpstream> {
  const prefix = path.join(dir, 'upstream');
  fs.mkdirSync(prefix, { recursive: true });
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf(prefix, port));
  const child = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', 'nginx.conf'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`bench upstream nginx did not start on port ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    pid: child.pid ?? -1,
    port,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
    },
  };
}
