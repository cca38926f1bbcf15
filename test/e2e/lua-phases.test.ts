/**
 * With NGINX_UPROBES and LUA_UPROBES on, the agent attributes the time the Kong-shaped gateway
 * spends in its Lua phases (rewrite, access, header_filter) to each request it serves.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startAgent, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';

const PROXY_PORT = 19150;
const UPSTREAM_PORT = 19152;
const REQUESTS = 50;

describe("Kong's Lua phases from the uprobes", () => {
  let upstream: Upstream;
  let gateway: Gateway;
  let agent: AgentProcess;

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({ proxyPort: PROXY_PORT, upstreamPort: UPSTREAM_PORT, workers: 1 });
    agent = startAgent({ KONG_PREFIX: gateway.prefix, NGINX_UPROBES: 'true', LUA_UPROBES: 'true' });
    await agent.waitFor((l) => l.msg === 'uprobes attached', 20_000, 'uprobes attached');
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < REQUESTS; i++) {
      await new Promise<void>((resolve, reject) => {
        http
          .get({ port: PROXY_PORT, path: `/api/lua${i}/status/200`, agent: keepAlive }, (res) => {
            res.resume();
            res.on('end', resolve);
          })
          .on('error', reject);
      });
    }
    keepAlive.destroy();
    await agent.waitQuiet(1000, 20_000);
  });

  after(async () => {
    agent?.saveOutput('lua-phases');
    await agent?.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  it('every served request carries its Lua time', () => {
    const served = agent.requests('server').filter((l) => String(l.path).startsWith('/api/lua'));
    assert.equal(served.length, REQUESTS, 'every request reported');
    const withLua = served.filter((l) => typeof l.kong_lua_ns === 'number' && l.kong_lua_ns > 0);
    assert.equal(withLua.length, REQUESTS, `${withLua.length} of ${REQUESTS} requests carry kong_lua_ns`);
    for (const l of withLua) {
      assert.ok((l.kong_lua_ns as number) < (l.response_time_ns as number), 'Lua time is part of the request time');
    }
  });
});
