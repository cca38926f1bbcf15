/**
 * Gives exchanges their trace ids and ties each upstream attempt (CLIENT exchange) to the inbound
 * request (SERVER exchange) it serves. Nothing in the bytes links the two sockets, so the match
 * is a score over the in-flight inbound requests of the same worker: shared trace id or request
 * id, the path (Kong's strip_path makes one a suffix of the other), query, method, user agent,
 * and recency (an nginx worker is single-threaded: the upstream write follows the inbound read).
 */
import { clientIds, IdGenerator, incomingContext, serverIds, type IncomingContext } from './trace-context';
import type { ExchangeSink, HttpExchange } from './types';

/** Below this score an upstream call is taken for Kong's own traffic (database, DNS, exporters). */
const MIN_SCORE = 2;
/** In-flight inbound requests considered per worker; older ones are still tracked, never matched. */
const MAX_CANDIDATES = 4096;
/** Worker pids whose empty in-flight lists are kept before the empty ones are dropped. */
const MAX_IDLE_WORKER_LISTS = 256;

export class Assembler {
  private readonly inFlight = new Map<number, HttpExchange[]>();
  unmatchedAttempts = 0;

  constructor(
    private readonly sink: ExchangeSink,
    private readonly ids: IdGenerator = new IdGenerator(),
  ) {}

  requestHead(ex: HttpExchange): void {
    // Parsed once here, used by the match and by the ids.
    const ctx = incomingContext(ex.requestHeaders);
    if (ex.direction === 'server') {
      ex.ids = serverIds(ex.requestHeaders, this.ids, ctx);
      ex.attempts = [];
      let list = this.inFlight.get(ex.pid);
      if (!list) this.inFlight.set(ex.pid, (list = []));
      list.push(ex);
    } else {
      const parent = this.match(ex, ctx);
      if (parent) {
        ex.parent = parent;
        (parent.attempts ??= []).push(ex);
      } else {
        this.unmatchedAttempts++;
      }
      ex.ids = clientIds(parent?.ids, ex.requestHeaders, this.ids, ctx);
      // Two attempts cannot share a span: a propagated id reused by a retry gets a fresh one.
      if (parent !== undefined && sharesSpan(parent.attempts, ex)) ex.ids.spanId = this.ids.spanId();
    }
    this.sink.onRequestHead?.(ex);
  }

  exchangeDone(ex: HttpExchange): void {
    if (ex.direction === 'server') {
      const list = this.inFlight.get(ex.pid);
      if (list) {
        const i = list.lastIndexOf(ex);
        if (i >= 0) list.splice(i, 1);
        // A worker's list empties after nearly every request: it stays for the next one, and
        // the lists of workers gone are swept only when there are many.
        if (list.length === 0 && this.inFlight.size > MAX_IDLE_WORKER_LISTS) this.sweep();
      }
    }
    this.sink.onExchange(ex);
  }

  private sweep(): void {
    for (const [pid, list] of this.inFlight) if (list.length === 0) this.inFlight.delete(pid);
  }

  /** in-flight inbound requests, all workers */
  get inFlightServer(): number {
    let n = 0;
    for (const list of this.inFlight.values()) n += list.length;
    return n;
  }

  private match(client: HttpExchange, ctx: IncomingContext | undefined): HttpExchange | undefined {
    const list = this.inFlight.get(client.pid);
    if (!list || list.length === 0) return undefined;
    const requestId = client.requestHeaders['x-request-id'];
    const kongRequestId = client.requestHeaders['x-kong-request-id'];
    let best: HttpExchange | undefined;
    let bestScore = -Infinity;
    const from = Math.max(0, list.length - MAX_CANDIDATES);
    for (let i = list.length - 1; i >= from; i--) {
      const server = list[i];
      if (server.startNs > client.startNs) continue;
      let score = 0;
      if (ctx?.traceId !== undefined && ctx.traceId === server.ids?.traceId) score += 16;
      if (requestId !== undefined && requestId === server.requestHeaders['x-request-id']) score += 16;
      if (kongRequestId !== undefined && kongRequestId === server.requestHeaders['x-kong-request-id']) score += 16;
      if (client.path === server.path) score += 4;
      else if (isSuffix(client.path, server.path)) score += 2;
      else score += sharedTail(client.path, server.path);
      if (client.query !== undefined && client.query === server.query) score += 2;
      if (client.method === server.method) score += 1;
      if (client.userAgent !== undefined && client.userAgent === server.userAgent) score += 1;
      const attempts = server.attempts;
      const last = attempts && attempts.length > 0 ? attempts[attempts.length - 1] : undefined;
      if (!last) score += 1;
      else if (last.endNs === 0)
        score -= 8; // one attempt at a time
      else if (last.errorCode === undefined && last.statusCode > 0 && last.statusCode < 500) score -= 4;
      // Ties go to the request read most recently: `>` keeps the first (newest) of equal scores.
      if (score > bestScore || (score === bestScore && best !== undefined && server.requestEndNs > best.requestEndNs)) {
        best = server;
        bestScore = score;
      }
    }
    return bestScore >= MIN_SCORE ? best : undefined;
  }
}

function sharesSpan(attempts: HttpExchange[] | undefined, ex: HttpExchange): boolean {
  if (attempts === undefined) return false;
  for (let i = 0; i < attempts.length; i++) {
    const a = attempts[i];
    if (a !== ex && a.ids?.spanId === ex.ids!.spanId) return true;
  }
  return false;
}

/**
 * strip_path onto a service with its own path (/fail/r7 -> /status/500/r7): the paths share
 * whole trailing segments. Worth 1, plus a fraction that prefers the longest shared tail, so a
 * generic tail like "/200" never beats a specific one.
 */
function sharedTail(client: string, server: string): number {
  let n = 0;
  const max = Math.min(client.length, server.length);
  while (n < max && client.charCodeAt(client.length - 1 - n) === server.charCodeAt(server.length - 1 - n)) n++;
  // the shared part must start at a '/' inside the server path and hold at least one segment
  const slash = server.indexOf('/', server.length - n);
  if (slash <= 0 || slash >= server.length - 1) return 0;
  return 1 + Math.min(server.length - slash, 65535) / 65536;
}

/** One path ends with the other at a segment boundary (strip_path, or a service path prefix). */
function isSuffix(a: string, b: string): boolean {
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  if (short.length <= 1 || !long.endsWith(short)) return false;
  return short.startsWith('/') || long[long.length - short.length - 1] === '/';
}
