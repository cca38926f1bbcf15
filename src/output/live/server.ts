/**
 * The live view's endpoint: GET /snapshot answers the snapshot as JSON, computed when asked.
 * It binds to 127.0.0.1 by default (TOP_ADDRESS): route-level figures and recent request paths
 * are for whoever can exec into the pod, not for the network.
 */
import http from 'node:http';
import type { LiveSnapshot } from './snapshot';

export const SNAPSHOT_PATH = '/snapshot';

export function startLiveServer(address: string, port: number, snapshot: () => LiveSnapshot): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== SNAPSHOT_PATH) {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`not found: try ${SNAPSHOT_PATH}, or kong-watcher top\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET only\n');
      return;
    }
    const body = JSON.stringify(snapshot());
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
