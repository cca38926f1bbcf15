/**
 * Per-connection state from CONN_OPEN / DATA / CONN_CLOSE records: which side of each socket is
 * the request stream, FIFO pairing of requests and responses (keep-alive, pipelining), timing,
 * and what happens when a peer goes away mid-exchange (the exchange is still reported, with an
 * error code). Memory is bounded: connections are kept in LRU order and the oldest evicted.
 */
import {
  Direction as Dir,
  Errno,
  EventType,
  Op,
  PeerState,
  type CaptureRecord,
  type DataRecord,
} from '../capture/records';
import type { BodyFraming, RequestHead, ResponseHead } from '../http/head';
import { MAX_HEAD_BYTES, MessageStream, type HeadDecision } from '../http/message-stream';
import type { Direction, HttpExchange } from './types';

export interface TrackerOptions {
  /** local ports of accepted sockets whose traffic is not reported (Admin API, Manager) */
  ignoredLocalPorts: readonly number[];
  maxConnections: number;
  maxPendingPerConnection: number;
  maxHeadBytes: number;
  /** an unfinished exchange on a connection silent this long is reported as "timeout" */
  pendingTimeoutNs: number;
  /** a connection with nothing in flight, silent this long, is forgotten (its close was lost) */
  idleConnectionNs: number;
}

export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = {
  ignoredLocalPorts: [8001, 8444, 8002, 8445],
  maxConnections: 65536,
  maxPendingPerConnection: 32,
  maxHeadBytes: MAX_HEAD_BYTES,
  pendingTimeoutNs: 300e9,
  idleConnectionNs: 900e9,
};

export interface TrackerEvents {
  requestHead(ex: HttpExchange): void;
  exchangeDone(ex: HttpExchange): void;
}

export interface TrackerStats {
  connections: number;
  inFlight: number;
  /** connections given up because their bytes were not HTTP/1.x */
  notHttp: number;
  /** connections evicted to stay within maxConnections */
  evicted: number;
  /** connections ignored by port, or after an upgrade */
  ignored: number;
  /** responses with no request to pair with (the request predates the agent) */
  orphanResponses: number;
  /** heads that fell into bytes BPF did not copy */
  lostHeads: number;
  exchanges: number;
}

interface Pending {
  ex: HttpExchange;
  responseStarted: boolean;
  /** answered before its request body was all read (Kong's own 404/401 to an upload) */
  answeredNs?: number;
}

/** Kong's inter-worker event channel: an upgraded request that lives as long as the worker. */
const WORKER_EVENTS_UPGRADE = /^kong-worker-events/i;

class Connection {
  direction?: Direction;
  local?: { address: string; port: number };
  peer?: { address: string; port: number };
  ignored = false;
  requests?: MessageStream<RequestHead>;
  responses?: MessageStream<ResponseHead>;
  pending: Pending[] = [];
  currentRequest?: Pending;
  currentResponse?: Pending;
  requestCount = 0;
  /** why the peer is gone, first reason wins, and when */
  failure?: string;
  failureNs = 0;
  /** neighbours in least-recently-used order */
  older?: Connection;
  newer?: Connection;

  constructor(
    readonly connId: number,
    readonly pid: number,
    public lastNs: number,
  ) {}
}

export class ConnectionTracker {
  private readonly conns = new Map<number, Connection>();
  /**
   * Connections from least to most recently used, linked through themselves: every record
   * moves one to the end, and unlinking it costs less than taking it out of the Map and back.
   */
  private oldest?: Connection;
  private newest?: Connection;
  private readonly ignoredPorts: ReadonlySet<number>;
  private readonly counters = { notHttp: 0, evicted: 0, ignored: 0, orphanResponses: 0, lostHeads: 0, exchanges: 0 };
  private inFlight = 0;

  constructor(
    private readonly events: TrackerEvents,
    private readonly options: TrackerOptions = DEFAULT_TRACKER_OPTIONS,
  ) {
    this.ignoredPorts = new Set(options.ignoredLocalPorts);
  }

