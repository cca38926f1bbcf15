/** Reads one snapshot from the agent's live endpoint (src/output/live/server.ts). */
import http from 'node:http';
import { SNAPSHOT_PATH } from '../output/live/server';
import { SNAPSHOT_VERSION, type LiveSnapshot } from '../output/live/snapshot';

const DEFAULT_PORT = 8687;
const MAX_BYTES = 16 * 1024 * 1024;

/**
 * Where the agent serves its snapshot: the agent's own TOP_ADDRESS/TOP_PORT when they are set in
 * this environment (a `kubectl exec` into its container has them), else 127.0.0.1:8687.
 */
export function defaultUrl(env: Record<string, string | undefined>): string {
  const port = env.TOP_PORT?.trim() || String(DEFAULT_PORT);
  let address = env.TOP_ADDRESS?.trim() || '127.0.0.1';
  if (address === '0.0.0.0') address = '127.0.0.1';
  if (address === '::') address = '::1';
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** The snapshot URL of a base URL such as http://127.0.0.1:8687 (a full .../snapshot URL is kept). */
export function snapshotUrl(base: string): URL {
  const url = new URL(base.includes('://') ? base : `http://${base}`);
  if (url.protocol !== 'http:') throw new Error(`only http:// URLs are served by the agent, got ${base}`);
  if (!url.pathname.endsWith(SNAPSHOT_PATH)) url.pathname = url.pathname.replace(/\/+$/, '') + SNAPSHOT_PATH;
  return url;
}

export function fetchSnapshot(url: URL, timeoutMs = 2000): Promise<LiveSnapshot> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BYTES) req.destroy(new Error('snapshot too large'));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`HTTP ${res.statusCode} from ${url.href}`));
          return;
        }
        try {
          const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8')) as LiveSnapshot;
          if (snapshot.version !== SNAPSHOT_VERSION) {
            reject(
              new Error(`snapshot version ${String(snapshot.version)}, this kong-watcher reads ${SNAPSHOT_VERSION}`),
            );
            return;
          }
          resolve(snapshot);
        } catch (err) {
          reject(new Error(`not a snapshot from ${url.href}: ${(err as Error).message}`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? err.message)));
  });
}
