/**
 * Kong's TLS listener, seen in plaintext through the TLS uprobes (TLS_UPROBES, on by default): the
 * Kong-shaped gateway with Kong's default `listen <port> ssl http2`, an https service behind the
 * /tls route, and the mixed traffic over TLS with HTTP/1.1 (ALPN http/1.1) next to a smaller
 * plaintext run. nginx's access log is the oracle, as in capture.test.ts: every line matched one to
 * one, durations within 2 ms, traces continued, upstream attempts (https ones included) parented.
 * The OTLP spans show url.scheme taken from each connection. Twice: with nginx's own TLS recv/send
 * (the default), and with OpenSSL's calls (TLS_UPROBES=openssl, what an nginx without those
 * symbols gets). A keep-alive TLS connection opened before the agent shows the difference: nginx's
 * calls report its next requests, OpenSSL's cannot tie it to its socket and count it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import {
  assertAbortedReported,
  assertTracesContinued,
  pathOf,
  readAccessLog,
  type AccessLogEntry,
} from '../fixture/access-log';
import { startAgent, type AgentLine, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../fixture/otlp-receiver';
import { ResponseReader } from '../fixture/response-reader';
import { runMixedTraffic, type SentRequest, type TrafficSummary } from '../fixture/traffic';

const PROXY_PORT = 19180;
const TLS_PORT = 19181;
const ADMIN_PORT = 19182;
const UPSTREAM_PORT = 19183;
const UPSTREAM_TLS_PORT = 19184;
const RECEIVER_PORT = 19185;
/** ids of the plaintext run's requests start here; the TLS run's start at 1 */
const PLAIN_FIRST_ID = 100_000;
/** no route: Kong answers 404 itself, so no upstream connection is involved */
const PRE_ATTACH_PATH = '/pre-attach';
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;

interface Mode {
  key: string;
  title: string;
  env: Record<string, string>;
  /** the "tls" field of the agent's "uprobes attached" line */
  source: string;
  /** TLS requests of the mixed traffic (the plaintext run is a fifth of it) */
  requests: number;
  seed: number;
  /** the requests of a TLS connection older than the agent are reported (else counted unlinked) */
  preAttachReported: boolean;
}

const MODES: Mode[] = [
  {
    key: 'nginx',
    title: "nginx's ngx_ssl_recv/ngx_ssl_write (the default)",
    env: {},
    source: 'ngx_ssl_recv/ngx_ssl_write',
    requests: 1500,
    seed: 23,
    preAttachReported: true,
  },
  {
    key: 'openssl',
    title: "OpenSSL's SSL_read/SSL_write (TLS_UPROBES=openssl)",
    env: { TLS_UPROBES: 'openssl' },
    source: 'OpenSSL',
    requests: 800,
    seed: 31,
    preAttachReported: false,
  },
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The request's /r<id> segment, which routes keep when they rewrite the path. */
const requestId = (path: unknown): number | undefined => {
  const m = /\/r(\d+)(?=[/?]|$)/.exec(String(path));
  return m ? Number(m[1]) : undefined;
};
const overTls = (id: number | undefined): boolean => id !== undefined && id < PLAIN_FIRST_ID;
/** logs/fresh_start.log: "$request" -> when its Lua rewrite phase began (ms since the epoch). */
function readFreshStarts(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of fs.readFileSync(file, 'latin1').split('\n')) {
    const m = /^(\d+\.\d+) "(.*)"$/.exec(line);
    if (m) out.set(m[2], Number(m[1]));
  }
  return out;
}

/** An RFC 3339 time with up to nanoseconds, as ms since the epoch. */
const wallMs = (time: unknown): number => {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(String(time));
  return m ? Date.parse(`${m[1]}Z`) + Number(`0.${m[2] ?? '0'}`) * 1000 : NaN;
};

/** A keep-alive TLS connection: one request per call, answered before the next is sent. */
class KeepAliveTlsClient {
  private readonly socket: tls.TLSSocket;
  private readonly ready: Promise<void>;
  private readonly reader: ResponseReader;
  private waiting?: (status: number) => void;

