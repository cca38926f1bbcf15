/**
 * The node-wide tax. Syscall tracepoints run for every process on the node, not only Kong, and
 * every sidecar on a node attaches its own copy. bench/syscall-loop.c, a process that is not Kong,
 * times its own syscalls: write+read on a pipe (syscalls no agent hooks: the tracepoint slow path
 * alone) and sendto+recvfrom on a socketpair (hooked: each agent's pid filter rejects them), with
 * 0, 1 and 4 idle agents attached, in interleaved rounds.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startArmProcess, type ArmProcess } from './arm-process';
import { spread, type Spread } from './stats';

export const TAX_AGENT_COUNTS = [0, 1, 4] as const;

export interface TaxRun {
  round: number;
  agents: number;
  pipeNs: number;
  socketNs: number;
}

export interface TaxResult {
  runs: TaxRun[];
  /** ns per syscall, by number of agents attached */
  pipeNs: Record<number, Spread | undefined>;
  socketNs: Record<number, Spread | undefined>;
  /** ns added per syscall over the same round's run without agents */
  addedPipeNs: Record<number, Spread | undefined>;
  addedSocketNs: Record<number, Spread | undefined>;
}

export interface TaxOptions {
  rounds: number;
  agentCommand: string[];
  /** where the loop runs, and where the idle agents run */
  loopCpu: string;
  agentCpu: string;
  outDir: string;
  log: (message: string) => void;
}

/** Agents that attach every program and then wait for a Kong that never comes. */
function idleAgentEnv(): Record<string, string> {
  return {
    KONG_PREFIX: '/nonexistent/kong',
    ENABLE_JSON_LOG: 'true',
    HEALTH_PORT: '0',
    STATS_INTERVAL: '0',
    LOG_REQUESTS: 'false',
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
  };
}

function buildLoop(outDir: string): string {
  const bin = path.join(outDir, 'syscall-loop');
  execFileSync('gcc', ['-O2', '-Wall', '-o', bin, path.join(__dirname, 'syscall-loop.c')]);
  return bin;
}

function runLoop(bin: string, cpu: string): { pipeNs: number; socketNs: number } {
  const out = execFileSync('taskset', ['-c', cpu, bin, '200000', '7'], { encoding: 'utf8' });
  const r = JSON.parse(out.trim()) as { pipe_ns: number; socket_ns: number };
  return { pipeNs: r.pipe_ns, socketNs: r.socket_ns };
}

export async function measureTax(o: TaxOptions): Promise<TaxResult> {
  const bin = buildLoop(o.outDir);
  const runs: TaxRun[] = [];
  for (let round = 0; round < o.rounds; round++) {
    // Rotate the order so drift of the VM spreads over every count alike.
    const counts = [...TAX_AGENT_COUNTS.slice(round % 3), ...TAX_AGENT_COUNTS.slice(0, round % 3)];
    for (const agents of counts) {
      const running: ArmProcess[] = [];
      try {
        for (let i = 0; i < agents; i++) running.push(startArmProcess(o.agentCommand, idleAgentEnv(), o.agentCpu));
        for (const a of running)
          await a.waitFor('BPF programs attached', (l) => l.msg === 'BPF programs attached', 60_000);
        const r = runLoop(bin, o.loopCpu);
        runs.push({ round, agents, ...r });
        o.log(`tax round ${round + 1}: ${agents} agent(s): pipe ${r.pipeNs} ns, socket ${r.socketNs} ns per syscall`);
      } finally {
        for (const a of running) await a.stop(10_000);
      }
    }
  }
  const by = (agents: number, pick: (r: TaxRun) => number): Spread | undefined =>
    spread(runs.filter((r) => r.agents === agents).map(pick));
  const added = (agents: number, pick: (r: TaxRun) => number): Spread | undefined =>
    spread(
      runs
        .filter((r) => r.agents === agents)
        .map((r) => {
          const base = runs.find((b) => b.round === r.round && b.agents === 0);
          return base ? pick(r) - pick(base) : undefined;
        }),
    );
  const result: TaxResult = { runs, pipeNs: {}, socketNs: {}, addedPipeNs: {}, addedSocketNs: {} };
  for (const n of TAX_AGENT_COUNTS) {
    result.pipeNs[n] = by(n, (r) => r.pipeNs);
    result.socketNs[n] = by(n, (r) => r.socketNs);
    if (n > 0) {
      result.addedPipeNs[n] = added(n, (r) => r.pipeNs);
      result.addedSocketNs[n] = added(n, (r) => r.socketNs);
    }
  }
  return result;
}