  handle(record: CaptureRecord): void {
    switch (record.type) {
      case EventType.Data:
        this.data(record);
        return;
      case EventType.ConnOpen: {
        const old = this.conns.get(record.connId);
        if (old) this.finishConnection(old, record.timeNs, 'incomplete_response');
        const conn = this.connection(record.connId, record.pid, record.timeNs);
        conn.direction = directionOf(record.direction);
        conn.local = { address: record.localAddress, port: record.localPort };
        conn.peer = { address: record.peerAddress, port: record.peerPort };
        if (conn.direction === 'server' && this.ignoredPorts.has(record.localPort)) this.ignore(conn);
        return;
      }
      case EventType.ConnClose: {
        const conn = this.conns.get(record.connId);
        if (conn) this.finishConnection(conn, record.timeNs, closeReason(conn, record.peerState));
        return;
      }
      case EventType.LuaPhase: {
        // nginx serves a connection's requests in order: a phase belongs to the oldest open one.
        const ex = this.conns.get(record.connId)?.pending[0]?.ex;
        if (ex === undefined || ex.direction !== 'server') return;
        const phases = (ex.luaPhaseNs ??= []);
        phases[record.phase] = (phases[record.phase] ?? 0) + Math.max(0, record.endNs - record.startNs);
        return;
      }
      default:
        return;
    }
  }

  /** Reports exchanges stuck on silent connections and forgets connections whose close was lost. */
  flushIdle(nowNs: number): void {
    const { pendingTimeoutNs, idleConnectionNs } = this.options;
    const oldest = nowNs - Math.min(pendingTimeoutNs, idleConnectionNs);
    for (let conn = this.oldest; conn !== undefined;) {
      const next = conn.newer;
      if (conn.lastNs > oldest) break; // LRU order: everything after is more recent
      if (conn.pending.length > 0 && nowNs - conn.lastNs >= pendingTimeoutNs) {
        this.finishConnection(conn, nowNs, 'timeout');
      } else if (conn.pending.length === 0 && nowNs - conn.lastNs >= idleConnectionNs) {
        this.forget(conn);
      }
      conn = next;
    }
  }

  /** Reports every unfinished exchange (shutdown). */
  flushAll(nowNs: number): void {
    const all: Connection[] = [];
    for (let conn = this.oldest; conn !== undefined; conn = conn.newer) all.push(conn);
    for (const conn of all) this.finishConnection(conn, nowNs, 'agent_stopped');
  }

  stats(): TrackerStats {
    return { connections: this.conns.size, inFlight: this.inFlight, ...this.counters };
  }

  private connection(connId: number, pid: number, timeNs: number): Connection {
    let conn = this.conns.get(connId);
    if (conn) {
      // Moving it to the end keeps least-recently-used order for eviction and idle flushes.
      if (conn !== this.newest) {
        this.unlink(conn);
        this.append(conn);
      }
      conn.lastNs = timeNs;
      return conn;
    }
    if (this.conns.size >= this.options.maxConnections && this.oldest !== undefined) {
      this.counters.evicted++;
      this.finishConnection(this.oldest, timeNs, 'evicted');
    }
    conn = new Connection(connId, pid, timeNs);
    this.conns.set(connId, conn);
    this.append(conn);
    return conn;
  }

  private append(conn: Connection): void {
    conn.older = this.newest;
    conn.newer = undefined;
    if (this.newest !== undefined) this.newest.newer = conn;
    else this.oldest = conn;
    this.newest = conn;
  }

  private unlink(conn: Connection): void {
    if (conn.older !== undefined) conn.older.newer = conn.newer;
    else this.oldest = conn.newer;
    if (conn.newer !== undefined) conn.newer.older = conn.older;
    else this.newest = conn.older;
    conn.older = undefined;
    conn.newer = undefined;
  }

  private forget(conn: Connection): void {
    if (this.conns.get(conn.connId) !== conn) return;
    this.conns.delete(conn.connId);
    this.unlink(conn);
  }

  private ignore(conn: Connection): void {
    conn.ignored = true;
    conn.requests = undefined;
    conn.responses = undefined;
    this.counters.ignored++;
  }

  private data(record: DataRecord): void {
    const conn = this.connection(record.connId, record.pid, record.timeNs);
    if (conn.ignored) return;
    if (conn.direction === undefined) {
      conn.direction = directionOf(record.direction);
      if (conn.direction === undefined) {
        if (record.result <= 0) return;
        conn.direction = guessDirection(record);
        if (conn.direction === undefined) return; // mid-message bytes of an old socket: wait for a start
      }
    }
    const requestSide = (record.op === Op.Read) === (conn.direction === 'server');
    if (record.result > 0) {
      const stream = requestSide ? this.requestStream(conn) : this.responseStream(conn);
      stream.feedFrom(record.result, record.data, record, record.timeNs);
      return;
    }
    if (record.result === 0) {
      if (record.op !== Op.Read) return;
      // The peer closed its side. A response delimited by the close ends normally here.
      if (!requestSide && conn.responses?.close()) return;
      if (conn.pending.length > 0) this.fail(conn, requestSide ? 'client_closed' : 'upstream_closed', record.timeNs);
      return;
    }
    const errno = -record.result;
    if (errno === Errno.EAGAIN || errno === Errno.EINTR) return;
    if (conn.pending.length === 0) return;
    if (errno === Errno.ECONNRESET) this.fail(conn, 'connection_reset', record.timeNs);
    else this.fail(conn, record.op === Op.Write ? 'write_error' : 'read_error', record.timeNs);
  }

