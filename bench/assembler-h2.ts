/**
 * Native assembler microbenchmark, HTTP/2: the addon's Assembler fed batches of h2 traffic as Kong
 * proxies it to an HTTP/1.1 upstream. The downstream bytes are real: a node:http2 client and server
 * (nghttp2's HPACK encoder: Huffman, dynamic table) recorded once, 1000 requests per connection
 * (nginx's default keepalive_requests), browser-like request headers with a traceparent each,
 * Kong's response headers. Each of 32 connections replays the recording from its preface; one
 * that reaches the end is closed and a new one opened. One proxied request = HEADERS read,
 * upstream request written, upstream response read, response HEADERS + DATA written -> 2 frames.
 *
 * Run: `node --import tsx bench/assembler-h2.ts` (ASSEMBLER_BENCH_REPS, default 200 batches of
 * 1000 proxied requests). Prints the CPU time of the feed() calls per proxied request, as
 * bench/assembler-native.ts does for HTTP/1.1. ASSEMBLER_BENCH_DUMP=<file> also writes every
 * record fed, [u32 LE size][record], for bench/assembler-replay.cc (the assembler alone, profiled).
 */
import fs from 'node:fs';
import http2 from 'node:http2';
import { Duplex } from 'node:stream';
import { createAssembler } from '../src/capture/native';
import { Direction, Op } from '../src/capture/records';
import { batchOf, connCloseRecord, connOpenRecord, dataRecord, TEST_BASE_NS } from '../test/unit/helpers/records';

const CONNECTIONS = 32;
const REQUESTS_PER_CONNECTION = 1000;
const REQUESTS_PER_BATCH = 1000;
const RECORD_GAP_NS = 2000n;
const PID = 4242;
const BODY = '{"id":1042,"status":"shipped","items":[{"sku":"A-1","qty":2}]}';
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';

function hex(n: number, width: number): string {
  let s = '';
  let x = n >>> 0;
  while (s.length < width) {
    x = (Math.imul(x, 2654435761) + 0x9e3779b9) >>> 0;
    s += x.toString(16).padStart(8, '0');
  }
  return s.slice(0, width);
}

/** The bytes of one request on the recorded connection: what the client sent, what the server sent. */
interface Exchange {
  client: Buffer[];
  server: Buffer[];
}

/** A node:http2 conversation of REQUESTS_PER_CONNECTION sequential requests, per request. */
async function record(): Promise<{ preface: Exchange; requests: Exchange[] }> {
  let current: Exchange = { client: [], server: [] };
  class End extends Duplex {
    peer?: End;
    constructor(private readonly side: 'client' | 'server') {
      super();
    }
    _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
      current[this.side].push(Buffer.from(chunk));
      this.peer!.push(chunk);
      cb();
    }
    _read(): void {}
  }
  const a = new End('client');
  const b = new End('server');
  a.peer = b;
  b.peer = a;
  const server = http2.createServer();
  let n = 0;
  server.on('stream', (stream) => {
    const i = n++;
    stream.respond({
      ':status': 200,
      'content-type': 'application/json',
      'content-length': String(BODY.length),
      date: 'Tue, 24 Nov 2026 12:00:00 GMT',
      'cache-control': 'no-store',
      'x-kong-upstream-latency': String(i % 17),
      'x-kong-proxy-latency': String(i % 3),
      via: 'kong/3.4.2',
      'x-kong-request-id': hex(i + 3, 32),
    });
    stream.end(BODY);
  });
  server.emit('connection', b);
  const session = http2.connect('https://api.example.com', { createConnection: () => a });
  await new Promise<void>((resolve) => session.once('connect', () => resolve()));
  await new Promise((resolve) => setTimeout(resolve, 20));
  const preface = current;
  const requests: Exchange[] = [];
  for (let i = 0; i < REQUESTS_PER_CONNECTION; i++) {
    current = { client: [], server: [] };
    await new Promise<void>((resolve, reject) => {
      const req = session.request({
        ':path': `/api/v1/orders/${1000 + i}?expand=items&page=2`,
        'user-agent': UA,
        accept: 'application/json',
        'accept-encoding': 'gzip, deflate, br',
        'accept-language': 'en-US,en;q=0.9',
        traceparent: `00-${hex(i, 32)}-${hex(i + 7, 16)}-01`,
        tracestate: 'vendor=abc',
        authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.x',
      });
      req.on('data', () => {});
      req.on('end', () => resolve());
      req.on('error', reject);
      req.end();
    });
    requests.push(current);
  }
  session.destroy();
  server.close();
  return { preface, requests };
}

function upstreamRequest(i: number): string {
  return (
    `GET /orders/${1000 + i}?expand=items&page=2 HTTP/1.1\r\n` +
    'Host: orders.internal:8080\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.1.2.3\r\n' +
    'X-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.com\r\nX-Forwarded-Port: 443\r\n' +
    `X-Real-IP: 10.1.2.3\r\nUser-Agent: ${UA}\r\nAccept: application/json\r\n` +
    `traceparent: 00-${hex(i, 32)}-${hex(i + 11, 16)}-01\r\ntracestate: vendor=abc\r\n\r\n`
  );
}