  constructor(port: number) {
    this.socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('secureConnect', () => resolve());
      this.socket.once('error', reject);
    });
    this.reader = new ResponseReader((res) => this.waiting?.(res.status));
    this.socket.on('data', (d: Buffer) => this.reader.push(d));
  }

  async get(path: string): Promise<number> {
    await this.ready;
    this.reader.expect('GET');
    const status = new Promise<number>((resolve) => (this.waiting = resolve));
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${TLS_PORT}\r\nUser-Agent: kw-tls-test/1\r\n\r\n`);
    return status;
  }

  close(): void {
    this.socket.end();
  }
}

for (const mode of MODES) {
  describe(`TLS via ${mode.title}: agent request lines and spans vs the access log`, () => {
    // The shares of the mix: 93% of requests reach the access log with a path (burst and aborts
    // included), ~15% go to the https service, ~7% carry a W3C or B3 context the test can check.
    const least = (share: number): number => Math.floor(mode.requests * share);
    let upstream: Upstream;
    let upstreamTls: Upstream;
    let gateway: Gateway;
    let receiver: OtlpReceiver;
    let agent: AgentProcess;
    let tlsTraffic: TrafficSummary;
    let plainTraffic: TrafficSummary;
    let sent: Map<number, SentRequest>;
    let access: AccessLogEntry[];
    let spans: ReceivedSpan[];
    let exitCode: number | null;
    let preAttachStatuses: number[];

    before(async () => {
      upstream = await startUpstream({ port: UPSTREAM_PORT });
      upstreamTls = await startUpstream({ port: UPSTREAM_TLS_PORT, tls: true });
      gateway = await startGateway({
        proxyPort: PROXY_PORT,
        tlsPort: TLS_PORT,
        adminPort: ADMIN_PORT,
        upstreamPort: UPSTREAM_PORT,
        upstreamTlsPort: UPSTREAM_TLS_PORT,
        workers: 2,
      });
      receiver = await startOtlpReceiver({ port: RECEIVER_PORT });

      // A TLS session set up before the agent attaches (its SSL_set_fd is never seen).
      const preAttach = new KeepAliveTlsClient(TLS_PORT);
      preAttachStatuses = [await preAttach.get(`${PRE_ATTACH_PATH}/1`)];

      agent = startAgent({
        KONG_PREFIX: gateway.prefix,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${RECEIVER_PORT}`,
        OTEL_METRIC_EXPORT_INTERVAL: '1000',
        ...mode.env,
      });
      // TLS_UPROBES is on by default: every worker gets its TLS uprobes before traffic starts.
      for (const pid of gateway.workerPids()) {
        await agent.waitFor((l) => l.msg === 'uprobes attached' && l.pid === pid, 20_000, `uprobes of worker ${pid}`);
      }
      for (const n of [2, 3]) preAttachStatuses.push(await preAttach.get(`${PRE_ATTACH_PATH}/${n}`));
      preAttach.close();

      [tlsTraffic, plainTraffic] = await Promise.all([
        runMixedTraffic({
          port: TLS_PORT,
          tls: true,
          httpsUpstreamShare: 0.3,
          concurrency: 48,
          requests: mode.requests,
          burst: mode.requests / 5,
          seed: mode.seed,
        }),
        runMixedTraffic({
          port: PROXY_PORT,
          httpsUpstreamShare: 0.3,
          concurrency: 8,
          requests: mode.requests / 5,
          burst: mode.requests / 40,
          seed: mode.seed + 1,
          firstId: PLAIN_FIRST_ID,
        }),
      ]);
      sent = new Map([...tlsTraffic.requests, ...plainTraffic.requests].map((r) => [r.id, r]));
      await agent.waitQuiet(1500, 30_000);
      access = readAccessLog(gateway.accessLogPath).filter((e) => !e.target.startsWith(PRE_ATTACH_PATH));
      // Not-sampled callers (traceparent flags 00) get no span under parentbased_always_on.
      const unsampled = [...sent.values()].filter((r) => r.traceparent?.endsWith('-00')).length;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        if (receiver.spans().filter((s) => s.kind === SPAN_KIND_SERVER).length >= access.length - unsampled) break;
        await sleep(250);
      }
      await sleep(1500); // late CLIENT spans
      spans = receiver.spans();
      exitCode = await agent.stop();
    });

    after(async () => {
      agent?.saveOutput(`tls-${mode.key}`);
      await agent?.stop();
      await receiver?.stop();
      await gateway?.stop();
      await upstreamTls?.stop();
      await upstream?.stop();
    });

    it('ran cleanly, with both runs in the access log', () => {
      const errors = [...tlsTraffic.errors, ...plainTraffic.errors];
      assert.equal(errors.length, 0, `traffic errors: ${errors.slice(0, 5).join('; ')}`);
      assert.equal(exitCode, 0, 'the agent exits 0 on SIGTERM');
      assert.deepEqual(
        agent.lines.filter((l) => l.level === 'error'),
        [],
        'no error lines from the agent',
      );
      assert.deepEqual(
        agent.lines.filter((l) => /TLS|uprobes not attached/.test(l.msg) && l.level === 'warn'),
        [],
        'every TLS uprobe attached',
      );
      const attached = agent.lines.filter((l) => l.msg === 'uprobes attached');
      assert.deepEqual(
        attached.map((l) => l.tls),
        gateway.workerPids().map(() => mode.source),
        'each worker reads TLS plaintext from the calls the mode asks for',
      );
      const tlsLines = access.filter((e) => e.method === '' || overTls(requestId(e.target))).length;
      assert.ok(tlsLines >= least(0.93), `${tlsLines} TLS requests in the access log`);
      const plain = access.length - tlsLines;
      assert.ok(plain >= least(0.93 / 5), `${plain} plaintext requests in the access log`);
      const https = access.filter((e) => e.target.startsWith('/tls/')).length;
      assert.ok(https >= least(0.1), `${https} requests to the https service`);
    });

    it('reports every request nginx logged exactly once, with method, path and status', () => {
      const garbageLogged = access.filter((e) => e.method === '');
      const garbageSent = [...sent.values()].filter((r) => r.kind === 'garbage').length;
      assert.equal(garbageLogged.length, garbageSent, 'garbage lines (inside TLS sessions too) logged with 400');
      // The pre-attach connection's requests are checked on their own, below.
      const servers = agent.requests('server').filter((l) => !String(l.path).startsWith(PRE_ATTACH_PATH));
      const garbageReported = servers.filter((l) => l.path === '');
      assert.equal(garbageReported.length, garbageLogged.length, 'garbage answered by nginx, reported');

      const seen = new Map<string, AgentLine>();
      for (const line of servers) {
        if (line.path === '') continue;
        const key = `${line.method} ${line.path}`;
        assert.ok(!seen.has(key), `reported twice: ${key}`);
        seen.set(key, line);
      }
      const missing: string[] = [];
      const wrong: string[] = [];
      for (const e of access) {
        if (e.method === '') continue;
        const key = `${e.method} ${pathOf(e.target)}`;
        const line = seen.get(key);
        if (!line) {
          missing.push(`${key} ${e.status}`);
          continue;
        }
        seen.delete(key);
        if (line.status_code !== e.status) wrong.push(`${key}: agent ${line.status_code}, nginx ${e.status}`);
        const local = overTls(requestId(e.target)) ? TLS_PORT : PROXY_PORT;
        if (line.local !== `127.0.0.1:${local}`)
          wrong.push(`${key}: served on ${String(line.local)}, sent to ${local}`);
      }
      assert.deepEqual(missing.slice(0, 10), [], `${missing.length} requests in the access log were not reported`);
      assert.deepEqual([...seen.keys()].slice(0, 10), [], `${seen.size} reported requests are not in the access log`);
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} requests differ`);
      assert.equal(servers.length, access.length, 'same count as the access log');
    });

    // nginx starts $request_time at its event loop's cached time. A turn that runs many TLS handshakes
    // (and SSL uprobes) leaves it stale by several ms. The fixture logs when each request's Lua
    // rewrite phase began, read fresh: a request whose nginx start precedes that by more than 2 ms
    // has a stale oracle, and there the agent's start must lie between the two. Everywhere, the
    // agent's start precedes the rewrite phase, and its request lies inside the client's own
    // [first byte sent, response read] (without a request body: a body nginx did not need is read
    // and discarded after the answer, and the request ends then).
    it('measures durations within 2 ms of $request_time (99%), and where nginx was stale, within its bounds', (t) => {
      const byKey = new Map(agent.requests('server').map((l) => [`${l.method} ${l.path}`, l]));
      const fresh = readFreshStarts(gateway.freshStartLogPath);
      const off: string[] = [];
      const far: string[] = [];
      const outside: string[] = [];
      let compared = 0;
      let staleOracle = 0;
      for (const e of access) {
        const line = byKey.get(`${e.method} ${pathOf(e.target)}`);
        const id = requestId(e.target);
        if (!line || !overTls(id)) continue;
        compared++;
        const agentMs = (line.response_time_ns as number) / 1e6;
        const nginxMs = e.requestTime * 1000;
        const agentStart = wallMs(line.start_time);
        const agentEnd = wallMs(line.timestamp);
        const nginxStart = e.endMs - nginxMs;
        const rewriteStart = fresh.get(e.request);
        const text =
          `${e.method} ${e.target}: agent ${agentMs.toFixed(3)} ms, nginx ${nginxMs} ms (agent start ` +
          `${(agentStart - nginxStart).toFixed(1)} ms after nginx's, ` +
          `${rewriteStart === undefined ? '?' : (rewriteStart - agentStart).toFixed(1)} ms before rewrite; ` +
          `end ${(agentEnd - e.endMs).toFixed(1)} ms after nginx's)`;
        const r = id === undefined ? undefined : sent.get(id);
        // 1 ms: nginx, its Lua and the client print whole ms; the agent converts its clock once a second.
        if (r?.sentAtMs !== undefined && agentStart < r.sentAtMs - 1)
          outside.push(`${text}: starts before it was sent`);
        // A body nginx did not need (a 404 to a POST) is read, and discarded, after the answer.
        const bodyless = r?.requestBodyBytes === 0;
        // The end is stamped when ngx_ssl_write returns, after its write(2): a worker preempted in
        // between (a loaded machine) stamps it after the client read the answer. 2 ms, as durations.
        if (bodyless && r.doneAtMs !== undefined && agentEnd > r.doneAtMs + 2)
          outside.push(`${text}: ends after it was read`);
        if (rewriteStart !== undefined && agentStart > rewriteStart + 1) outside.push(`${text}: starts after rewrite`);
        if (Math.abs(agentMs - nginxMs) > 100) far.push(text);
        if (Math.abs(agentMs - nginxMs) <= 2) continue;
        const stale =
          rewriteStart !== undefined &&
          rewriteStart - nginxStart > 2 &&
          agentStart >= nginxStart - 1 &&
          Math.abs(agentEnd - e.endMs) <= 2;
        if (stale) staleOracle++;
        else off.push(text);
      }
      t.diagnostic(`${compared} compared: ${off.length} off by > 2 ms, ${staleOracle} where nginx's start was stale`);
      assert.ok(compared >= least(0.93), `${compared} TLS durations compared`);
      assert.ok(fresh.size >= least(0.93), `${fresh.size} fresh rewrite starts logged`);
      assert.ok(
        outside.length <= compared * 0.01,
        `${outside.length} of ${compared} requests outside their bounds: ${outside.slice(0, 10).join('; ')}`,
      );
      assert.ok(
        off.length <= compared * 0.01,
        `${off.length} of ${compared} durations differ by more than 2 ms (and ${staleOracle} more where nginx's ` +
          `start was stale): ${off.slice(0, 10).join('; ')}`,
      );
      assert.deepEqual(far, [], 'durations off by more than 100 ms');
    });

    it('marks aborted TLS clients with an error code instead of losing them', () => {
      assertAbortedReported(tlsTraffic.requests, agent.requests('server'), access);
    });

    it('reports upstream attempts, https ones included, parented to their server request (99%)', () => {
      const clients = agent.requests('client');
      const servers = new Map(agent.requests('server').map((l) => [l.span_id as string, l]));
      const proxied = access.filter((e) => /^\/(api|echo|svc|fail|tls)\//.test(e.target) && e.status !== 499);
      const proxiedHttps = proxied.filter((e) => e.target.startsWith('/tls/'));
      const clientsHttps = clients.filter((c) => c.peer === `127.0.0.1:${UPSTREAM_TLS_PORT}`);
      assert.ok(
        clients.length >= proxied.length * 0.99,
        `${clients.length} client exchanges for ${proxied.length} proxied requests`,
      );
      assert.ok(
        clientsHttps.length >= proxiedHttps.length * 0.99,
        `${clientsHttps.length} client exchanges to the https service for ${proxiedHttps.length} requests`,
      );
      const parentedOf = (list: AgentLine[]): number =>
        list.filter((c) => {
          const parent = servers.get(c.parent_span_id as string);
          return parent && c.trace_id === parent.trace_id && requestId(parent.path) === requestId(c.path);
        }).length;
      const parented = parentedOf(clients);
      const parentedHttps = parentedOf(clientsHttps);
      assert.ok(parented >= clients.length * 0.99, `${parented} of ${clients.length} client exchanges parented`);
      assert.ok(
        parentedHttps >= clientsHttps.length * 0.99,
        `${parentedHttps} of ${clientsHttps.length} https client exchanges parented`,
      );
    });

    it('continues incoming W3C and B3 traces over TLS', () => {
      const checked = assertTracesContinued(tlsTraffic.requests, agent.requests('server'));
      assert.ok(checked > least(0.07), `${checked} traced requests checked`);
    });

    it('takes url.scheme from each connection: https for TLS, http for plaintext, both ways', () => {
      const wrong: string[] = [];
      let servers = 0;
      let clients = 0;
      for (const s of spans) {
        const id = requestId(s.kind === SPAN_KIND_CLIENT ? s.attributes['url.full'] : s.attributes['url.path']);
        if (id === undefined) continue;
        if (s.kind === SPAN_KIND_SERVER) {
          servers++;
          const expected = overTls(id) ? 'https' : 'http';
          if (s.attributes['url.scheme'] !== expected)
            wrong.push(`SERVER r${id}: ${String(s.attributes['url.scheme'])}`);
        } else if (s.kind === SPAN_KIND_CLIENT) {
          clients++;
          const toHttps = s.attributes['network.peer.port'] === UPSTREAM_TLS_PORT;
          const scheme = toHttps ? 'https' : 'http';
          const full = String(s.attributes['url.full']);
          if (s.attributes['url.scheme'] !== scheme || !full.startsWith(`${scheme}://`)) {
            wrong.push(`CLIENT r${id}: ${String(s.attributes['url.scheme'])} ${full}`);
          }
        }
      }
      assert.ok(servers >= access.length * 0.9, `${servers} SERVER spans for ${access.length} access-log lines`);
      assert.ok(clients > 0, `${clients} CLIENT spans`);
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} spans with the wrong scheme`);
      const httpsClients = spans.filter((s) => s.kind === SPAN_KIND_CLIENT && s.attributes['url.scheme'] === 'https');
      assert.ok(httpsClients.length >= least(0.1), `${httpsClients.length} https CLIENT spans`);
    });

    it(
      mode.preAttachReported
        ? 'reports the next requests of a TLS connection that began before the agent'
        : 'counts the TLS connection that began before the agent, whose requests it cannot see',
      () => {
        assert.deepEqual(preAttachStatuses, [404, 404, 404], 'the pre-attach connection was served');
        const reported = agent.requests('server').filter((l) => String(l.path).startsWith(PRE_ATTACH_PATH));
        const stats = agent.lines.filter((l) => l.msg === 'stats');
        assert.ok(stats.length > 0, 'stats lines');
        const last = stats[stats.length - 1];
        if (mode.preAttachReported) {
          assert.deepEqual(
            reported.map((l) => `${String(l.path)} ${String(l.status_code)} ${String(l.local)}`),
            [`${PRE_ATTACH_PATH}/2 404 127.0.0.1:${TLS_PORT}`, `${PRE_ATTACH_PATH}/3 404 127.0.0.1:${TLS_PORT}`],
            'the requests read after the agent attached',
          );
          assert.equal(last.tls_unlinked, 0, 'nothing to link: the socket comes with each call');
        } else {
          assert.deepEqual(reported, [], 'requests on a TLS session older than the uprobes are not reported');
          assert.equal(last.tls_unlinked, 1, 'exactly that one TLS connection is counted as unlinked');
        }
        assert.equal(last.lost_events, 0, 'no events lost');
        assert.equal(last.requests, agent.requests('server').length, 'stats requests = request lines');
      },
    );
  });
}