  private fail(conn: Connection, reason: string, timeNs: number): void {
    if (conn.failure !== undefined) return;
    conn.failure = reason;
    conn.failureNs = timeNs;
  }

  private requestStream(conn: Connection): MessageStream<RequestHead> {
    if (conn.requests) return conn.requests;
    conn.requests = new MessageStream<RequestHead>(
      'request',
      {
        head: (head, firstNs) => this.requestHead(conn, head, firstNs),
        end: (lastNs, bodySize) => {
          const p = conn.currentRequest;
          conn.currentRequest = undefined;
          if (!p) return;
          p.ex.requestEndNs = lastNs;
          p.ex.requestBodySize = bodySize;
          if (p.answeredNs !== undefined) this.complete(conn, p, lastNs, undefined);
        },
        error: () => this.notHttp(conn),
        lost: () => this.counters.lostHeads++,
      },
      this.options.maxHeadBytes,
    );
    return conn.requests;
  }

  private responseStream(conn: Connection): MessageStream<ResponseHead> {
    if (conn.responses) return conn.responses;
    conn.responses = new MessageStream<ResponseHead>(
      'response',
      {
        head: (head, firstNs) => this.responseHead(conn, head, firstNs),
        end: (lastNs, bodySize) => {
          const p = conn.currentResponse;
          conn.currentResponse = undefined;
          if (!p) return;
          p.ex.responseBodySize = bodySize;
          // The server is done with a request once it has both answered it and read all of it
          // (nginx reads and discards the rest of a body it did not need, then logs).
          if (conn.currentRequest === p && conn.direction === 'server') p.answeredNs = lastNs;
          else this.complete(conn, p, lastNs, undefined);
        },
        error: () => this.notHttp(conn),
        lost: () => {
          this.counters.lostHeads++;
          // The lost head answered the oldest unanswered request: report that one as cut short.
          const p = conn.pending.find((x) => !x.responseStarted);
          if (p) this.complete(conn, p, conn.lastNs, 'incomplete_response');
        },
      },
      this.options.maxHeadBytes,
    );
    return conn.responses;
  }

  private requestHead(conn: Connection, head: RequestHead, firstNs: number): HeadDecision {
    if (conn.pending.length >= this.options.maxPendingPerConnection) {
      this.complete(conn, conn.pending[0], firstNs, 'incomplete_response');
    }
    conn.requestCount++;
    const ex: HttpExchange = {
      direction: conn.direction ?? 'server',
      pid: conn.pid,
      connId: conn.connId,
      connRequestIndex: conn.requestCount,
      local: conn.local,
      peer: conn.peer,
      method: head.method,
      target: head.target,
      path: head.path,
      query: head.query,
      httpVersion: head.httpVersion,
      host: head.headers['host'],
      userAgent: head.headers['user-agent'],
      requestHeaders: head.headers,
      requestHeadSize: head.headSize,
      requestBodySize: 0,
      statusCode: 0,
      responseHeaders: {},
      responseHeadSize: 0,
      responseBodySize: 0,
      startNs: firstNs,
      requestEndNs: firstNs,
      responseStartNs: 0,
      endNs: 0,
    };
    const p: Pending = { ex, responseStarted: false };
    conn.pending.push(p);
    conn.currentRequest = p;
    this.inFlight++;
    this.events.requestHead(ex);
  }