const UPSTREAM_RESPONSE =
  'HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: Tue, 24 Nov 2026 12:00:00 GMT\r\n' +
  `Content-Type: application/json\r\nContent-Length: ${BODY.length}\r\nConnection: keep-alive\r\n\r\n${BODY}`;

/** Per downstream slot: the connection id it uses now and how far into the recording it is. */
interface Slot {
  connId: number;
  next: number;
}

async function main(): Promise<void> {
  const reps = Number(process.env.ASSEMBLER_BENCH_REPS ?? '200');
  const rec = await record();
  const assembler = createAssembler();
  let nextConnId = 1;
  let t = TEST_BASE_NS;
  const slots: Slot[] = [];
  const opening: Buffer[] = [];
  const open = (slot: number, out: Buffer[]): number => {
    const connId = nextConnId++;
    t += RECORD_GAP_NS;
    out.push(
      connOpenRecord({
        pid: PID,
        ktimeNs: t,
        connId,
        direction: Direction.Server,
        localPort: 8443,
        peerPort: 40000 + slot,
      }),
    );
    for (const b of rec.preface.client) out.push(data(connId, Op.Read, b));
    for (const b of rec.preface.server) out.push(data(connId, Op.Write, b));
    return connId;
  };
  const data = (connId: number, op: number, bytes: Buffer | string, direction: number = Direction.Server): Buffer => {
    t += RECORD_GAP_NS;
    return dataRecord({ pid: PID, ktimeNs: t, connId, op, direction, bytes, tls: direction === Direction.Server });
  };
  for (let c = 0; c < CONNECTIONS; c++) {
    slots.push({ connId: open(c, opening), next: 0 });
    t += RECORD_GAP_NS;
    opening.push(
      connOpenRecord({
        pid: PID,
        ktimeNs: t,
        connId: 100000 + c,
        direction: Direction.Client,
        localPort: 50000 + c,
        peerPort: 8080,
      }),
    );
  }
  assembler.feed(batchOf(opening));
  // Built up front: only feed() is timed.
  let request = 0;
  const batches: Buffer[] = [];
  for (let b = 0; b < reps + 20; b++) {
    const records: Buffer[] = [];
    for (let k = 0; k < REQUESTS_PER_BATCH; k++, request++) {
      const c = request % CONNECTIONS;
      const slot = slots[c];
      if (slot.next === rec.requests.length) {
        t += RECORD_GAP_NS;
        records.push(connCloseRecord({ pid: PID, ktimeNs: t, connId: slot.connId }));
        slot.connId = open(c, records);
        slot.next = 0;
      }
      const ex = rec.requests[slot.next++];
      for (const bytes of ex.client) records.push(data(slot.connId, Op.Read, bytes));
      records.push(data(100000 + c, Op.Write, upstreamRequest(request), Direction.Client));
      records.push(data(100000 + c, Op.Read, UPSTREAM_RESPONSE, Direction.Client));
      for (const bytes of ex.server) records.push(data(slot.connId, Op.Write, bytes));
    }
    batches.push(batchOf(records));
  }
  if (process.env.ASSEMBLER_BENCH_DUMP) {
    fs.writeFileSync(process.env.ASSEMBLER_BENCH_DUMP, Buffer.concat([batchOf(opening), ...batches]));
  }
  for (let i = 0; i < 20; i++) assembler.feed(batches[i]); // warm-up
  let cpuUs = 0;
  const wall: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 20; i < batches.length; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    assembler.feed(batches[i]);
    wall.push(Number(process.hrtime.bigint() - t0));
    const c = process.cpuUsage(c0);
    cpuUs += c.user + c.system;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const all = process.cpuUsage(cpu0);
  const s = assembler.stats();
  if (s.protocolErrors !== 0 || s.lostHeads !== 0 || s.unmatchedAttempts !== 0) {
    throw new Error(`unexpected state: ${JSON.stringify(s)}`);
  }
  const requests = reps * REQUESTS_PER_BATCH;
  wall.sort((a, b) => a - b);
  const perRecord = (
    rec.requests.reduce((n, e) => n + e.client.length + e.server.length, 0) / rec.requests.length +
    2
  ).toFixed(1);
  process.stdout.write(
    `native assembler, HTTP/2 downstream: feed() ${((cpuUs * 1000) / requests).toFixed(0)} ns CPU per proxied request ` +
      `(${perRecord} records -> 2 frames), median ${(wall[wall.length >> 1] / REQUESTS_PER_BATCH).toFixed(0)} ns wall; ` +
      `process ${(((all.user + all.system) * 1000) / requests).toFixed(0)} ns CPU; ${s.exchanges} exchanges\n`,
  );
}

void main();
