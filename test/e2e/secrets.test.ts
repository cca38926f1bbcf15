/**
 * No secret leaves the agent: requests carrying planted credentials in every place a client puts
 * them (headers, basic auth, query keys in their many spellings, `;` separators, arrays, an
 * encoded URL inside a value, path parameters) go through the real gateway; then every output —
 * the JSON request lines and every other log line, every exported span and metric attribute — is
 * scanned for the planted values.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAgent, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { startOtlpReceiver, type OtlpReceiver } from '../fixture/otlp-receiver';
import { sendRaw } from '../fixture/raw-client';

const PROXY_PORT = 19120;
const UPSTREAM_PORT = 19122;
const RECEIVER_PORT = 19125;

/** Each secret is unique, so that finding it anywhere names the request that leaked it. */
const secret = (n: number): string => `S3CR3T${n}x${Math.random().toString(36).slice(2, 8)}`;

describe('secrets never leave the agent', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let receiver: OtlpReceiver;
  let agent: AgentProcess;
  const planted: string[] = [];

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({ proxyPort: PROXY_PORT, upstreamPort: UPSTREAM_PORT, workers: 1 });
    receiver = await startOtlpReceiver({ port: RECEIVER_PORT });
    agent = startAgent({
      KONG_PREFIX: gateway.prefix,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${RECEIVER_PORT}`,
      OTEL_METRIC_EXPORT_INTERVAL: '500',
    });
    const worker = gateway.workerPids()[0];
    await agent.waitForMonitored([worker]);
    const s = (): string => {
      const v = secret(planted.length);
      planted.push(v);
      return v;
    };
    const targets = [
      `/api/q1?apikey=${s()}&api_key=${s()}&token=${s()}&password=${s()}&page=2`,
      `/api/q2?auth_token=${s()}&access-token=${s()}&private_token=${s()}&client-secret=${s()}&secret_key=${s()}`,
      `/api/q3?a=1;token=${s()};b=2`,
      `/api/q4?token[]=${s()}&password[0]=${s()}&user[password]=${s()}`,
      `/api/q5?redirect=https%3A%2F%2Fa.example%2F%3Ftoken%3D${s()}&x=1`,
      `/api/q6;jsessionid=${s()}/status/200`,
      `/api/q7?%74oken=${s()}&X-Amz-Signature=${s()}&code=${s()}&sessionid=${s()}`,
    ];
    for (const target of targets) {
      const head =
        `GET ${target} HTTP/1.1\r\nHost: kong.test\r\n` +
        `Authorization: Bearer ${s()}\r\nCookie: session=${s()}\r\nProxy-Authorization: Basic ${s()}\r\n` +
        `X-Api-Key: ${s()}\r\nConnection: close\r\n\r\n`;
      await sendRaw(PROXY_PORT, head);
    }
    await receiver.waitForSpans(2 * targets.length, 20_000);
    await agent.waitQuiet(1000, 20_000);
    await new Promise((r) => setTimeout(r, 1200)); // a metric export after the last request
    await agent.stop();
  });

  after(async () => {
    await agent?.stop();
    await receiver?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('the requests were reported, with their paths', () => {
    const paths = agent.requests('server').map((l) => String(l.path));
    for (const p of ['/api/q1', '/api/q3', '/api/q6;jsessionid=REDACTED/status/200']) {
      assert.ok(paths.includes(p), `${p} reported (got ${paths.join(', ')})`);
    }
  });

  it('no planted secret in any log line, span or metric', () => {
    const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));
    const outputs: [string, string][] = [
      ...agent.lines.map((l): [string, string] => [`log line ${String(l.msg)}`, JSON.stringify(l)]),
      ...agent.other.map((t): [string, string] => ['other output', t]),
      ...receiver.spans().map((sp): [string, string] => [`span ${sp.name}`, json(sp)]),
      ...receiver.metrics().map((m): [string, string] => [`metric ${m.name}`, json(m)]),
    ];
    assert.ok(outputs.length > 20, `${outputs.length} outputs scanned`);
    const leaks: string[] = [];
    for (const value of planted) {
      for (const [where, text] of outputs) if (text.includes(value)) leaks.push(`${value} in ${where}`);
    }
    assert.deepEqual(leaks, [], `${leaks.length} leaks`);
  });
});
