/**
 * Request-assembly microbenchmark: decodeBatch -> RequestPipeline -> a sink that does nothing,
 * over synthetic batches of realistic Kong traffic (keep-alive connections; ~400-byte request
 * heads carrying a traceparent, ~300-byte response heads with Kong's X-Kong-* headers, small
 * bodies; 4 DATA records per proxied request = 2 exchanges). No kernel, no export: what is
 * left is the cost of decoding and of turning bytes into HttpExchange objects.
 *
 * Run: `node --import tsx bench/assembly-micro.ts` (ASSEMBLY_MICRO_REPS, default 300 batches of
 * 1000 proxied requests). Profile: `node --cpu-prof --cpu-prof-dir=/tmp/kw-prof --import tsx
 * bench/assembly-micro.ts`. Prints ns per exchange for decode alone and decode + assembly.
 */
import { decodeBatch } from '../src/capture/decoder';
import { Direction, Op } from '../src/capture/records';
import { RequestPipeline } from '../src/requests/pipeline';
import type { ExchangeSink } from '../src/requests/types';
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
function buildBatch(): { opens: Buffer; batch: Buffer; spanNs: bigint } {
  const opens: Buffer[] = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    opens.push(
      connOpenRecord({ pid: PID, connId: 1 + c, direction: Direction.Server, localPort: 8000, peerPort: 40000 + c }),
      connOpenRecord({ pid: PID, connId: 1001 + c, direction: Direction.Client, localPort: 50000 + c, peerPort: 8080 }),
    );
  }
  const records: Buffer[] = [];
  let t = TEST_BASE_NS;
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
  return { opens: batchOf(opens), batch: batchOf(records), spanNs: t - TEST_BASE_NS + RECORD_GAP_NS };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  const reps = Number(process.env.ASSEMBLY_MICRO_REPS ?? '300');
  const { opens, batch, spanNs } = buildBatch();
  const exchangesPerBatch = REQUESTS_PER_BATCH * 2;
  let done = 0;
  const sink: ExchangeSink = { onExchange: () => void done++ };
  const pipeline = new RequestPipeline(sink, {});
  // Each repetition replays the same bytes later in time: a smaller clock base shifts every
  // timestamp forward without restamping the batch.
  let base = TEST_BASE_NS;
  decodeBatch(opens, base, (r) => pipeline.handle(r));

  const time = (visit: (clockBase: bigint) => void): number[] => {
    const perBatch: number[] = [];
    for (let i = 0; i < reps; i++) {
      base -= spanNs;
      const t0 = process.hrtime.bigint();
      visit(base);
      perBatch.push(Number(process.hrtime.bigint() - t0) / exchangesPerBatch);
    }
    return perBatch;
  };
  const noop = (): void => undefined;
  time((b) => decodeBatch(batch, b, noop)); // warm-up
  time((b) => decodeBatch(batch, b, (r) => pipeline.handle(r)));
  const decode = time((b) => decodeBatch(batch, b, noop));
  const cpu0 = process.cpuUsage();
  done = 0;
  const full = time((b) => decodeBatch(batch, b, (r) => pipeline.handle(r)));
  const cpu = process.cpuUsage(cpu0);
  if (done !== reps * exchangesPerBatch) throw new Error(`expected ${reps * exchangesPerBatch} exchanges, got ${done}`);
  const d = median(decode);
  const f = median(full);
  const userNs = (cpu.user * 1000) / done;
  process.stdout.write(
    `ns/exchange (median of ${reps} batches): decode ${d.toFixed(0)}, decode+assembly ${f.toFixed(0)}, ` +
      `assembly ${(f - d).toFixed(0)}; user CPU ${userNs.toFixed(0)} ns/exchange (decode+assembly)\n`,
  );
}

main();
