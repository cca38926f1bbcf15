/**
 * Interleaved A/B rounds: every round runs every arm once, in an order rotated by the round
 * number, each on a fresh gateway (same ports, same pinning), so drift of the VM spreads over
 * all arms alike. One arm = gateway up -> sidecar up and ready -> warm-up -> saturation (wrk) ->
 * fixed rate (paced wrk) -> sidecar stopped (final stats) -> gateway down.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, type Gateway } from '../test/fixture/gateway';
import type { Arm } from './arms';
import { startArmProcess, type ArmProcess, type LogLine } from './arm-process';
import type { CpuLimit } from './cgroup';
import { hookDelta, programsOf, type HookDelta, type ProgStat } from './bpf-stats';
import { runH2load, runWrk, type WrkResult } from './load';
import { cpuBusy, cpuJiffies, onCpuNs, processCpu, RssSampler } from './proc-stats';
import type { ReceiverProcess } from './receiver-process';

export interface AbOptions {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  /** saturation connections (wrk -c) */
  connections: number;
  proxyPort: number;
  /** the gateway's h2c listener, for HTTP/2 arms */
  h2cPort: number;
  /** the gateway's TLS listener, for TLS arms */
  tlsPort: number;
  upstreamPort: number;
  gatewayCpu: number;
  loadCpu: string;
  /** undefined: the agent is not pinned */
  agentCpu?: string;
  agentCommand: string[];
  noopCommand: string[];
  workDir: string;
  receiver: ReceiverProcess;
  /** paced latency phase: offered rate and how it is paced */
  rate: number;
  pacedConnections: number;
  pacedDelayMs: number;
  /** the sidecar's CPU limit, for arms that run under it */
  limit?: CpuLimit;
}

