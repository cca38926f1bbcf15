/**
 * Every request nginx answers is reported, as nginx logged it, and nothing nginx did not serve is
 * invented. Requests no well-behaved client sends, against the Kong-shaped gateway; the agent's
 * request lines must match the access log one to one: count, method as sent, path, status.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { inParallel, sendRaw } from '../fixture/raw-client';

const PROXY_PORT = 19140;
const ADMIN_PORT = 19141;
const UPSTREAM_PORT = 19142;
const H = 'Host: kong.test\r\n';
const SLOWLORIS = 250;
const GARBAGE = 500;

/** An access-log line read loosely: nginx logs the raw request line, whatever it holds. */
interface Logged {
  method: string;
  path: string;
  status: number;
}

const LINE = /^\d+\.\d+ \d+ \d+ "(.*)" (\d{3}) /;

function readLog(path: string): Logged[] {
  const out: Logged[] = [];
  for (const line of readFileSync(path, 'latin1').split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const request = m[1].replace(/\\x([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    const sp = request.indexOf(' ');
    const method = sp < 0 ? request : request.slice(0, sp);
    let target = sp < 0 ? '' : request.slice(sp + 1);
    const version = / HTTP\/\d\.\d$/.exec(target);
    if (version) target = target.slice(0, version.index);
    const q = target.indexOf('?');
    out.push({ method, path: q < 0 ? target : target.slice(0, q), status: Number(m[2]) });
  }
  return out;
}

/** nginx logs binary garbage as it came; the agent reports it with no path and the method _OTHER. */
const isGarbage = (method: string): boolean => !/^[\x21-\x7e]+$/.test(method);
const isReportedGarbage = (l: AgentLine): boolean => l.method === '_OTHER' && l.path === '';
/** The agent keeps the first 64 bytes of a method (KW_MAX_METHOD_TEXT). */
const METHOD_KEPT = 64;

describe('malformed requests: reported as nginx logged them, nothing invented', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let agent: AgentProcess;
  let logged: Logged[];
  let reported: AgentLine[];

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({
      proxyPort: PROXY_PORT,
      adminPort: ADMIN_PORT,
      upstreamPort: UPSTREAM_PORT,
      workers: 2,
    });
    agent = startAgent({ KONG_PREFIX: gateway.prefix });
    await agent.waitForMonitored(gateway.workerPids());
    const P = PROXY_PORT;
    const single: (string | Buffer)[] = [
      `GET /api/m1/${'a'.repeat(65536)} HTTP/1.1\r\n${H}\r\n`, // 414, head never complete
      `GET /api/m2/${'a'.repeat(1 << 20)} HTTP/1.1\r\n${H}\r\n`, // 414, nginx stops reading
      `GET /api/m3 HTTP/1.1\r\n${H}X-Big: ${'b'.repeat(20000)}\r\n\r\n`, // 400, one header too large
      `G@T /api/m4 HTTP/1.1\r\n${H}\r\n`,
      `get /api/m5 HTTP/1.1\r\n${H}\r\n`,
      `GET /api/m6 b HTTP/1.1\r\n${H}\r\n`, // a space in the URI
      `${'A'.repeat(200)} /api/m7 HTTP/1.1\r\n${H}\r\n`,
      `GET /api/m8/status/200\r\n`, // HTTP/0.9: a bare body back, then close
      `GET /api/m9 HTTP/2.0\r\n${H}\r\n`, // 505
      `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, // an h2c preface on an HTTP/1 port
      // smuggling: nginx answers 400 and closes; the second request must not be invented
      `POST /api/m10 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\nGET /api/m10/smuggled HTTP/1.1\r\n${H}\r\n`,
      `POST /api/m11 HTTP/1.1\r\n${H}Content-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/m11/smuggled HTTP/1.1\r\n${H}\r\n`,
      `POST /api/m12 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, // bad chunk size
      `POST /api/m13 HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, // duplicate length
    ];
    for (const data of single) await sendRaw(P, data);
    // 100 pipelined in one write, the last one closing the connection.
    const hundred = Array.from(
      { length: 100 },
      (_, i) => `GET /api/p${i}/status/${200 + (i % 4)} HTTP/1.1\r\n${H}${i === 99 ? 'Connection: close\r\n' : ''}\r\n`,
    );
    await sendRaw(P, hundred.join(''), { lingerMs: 10_000 });
    // 50 pipelined with garbage at #25: nginx answers 24, then 400, and closes.
    const fifty = Array.from({ length: 50 }, (_, i) =>
      i === 24 ? '\x16\x03\x01\xff\xfe garbage\r\n\r\n' : `GET /api/g${i}/status/200 HTTP/1.1\r\n${H}\r\n`,
    );
    await sendRaw(P, fifty.join(''), { lingerMs: 10_000 });
    // Slowloris: heads cut short, clients gone (nginx logs 400).
    await inParallel([...Array(SLOWLORIS).keys()], 50, (i) =>
      sendRaw(P, `GET /api/s${i} HTTP/1.1\r\nHost: kong.test\r\nX-Slow: a`, { closeAfterMs: 200 }),
    );
    // Binary garbage connections (nginx logs 400).
    await inParallel([...Array(GARBAGE).keys()], 50, (i) =>
      sendRaw(P, Buffer.from([0x16, 0x03, 0x01, 0x20, 0xff, i & 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a])),
    );
    await agent.waitQuiet(1500, 30_000);
    const code = await agent.stop();
    assert.equal(code, 0, 'the agent exits 0');
    agent.saveOutput('malformed-requests');
    logged = readLog(gateway.accessLogPath);
    reported = agent.requests('server');
  });

  after(async () => {
    await agent?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('reports as many requests as nginx logged, with the same statuses', () => {
    const byStatus = (xs: { status: number }[]): Record<number, number> => {
      const out: Record<number, number> = {};
      for (const x of xs) out[x.status] = (out[x.status] ?? 0) + 1;
      return out;
    };
    assert.ok(logged.length >= 14 + 100 + 25 + SLOWLORIS + GARBAGE, `nginx logged ${logged.length} requests`);
    assert.deepEqual(
      byStatus(reported.map((l) => ({ status: l.status_code as number }))),
      byStatus(logged),
      'requests per status: agent vs access log',
    );
    assert.equal(reported.length, logged.length, 'same count as the access log');
  });

  it('reports each request with its method as sent and its path', () => {
    const garbage = logged.filter((e) => isGarbage(e.method)).length;
    assert.equal(reported.filter(isReportedGarbage).length, garbage, 'binary garbage answered 400, reported');
    const key = (method: string, path: string, status: number): string => `${method} ${path} ${status}`;
    const want = new Map<string, number>();
    for (const e of logged) {
      if (isGarbage(e.method)) continue;
      // nginx logs the whole long URI; the agent keeps a bounded prefix of it
      const k = key(e.method.slice(0, METHOD_KEPT), e.path.slice(0, 1024), e.status);
      want.set(k, (want.get(k) ?? 0) + 1);
    }
    const missing: string[] = [];
    for (const l of reported) {
      if (isReportedGarbage(l)) continue;
      const k = key(String(l.method), String(l.path).slice(0, 1024), l.status_code as number);
      const n = want.get(k) ?? 0;
      if (n === 0) missing.push(`reported but not logged: ${k.slice(0, 120)}`);
      else want.set(k, n - 1);
    }
    for (const [k, n] of want) if (n > 0) missing.push(`logged but not reported (${n}x): ${k.slice(0, 120)}`);
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} differences`);
  });

  it('invents nothing: no smuggled request, no request after a closing answer', () => {
    const phantom = reported.filter((l) => String(l.path).includes('smuggled'));
    assert.deepEqual(phantom, [], 'requests nginx never served');
    const afterGarbage = reported.filter((l) => /^\/api\/g(2[5-9]|[34]\d)\//.test(String(l.path)));
    assert.deepEqual(afterGarbage, [], 'pipelined requests after the garbage nginx closed on');
  });

  it('pairs 100 pipelined requests with their own answers', () => {
    const pipelined = reported.filter((l) => /^\/api\/p\d+\//.test(String(l.path)));
    assert.equal(pipelined.length, 100, 'all 100 reported');
    for (const l of pipelined) {
      const i = Number(/^\/api\/p(\d+)\//.exec(String(l.path))![1]);
      assert.equal(l.status_code, 200 + (i % 4), `request ${i}: its own status`);
    }
  });

  it('marks heads cut short and unknown methods the way the outputs need', () => {
    const slow = reported.filter((l) => /^\/api\/s\d+$/.test(String(l.path)));
    assert.equal(slow.length, SLOWLORIS, 'every slowloris connection reported');
    for (const l of slow) {
      assert.equal(l.status_code, 400, `${l.path}: nginx's 400`);
      assert.equal(l.error_code, 'incomplete_request', `${l.path}: error code`);
    }
    const odd = reported.find((l) => l.path === '/api/m4');
    assert.equal(odd?.method, 'G@T', 'the method as sent');
    const h09 = reported.find((l) => l.path === '/api/m8/status/200');
    assert.equal(h09?.status_code, 200, 'HTTP/0.9 answered 200');
    assert.equal(h09?.protocol, 'HTTP/0.9', 'HTTP/0.9 protocol');
  });
});
