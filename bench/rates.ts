/**
 * Phases at a fixed offered rate, below saturation, where the agent's own CPU cannot starve the
 * load generator: the agent's share of a core at a steady rate, and the highest rate a
 * CPU-limited agent keeps exact (zero events lost, every logged request counted). Load comes
 * from `hey -q` (a rate per worker), which paces by the clock rather than by the responses.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGateway, type Gateway } from '../test/fixture/gateway';
import { startArmProcess, type ArmProcess } from './arm-process';
import type { CpuLimit } from './cgroup';
import { processCpu, RssSampler } from './proc-stats';

const run = promisify(execFile);

export interface HeyResult {
  requests: number;
  seconds: number;
  rps: number;
  /** responses other than 2xx/3xx, and errors */
  errors: number;
}

/** `rate` req/s for `seconds`, spread over enough workers that each paces at <= 500 req/s. */
export async function runHey(url: string, rate: number, seconds: number, cpu: string): Promise<HeyResult> {
  const workers = Math.max(1, Math.ceil(rate / 500));
  const perWorker = rate / workers;
  const { stdout } = await run(
    'taskset',
    ['-c', cpu, 'hey', '-z', `${seconds}s`, '-c', String(workers), '-q', perWorker.toFixed(2), '-t', '5', url],
    { maxBuffer: 16 * 1024 * 1024, timeout: (seconds + 60) * 1000 },
  );
  const total = /Total:\s+([\d.]+) secs/.exec(stdout);
  let requests = 0;
  let errors = 0;
  for (const m of stdout.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)) {
    const n = Number(m[2]);
    requests += n;
    if (Number(m[1]) >= 400) errors += n;
  }
  const errorBlock = /Error distribution:([\s\S]*)$/.exec(stdout)?.[1] ?? '';
  for (const m of errorBlock.matchAll(/\[(\d+)\]/g)) errors += Number(m[1]);
  const secs = total ? Number(total[1]) : seconds;
  return { requests, seconds: secs, rps: requests / secs, errors };
}

export interface RatePhaseOptions {
  proxyPort: number;
  upstreamPort: number;
  gatewayCpu: number;
  loadCpu: string;
  agentCpu: string;
  agentCommand: string[];
  env: Record<string, string>;
  workDir: string;
  limit?: CpuLimit;
}

export interface RateRun {
  offeredRps: number;
  achievedRps: number;
  seconds: number;
  accessLogRequests: number;
  /** server requests the agent counted (stats line) */
  agentRequests: number;
  lostEvents: number;
  spansDropped: number;
  /** agent CPU over the run, as a fraction of one core */
  agentCores: number;
  agentCpuUsPerRequest: number;
  rssPeakMiB: number;
  rssMedianMiB: number;
  /** every logged request counted and nothing lost */
  exact: boolean;
  error?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function lines(file: string): number {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** One fresh gateway and agent, `rate` req/s for `seconds`, then the agent's final stats. */
export async function runAtRate(o: RatePhaseOptions, rate: number, seconds: number): Promise<RateRun> {
  const result: RateRun = {
    offeredRps: rate,
    achievedRps: 0,
    seconds,
    accessLogRequests: 0,
    agentRequests: 0,
    lostEvents: 0,
    spansDropped: 0,
    agentCores: 0,
    agentCpuUsPerRequest: 0,
    rssPeakMiB: 0,
    rssMedianMiB: 0,
    exact: false,
  };
  let gateway: Gateway | undefined;
  let agent: ArmProcess | undefined;
  let rss: RssSampler | undefined;
  try {
    gateway = await startGateway({
      proxyPort: o.proxyPort,
      upstreamPort: o.upstreamPort,
      workers: 1,
      workerCpu: o.gatewayCpu,
      dir: fs.mkdtempSync(path.join(o.workDir, 'rate-')),
    });
    const worker = gateway.workerPids()[0];
    const command = o.limit ? o.limit.wrap(o.agentCommand) : o.agentCommand;
    agent = startArmProcess(command, { ...o.env, KONG_PREFIX: gateway.prefix }, o.agentCpu);
    await agent.waitFor(
      `worker ${worker} monitored`,
      (l) => l.msg === 'monitoring Kong process' && l.pid === worker,
      30_000,
    );
    rss = new RssSampler(agent.pid);
    rss.mark('load');
    const before = processCpu(agent.pid);
    const wallBefore = process.hrtime.bigint();
    const logBefore = lines(gateway.accessLogPath);
    const hey = await runHey(`http://127.0.0.1:${o.proxyPort}/api/bench`, rate, seconds, o.loadCpu);
    // Let a throttled agent catch up before it is asked to stop: what it still holds is not lost.
    await sleep(2000);
    const after = processCpu(agent.pid);
    const wallNs = Number(process.hrtime.bigint() - wallBefore);
    rss.mark('end');
    result.rssPeakMiB = rss.peakBytes() / 2 ** 20;
    const during = rss.during('load');
    result.rssMedianMiB = during.length ? [...during].sort((a, b) => a - b)[during.length >> 1] / 2 ** 20 : 0;
    rss.stop();
    await agent.stop(15_000);
    const counters = agent.counters();
    result.achievedRps = hey.rps;
    result.accessLogRequests = lines(gateway.accessLogPath) - logBefore;
    result.agentRequests = counters.requests ?? 0;
    result.lostEvents = counters.lost_events ?? 0;
    result.spansDropped = counters.spans_dropped ?? 0;
    if (before && after) {
      const cpuNs = after.userNs + after.systemNs - before.userNs - before.systemNs;
      result.agentCores = cpuNs / wallNs;
      result.agentCpuUsPerRequest = result.accessLogRequests ? cpuNs / 1000 / result.accessLogRequests : 0;
    }
    result.exact = result.lostEvents === 0 && result.agentRequests === result.accessLogRequests;
    agent = undefined;
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0];
  } finally {
    rss?.stop();
    if (agent) await agent.stop(5_000).catch(() => undefined);
    if (gateway) await gateway.stop().catch(() => undefined);
  }
  return result;
}

/**
 * The highest of `rates` (ascending) at which the agent stays exact; stops at the first rate that
 * fails twice in a row, so a single noisy run does not end the sweep.
 */
export async function sweep(
  o: RatePhaseOptions,
  rates: number[],
  seconds: number,
  log: (message: string) => void,
): Promise<{ runs: RateRun[]; highestExactRps?: number }> {
  const runs: RateRun[] = [];
  let highest: number | undefined;
  for (const rate of rates) {
    let r = await runAtRate(o, rate, seconds);
    log(describe(r));
    if (!r.exact) {
      runs.push(r);
      r = await runAtRate(o, rate, seconds);
      log(`  retry: ${describe(r)}`);
    }
    runs.push(r);
    if (!r.exact) break;
    highest = rate;
  }
  return { runs, highestExactRps: highest };
}

export function describe(r: RateRun): string {
  if (r.error) return `${r.offeredRps} req/s: FAILED ${r.error}`;
  return (
    `${r.offeredRps} req/s offered, ${Math.round(r.achievedRps)} achieved: agent counted ${r.agentRequests}/${r.accessLogRequests}, ` +
    `lost ${r.lostEvents}, spans dropped ${r.spansDropped}, agent ${(r.agentCores * 100).toFixed(1)}% of a core ` +
    `(${r.agentCpuUsPerRequest.toFixed(2)} µs/req), rss ${r.rssMedianMiB.toFixed(0)}/${r.rssPeakMiB.toFixed(0)} MiB${r.exact ? '' : ' NOT EXACT'}`
  );
}