  private responseHead(conn: Connection, head: ResponseHead, firstNs: number): HeadDecision {
    const upgraded = head.statusCode === 101;
    // Interim responses (100 Continue, 103 Early Hints) precede the real one.
    if (head.statusCode < 200 && !upgraded) return undefined;
    const p = conn.pending.find((x) => !x.responseStarted);
    if (!p) {
      this.counters.orphanResponses++;
      return upgraded ? this.upgrade(conn) : undefined;
    }
    p.responseStarted = true;
    const ex = p.ex;
    ex.statusCode = head.statusCode;
    ex.responseHeaders = head.headers;
    ex.responseHeadSize = head.headSize;
    ex.responseStartNs = firstNs;
    if (upgraded) {
      if (WORKER_EVENTS_UPGRADE.test(head.headers['upgrade'] ?? '')) this.drop(conn, p);
      else this.complete(conn, p, firstNs, undefined);
      return this.upgrade(conn);
    }
    conn.currentResponse = p;
    if (ex.method === 'HEAD') return NO_BODY;
    if (ex.method === 'CONNECT' && head.statusCode < 300) {
      this.complete(conn, p, firstNs, undefined);
      return this.upgrade(conn);
    }
    return undefined;
  }

  /** After a protocol switch the bytes are not HTTP any more: stop looking at them. */
  private upgrade(conn: Connection): 'stop' {
    for (const p of [...conn.pending]) this.complete(conn, p, conn.lastNs, 'upgraded');
    this.ignore(conn);
    return 'stop';
  }

  private notHttp(conn: Connection): void {
    this.counters.notHttp++;
    for (const p of [...conn.pending]) this.complete(conn, p, conn.lastNs, 'protocol_error');
    conn.ignored = true;
    conn.requests = undefined;
    conn.responses = undefined;
  }

  private finishConnection(conn: Connection, timeNs: number, reason: string): void {
    this.forget(conn);
    if (conn.pending.length === 0) return;
    conn.responses?.close();
    const endNs = conn.failure !== undefined ? conn.failureNs : timeNs;
    for (const p of [...conn.pending]) {
      // Answered in full: the unread rest of its body changes nothing for the client.
      if (p.answeredNs !== undefined) this.complete(conn, p, p.answeredNs, undefined);
      else this.complete(conn, p, endNs, conn.failure ?? reason);
    }
  }

  private drop(conn: Connection, p: Pending): void {
    const i = conn.pending.indexOf(p);
    if (i < 0) return;
    conn.pending.splice(i, 1);
    this.inFlight--;
  }

  private complete(conn: Connection, p: Pending, endNs: number, errorCode: string | undefined): void {
    const i = conn.pending.indexOf(p);
    if (i < 0) return;
    conn.pending.splice(i, 1);
    if (conn.currentRequest === p) conn.currentRequest = undefined;
    if (conn.currentResponse === p) conn.currentResponse = undefined;
    this.inFlight--;
    this.counters.exchanges++;
    const ex = p.ex;
    ex.endNs = Math.max(endNs, ex.startNs);
    if (errorCode !== undefined) ex.errorCode = errorCode;
    // nginx's convention, which Kong's logs and plugins share: the client left before the answer.
    if (errorCode === 'client_closed' && ex.statusCode === 0 && conn.direction === 'server') ex.statusCode = 499;
    // HTTP/1.1 answers pipelined requests in order: the next one is served from here on (nginx
    // times it the same way), though its bytes may have been read together with this one.
    const next = i === 0 ? conn.pending[0] : undefined;
    if (next && next.ex.startNs < ex.endNs) {
      next.ex.startNs = ex.endNs;
      next.ex.requestEndNs = Math.max(next.ex.requestEndNs, ex.endNs);
    }
    this.events.exchangeDone(ex);
  }
}

const NO_BODY: BodyFraming = { kind: 'none' };

/** Why exchanges still open when Kong closed the socket did not finish, from the socket's state. */
function closeReason(conn: Connection, peerState: number): string {
  if (peerState & PeerState.Reset) return 'connection_reset';
  if (peerState & PeerState.Closed) return conn.direction === 'client' ? 'upstream_closed' : 'client_closed';
  return 'incomplete_response';
}

function directionOf(d: number): Direction | undefined {
  if (d === Dir.Server) return 'server';
  if (d === Dir.Client) return 'client';
  return undefined;
}

const REQUEST_LINE = /^[A-Z][A-Z_-]{0,19} \S+ HTTP\/1\.[01]\r?\n/;

/** A socket older than the agent: a request line read means Kong serves it, written means Kong calls out. */
function guessDirection(record: DataRecord): Direction | undefined {
  const start = record.data.toString('latin1', 0, Math.min(record.data.length, 2048));
  let isRequest: boolean;
  if (REQUEST_LINE.test(start)) isRequest = true;
  else if (start.startsWith('HTTP/1.')) isRequest = false;
  else return undefined;
  return isRequest === (record.op === Op.Read) ? 'server' : 'client';
}
