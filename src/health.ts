/**
 * A small HTTP endpoint for Kubernetes probes: /healthz (the agent's event loop answers and
 * capture has not failed) and /readyz (BPF attached and at least one Kong process monitored).
 */
import http from 'node:http';

export interface HealthState {
  live(): boolean;
  ready(): boolean;
  details(): Record<string, unknown>;
}

export function startHealthServer(address: string, port: number, state: HealthState): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const ok = path === '/healthz' ? state.live() : path === '/readyz' ? state.ready() : undefined;
    if (ok === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /readyz\n');
      return;
    }
    res
      .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
      .end(JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...state.details() }) + '\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