export interface ArmRun {
  arm: string;
  round: number;
  position: number;
  error?: string;
  saturation?: WrkResult;
  /** gateway worker on-CPU ns per proxied request at saturation */
  workerCpuNsPerRequest?: number;
  /** the same at the fixed rate, below saturation: the agent cannot starve the load generator there */
  workerCpuNsPerRequestFixedRate?: number;
  /** busy fraction of each CPU during saturation */
  cpuBusy?: number[];
  hooks?: HookDelta & { runsPerRequest: number; nsPerRun: number };
  latency?: WrkResult;
  agent?: {
    pid: number;
    cpuUsPerRequestSaturation: number;
    userUsPerRequest: number;
    systemUsPerRequest: number;
    cpuUsPerRequestFixedRate?: number;
    rssSteadyBytes?: number;
    rssPeakBytes: number;
    /** from the last stats line, logged on shutdown */
    finalStats?: LogLine;
    /** highest value of each stats-line counter (events, lost_events, requests, spans_*) */
    counters: Record<string, number>;
    exitCode: number | null;
  };
  /** client requests the gateway logged while the sidecar ran */
  accessLogRequests?: number;
  spansReceived?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function countLines(file: string): number {
  try {
    const buf = fs.readFileSync(file);
    let n = 0;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((a, b) => a - b);
  return v[v.length >> 1];
}

function agentCpuNs(pid: number): number {
  const c = processCpu(pid);
  return c ? c.userNs + c.systemNs : NaN;
}

/** Runs one arm on a fresh gateway. Never throws: a failure is recorded in `error`. */
export async function runArm(
  arm: Arm,
  round: number,
  position: number,
  o: AbOptions,
  extraEnv: Record<string, string> = {},
): Promise<ArmRun> {
  const result: ArmRun = { arm: arm.name, round, position };
  const url = arm.h2
    ? `http://127.0.0.1:${o.h2cPort}/api/bench`
    : arm.tls
      ? `https://127.0.0.1:${o.tlsPort}/api/bench`
      : `http://127.0.0.1:${o.proxyPort}/api/bench`;
  // HTTP/2 arms: h2load, 10 streams per connection, a quarter of the connections; paced with --rps
  const load = (seconds: number, paced: boolean): Promise<WrkResult> =>
    arm.h2
      ? runH2load({
          url,
          seconds,
          connections: paced ? o.pacedConnections : Math.max(1, o.connections >> 2),
          streams: paced ? 1 : 10,
          cpu: o.loadCpu,
          rps: paced ? Math.max(1, Math.round(o.rate / o.pacedConnections)) : undefined,
        })
      : runWrk({
          url,
          seconds,
          connections: paced ? o.pacedConnections : o.connections,
          cpu: o.loadCpu,
          delayMs: paced ? o.pacedDelayMs : undefined,
        });
  let gateway: Gateway | undefined;
  let sidecar: ArmProcess | undefined;
  let rss: RssSampler | undefined;
  try {
    const dir = fs.mkdtempSync(path.join(o.workDir, 'gw-'));
    gateway = await startGateway({
      proxyPort: o.proxyPort,
      h2cPort: arm.h2 ? o.h2cPort : undefined,
      tlsPort: arm.tls ? o.tlsPort : undefined,
      upstreamPort: o.upstreamPort,
      workers: 1,
      workerCpu: o.gatewayCpu,
      dir,
    });
    const worker = gateway.workerPids()[0];
    const receivedBefore = (await o.receiver.counts()).spans;

    if (arm.kind !== 'off') {
      let command = arm.kind === 'noop' ? o.noopCommand : (arm.command ?? o.agentCommand);
      if (arm.cpuLimit) {
        if (!o.limit) throw new Error(`arm ${arm.name} needs a CPU limit and none was created`);
        command = o.limit.wrap(command);
      }
      sidecar = startArmProcess(command, { ...arm.env, ...extraEnv, KONG_PREFIX: gateway.prefix }, o.agentCpu);
      await sidecar.waitFor(
        `"monitoring Kong process" for worker ${worker}`,
        (l) => l.msg === 'monitoring Kong process' && l.pid === worker,
        30_000,
      );
      const uprobes =
        arm.env.LUA_UPROBES === 'true' || arm.env.CAPTURE_MODE === 'libc' || arm.env.TLS_UPROBES !== 'false';
      if (arm.kind === 'agent' && uprobes) {
        await sidecar.waitFor('uprobes attached', (l) => /uprobes (not )?attached/.test(String(l.msg)), 10_000);
      }
      rss = new RssSampler(sidecar.pid);
    }
    const logBefore = countLines(gateway.accessLogPath);

    rss?.mark('warmup');
    await load(o.warmupSeconds, false);

    // Saturation.
    rss?.mark('saturation');
    const progsBefore: ProgStat[] = sidecar && arm.kind === 'agent' ? await programsOf(sidecar.pid) : [];
    const jiffiesBefore = cpuJiffies();
    const workerBefore = onCpuNs(worker);
    const agentBefore = sidecar ? processCpu(sidecar.pid) : undefined;
    const sat = await load(o.seconds, false);
    const workerAfter = onCpuNs(worker);
    const agentAfter = sidecar ? processCpu(sidecar.pid) : undefined;
    const busy = cpuBusy(jiffiesBefore, cpuJiffies());
    const progsAfter: ProgStat[] = sidecar && arm.kind === 'agent' ? await programsOf(sidecar.pid) : [];
    result.saturation = sat;
    result.cpuBusy = busy;
    if (workerBefore !== undefined && workerAfter !== undefined && sat.requests > 0) {
      result.workerCpuNsPerRequest = (workerAfter - workerBefore) / sat.requests;
    }
    if (arm.kind === 'agent') {
      const d = hookDelta(progsBefore, progsAfter);
      result.hooks = { ...d, runsPerRequest: d.runs / sat.requests, nsPerRun: d.runs > 0 ? d.runTimeNs / d.runs : 0 };
    }

    // Fixed rate.
    rss?.mark('fixed-rate');
    const agentMid = sidecar ? agentCpuNs(sidecar.pid) : NaN;
    const workerMid = onCpuNs(worker);
    const lat = await load(o.seconds, true);
    const agentEnd = sidecar ? agentCpuNs(sidecar.pid) : NaN;
    const workerEnd = onCpuNs(worker);
    result.latency = lat;
    if (workerMid !== undefined && workerEnd !== undefined && lat.requests > 0) {
      result.workerCpuNsPerRequestFixedRate = (workerEnd - workerMid) / lat.requests;
    }
    rss?.mark('end');

    if (sidecar && agentBefore && agentAfter) {
      const peak = rss?.peakBytes() ?? 0;
      rss?.stop();
      const exitCode = await sidecar.stop(10_000);
      const steady = median(rss?.during('saturation') ?? []);
      result.agent = {
        pid: sidecar.pid,
        cpuUsPerRequestSaturation:
          (agentAfter.userNs + agentAfter.systemNs - agentBefore.userNs - agentBefore.systemNs) / 1000 / sat.requests,
        userUsPerRequest: (agentAfter.userNs - agentBefore.userNs) / 1000 / sat.requests,
        systemUsPerRequest: (agentAfter.systemNs - agentBefore.systemNs) / 1000 / sat.requests,
        cpuUsPerRequestFixedRate: lat.requests > 0 ? (agentEnd - agentMid) / 1000 / lat.requests : undefined,
        rssSteadyBytes: steady,
        rssPeakBytes: peak,
        finalStats: sidecar.lastStats(),
        counters: sidecar.counters(),
        exitCode,
      };
      sidecar = undefined;
    }
    result.accessLogRequests = countLines(gateway.accessLogPath) - logBefore;
    // A CPU-limited agent may still be working off its backlog; spans follow the stop's flush.
    if (arm.spans) await sleep(arm.cpuLimit ? 2000 : 500);
    result.spansReceived = (await o.receiver.counts()).spans - receivedBefore;
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    rss?.stop();
    if (sidecar) await sidecar.stop(5_000).catch(() => undefined);
    if (gateway) await gateway.stop().catch(() => undefined);
  }
  return result;
}

/** The order of round r: arms rotated by r, so each arm takes each position in turn. */
export function roundOrder<T>(items: T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export async function runRounds(
  armList: Arm[],
  o: AbOptions,
  progress: (run: ArmRun, offRps?: number) => void,
): Promise<ArmRun[]> {
  const runs: ArmRun[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const order = roundOrder(armList, round);
    for (let i = 0; i < order.length; i++) {
      const run = await runArm(order[i], round, i, o);
      runs.push(run);
      const off = runs.find((r) => r.round === round && r.arm === 'off')?.saturation?.rps;
      progress(run, off);
    }
  }
  return runs;
}
