/**
 * Least privilege, proven: the agent runs as an unprivileged uid with exactly the capabilities
 * the manifests grant, and a missing capability is a clear message that names it. Also: the
 * agent starts while it takes a storm of signals (a profiler's SIGPROF), which used to make the
 * verifier give up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAgent, type AgentProcess } from '../fixture/agent-process';
import { startGateway, startUpstream, type Gateway, type Upstream } from '../fixture/gateway';
import { sendRaw } from '../fixture/raw-client';

const PROXY_PORT = 19160;
const UPSTREAM_PORT = 19162;

/** setpriv: uid/gid nobody, no supplementary groups, these capabilities ambient (so they survive exec). */
function asNobody(caps: string[]): string[] {
  const list = caps.map((c) => `+${c}`).join(',');
  return [
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    `--inh-caps=${list}`,
    `--ambient-caps=${list}`,
  ];
}

describe('privileges and start-up', () => {
  let upstream: Upstream;
  let gateway: Gateway;
  const agents: AgentProcess[] = [];

  before(async () => {
    upstream = await startUpstream({ port: UPSTREAM_PORT });
    gateway = await startGateway({ proxyPort: PROXY_PORT, upstreamPort: UPSTREAM_PORT, workers: 1 });
  });

  after(async () => {
    for (const a of agents) await a.stop();
    await gateway?.stop();
    await upstream?.stop();
  });

  // tracefs is mode 0700 root: uid 0 (the manifests) reads it with CAP_BPF + CAP_PERFMON +
  // CAP_SYS_PTRACE alone; any other uid also needs CAP_DAC_READ_SEARCH.
  it('runs as uid 65534 with CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, and reports requests', async () => {
    const agent = startAgent(
      { KONG_PREFIX: gateway.prefix },
      { wrap: asNobody(['bpf', 'perfmon', 'sys_ptrace', 'dac_read_search']) },
    );
    agents.push(agent);
    const worker = gateway.workerPids()[0];
    await agent.waitForMonitored([worker], 30_000);
    await sendRaw(PROXY_PORT, 'GET /api/priv/status/200 HTTP/1.1\r\nHost: kong.test\r\nConnection: close\r\n\r\n');
    const line = await agent.waitFor((l) => l.path === '/api/priv/status/200', 10_000, 'the request line');
    assert.equal(line.status_code, 200, 'status');
    assert.equal(await agent.stop(), 0, 'exits 0');
  });

  it('as uid 65534 without CAP_DAC_READ_SEARCH, says tracefs is unreadable and what to do', async () => {
    const agent = startAgent({ KONG_PREFIX: gateway.prefix }, { wrap: asNobody(['bpf', 'perfmon', 'sys_ptrace']) });
    agents.push(agent);
    const code = await new Promise<number | null>((resolve) => agent.child.once('exit', resolve));
    const error = agent.lines.find((l) => l.level === 'error');
    assert.notEqual(code, 0, 'exit code');
    assert.match(String(error?.error), /tracefs is mounted .* cannot read it/, 'says what is wrong');
    assert.match(String(error?.error), /CAP_DAC_READ_SEARCH/, 'and which capability helps');
  });

  it('names CAP_BPF when it is missing, and exits non-zero', async () => {
    const agent = startAgent({ KONG_PREFIX: gateway.prefix }, { wrap: asNobody(['perfmon', 'sys_ptrace']) });
    agents.push(agent);
    const code = await new Promise<number | null>((resolve) => agent.child.once('exit', resolve));
    const text = [...agent.lines.map((l) => JSON.stringify(l)), ...agent.other].join('\n');
    assert.notEqual(code, 0, 'exit code');
    assert.match(text, /CAP_BPF/, 'the message names the missing capability');
  });

  it('warns with the consequence when CAP_SYS_PTRACE is missing', async () => {
    const agent = startAgent({ KONG_PREFIX: gateway.prefix }, { wrap: asNobody(['bpf', 'perfmon']) });
    agents.push(agent);
    const warning = await agent.waitFor(
      (l) => (l.level === 'warn' || l.level === 'error') && JSON.stringify(l).includes('CAP_SYS_PTRACE'),
      30_000,
      'a line naming CAP_SYS_PTRACE',
    );
    assert.ok(warning, 'warned');
    await agent.stop();
  });

  it('starts under a storm of SIGPROF (node --cpu-prof)', async () => {
    const agent = startAgent(
      { KONG_PREFIX: gateway.prefix },
      { nodeFlags: ['--cpu-prof', '--cpu-prof-dir=/tmp', '--cpu-prof-interval=100'] },
    );
    agents.push(agent);
    await agent.waitFor((l) => l.msg === 'BPF programs attached', 60_000, 'BPF attached under SIGPROF');
    assert.equal(await agent.stop(), 0, 'exits 0');
  });
});
