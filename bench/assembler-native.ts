/**
 * Native assembler microbenchmark: the addon's Assembler fed batches of realistic Kong traffic
 * (the traffic of the former TypeScript assembly benchmark: keep-alive connections, ~600-byte
 * request heads carrying a traceparent, ~300-byte response heads with Kong's X-Kong-* headers,
 * small bodies). One proxied request = 4 DATA records (client request read, upstream request
 * written, upstream response read, response written) -> 2 frames.
 *
 * Run: `node --import tsx bench/assembler-native.ts` (ASSEMBLER_BENCH_REPS, default 300 batches
 * of 1000 proxied requests). Prints the CPU time of the feed() calls per proxied request (records
 * in, frames out in a Buffer handed to JS) and their median. The loop yields to the event loop
 * between batches, untimed, as a real consumer does: that is when the buffers JS dropped go
 * back to the addon's pool (fresh memory costs more than assembling on a VM).
 */
import { createAssembler } from '../src/capture/native';
import { Direction, Op } from '../src/capture/records';
import { batchOf, connOpenRecord, dataRecord, TEST_BASE_NS } from '../test/unit/helpers/records';

const CONNECTIONS = 32;
const REQUESTS_PER_BATCH = 1000;
const RECORD_GAP_NS = 2000n;
const PID = 4242;

function hex(n: number, width: number): string {
  let s = '';
  let x = n >>> 0;
  while (s.length < width) {
    x = (Math.imul(x, 2654435761) + 0x9e3779b9) >>> 0;
    s += x.toString(16).padStart(8, '0');
  }
  return s.slice(0, width);
}

function clientRequest(i: number): string {
  return (
    `GET /api/v1/orders/${1000 + i}?expand=items&page=2 HTTP/1.1\r\n` +
    'Host: api.example.com\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n' +
    'Accept: application/json\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Accept-Language: en-US,en;q=0.9\r\n' +
    `traceparent: 00-${hex(i, 32)}-${hex(i + 7, 16)}-01\r\n` +
    'tracestate: vendor=abc\r\n' +
    'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.x\r\n' +
    'Connection: keep-alive\r\n\r\n'
  );
}

function upstreamRequest(i: number): string {
  return (
    `GET /orders/${1000 + i}?expand=items&page=2 HTTP/1.1\r\n` +
    'Host: orders.internal:8080\r\n' +
    'Connection: keep-alive\r\n' +
    'X-Forwarded-For: 10.1.2.3\r\n' +
    'X-Forwarded-Proto: https\r\n' +
    'X-Forwarded-Host: api.example.com\r\n' +
    'X-Forwarded-Port: 443\r\n' +
    'X-Forwarded-Path: /api/v1/orders\r\n' +
    'X-Real-IP: 10.1.2.3\r\n' +
    `X-Kong-Request-Id: ${hex(i + 3, 32)}\r\n` +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n' +
    'Accept: application/json\r\n' +
    `traceparent: 00-${hex(i, 32)}-${hex(i + 11, 16)}-01\r\n` +
    'tracestate: vendor=abc\r\n\r\n'
  );
}

const BODY = '{"id":1042,"status":"shipped","items":[{"sku":"A-1","qty":2}]}';

function upstreamResponse(): string {
  return (
    'HTTP/1.1 200 OK\r\n' +
    'Server: gunicorn\r\n' +
    'Date: Tue, 24 Nov 2026 12:00:00 GMT\r\n' +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${BODY.length}\r\n` +
    'Connection: keep-alive\r\n' +
    'Cache-Control: no-store\r\n\r\n' +
    BODY
  );
}

function kongResponse(i: number): string {
  return (
    'HTTP/1.1 200 OK\r\n' +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${BODY.length}\r\n` +
    'Connection: keep-alive\r\n' +
    'Date: Tue, 24 Nov 2026 12:00:00 GMT\r\n' +
    'Cache-Control: no-store\r\n' +
    `X-Kong-Upstream-Latency: ${i % 17}\r\n` +
    `X-Kong-Proxy-Latency: ${i % 3}\r\n` +
    'Via: kong/3.4.2\r\n' +
    `X-Kong-Request-Id: ${hex(i + 3, 32)}\r\n\r\n` +
    BODY
  );
}

/** One batch of REQUESTS_PER_BATCH proxied requests spread over CONNECTIONS keep-alive pairs. */
function buildBatch(rep: number): Buffer {
  const records: Buffer[] = [];
  let t = TEST_BASE_NS + BigInt(rep) * BigInt(REQUESTS_PER_BATCH * 4 + 1) * RECORD_GAP_NS;
  const rec = (connId: number, op: number, direction: number, bytes: string): void => {
    t += RECORD_GAP_NS;
    records.push(dataRecord({ pid: PID, ktimeNs: t, connId, op, direction, bytes }));
  };
  for (let i = 0; i < REQUESTS_PER_BATCH; i++) {
    const c = i % CONNECTIONS;
    rec(1 + c, Op.Read, Direction.Server, clientRequest(i));
    rec(1001 + c, Op.Write, Direction.Client, upstreamRequest(i));
    rec(1001 + c, Op.Read, Direction.Client, upstreamResponse());
    rec(1 + c, Op.Write, Direction.Server, kongResponse(i));
  }
  return batchOf(records);
}

async function main(): Promise<void> {
  const reps = Number(process.env.ASSEMBLER_BENCH_REPS ?? '300');
  const assembler = createAssembler();
  const opens: Buffer[] = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    opens.push(
      connOpenRecord({ pid: PID, connId: 1 + c, direction: Direction.Server, localPort: 8000, peerPort: 40000 + c }),
      connOpenRecord({ pid: PID, connId: 1001 + c, direction: Direction.Client, localPort: 50000 + c, peerPort: 8080 }),
    );
  }
  assembler.feed(batchOf(opens));
  // Distinct timestamps per batch, built up front: only feed() is timed.
  const batches = Array.from({ length: Math.min(reps, 16) }, (_, i) => buildBatch(i));
  for (let i = 0; i < 20; i++) assembler.feed(batches[i % batches.length]); // warm-up
  let frames = 0;
  const wall: number[] = [];
  let cpuUs = 0;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    frames += assembler.feed(batches[i % batches.length]).length;
    wall.push(Number(process.hrtime.bigint() - t0));
    const c = process.cpuUsage(c0);
    cpuUs += c.user + c.system;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const all = process.cpuUsage(cpu0);
  const s = assembler.stats();
  const requests = reps * REQUESTS_PER_BATCH;
  if (s.inFlight !== 0 || s.protocolErrors !== 0) throw new Error(`unexpected state: ${JSON.stringify(s)}`);
  wall.sort((a, b) => a - b);
  const cpuNs = (cpuUs * 1000) / requests;
  const allNs = ((all.user + all.system) * 1000) / requests;
  process.stdout.write(
    `native assembler: feed() ${cpuNs.toFixed(0)} ns CPU per proxied request (4 records -> 2 frames), ` +
      `median ${(wall[wall.length >> 1] / REQUESTS_PER_BATCH).toFixed(0)} ns wall; process ${allNs.toFixed(0)} ns CPU ` +
      `(GC and event loop included); ${s.exchanges} exchanges, ${(frames / reps / 1024).toFixed(0)} KiB of frames per batch\n`,
  );
}

void main();
