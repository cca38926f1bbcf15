/**
 * Turns the raw runs into figures (each arm paired with the "off" run of the same round, then
 * median and min-max over rounds) and writes them: bench/out/<time>.json (everything, raw runs
 * included) and bench/RESULTS.md (tables, and every target of issue 5 met or missed).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ArmRun } from './ab';
import { bpftoolVersion } from './bpf-stats';
import type { RateRun } from './rates';
import { round, spread, type Spread } from './stats';
import type { TaxResult } from './tax';

export interface PipelineResult {
  /** one row per offered rate */
  steps: {
    offeredRequestsPerSecond: number;
    requests: number;
    spansCreated: number;
    spansReceived: number;
    spansDropped: number;
    seconds: number;
    spansPerSecond: number;
    rssPeakBytes: number;
    cpuUsPerSpan: number;
  }[];
  /** the highest rate with every span received */
  sustainedSpansPerSecond: number;
  rssPeakBytes: number;
  recordsPerRequest: number;
  /** CPU µs per proxied request by stage, nothing exported */
  stageUsPerRequest?: Record<string, number>;
  note?: string;
}

export interface BenchResult {
  started: string;
  finished: string;
  options: Record<string, unknown>;
  machine: Record<string, string>;
  agentCommand: string;
  agentBuild: string;
  arms: {
    name: string;
    description: string;
    env: Record<string, string>;
    spans: boolean;
    h2?: boolean;
    tls?: boolean;
    /** the arm "added" figures are paired with (default "off") */
    baseline?: string;
  }[];
  runs: ArmRun[];
  loss?: ArmRun;
  pipeline?: PipelineResult | { error: string };
  /** the node-wide tax: ns per syscall of a non-Kong process with 0, 1 and 4 agents attached */
  tax?: TaxResult;
  /** every span exported at a steady 2,000 req/s, agent unlimited */
  steady?: RateRun[];
  /** the agent in the sidecar's CPU limit, every span exported, rates stepping up */
  limitedSpans?: { runs: RateRun[]; highestExactRps?: number; limitCpus: number };
}

/** stdout, or stderr for tools that print their version there (nginx -v) */
function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout?.trim() || r.stderr?.trim() || 'unknown').split('\n')[0];
}

export function machineInfo(): Record<string, string> {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: String(os.cpus().length),
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: `${os.release()} ${os.arch()}`,
    os: sh('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']),
    node: process.version,
    nginx: sh('nginx', ['-v']).replace('nginx version: ', ''),
    libbpf: sh('dpkg-query', ['-W', '-f=${Version}', 'libbpf-dev']),
    bpftool: bpftoolVersion(),
    wrk: sh('dpkg-query', ['-W', '-f=${Version}', 'wrk']),
  };
}

/**
 * One arm's figures over the rounds. "added" figures are paired with the same round's run of the
 * arm's baseline ("off", "h2-off" for the HTTP/2 arms, "tls-off" for the TLS arms).
 */
export interface ArmSummary {
  arm: string;
  rounds: number;
  failures: number;
  rps?: Spread;
  throughputRatio?: Spread;
  /** 1/rps_on - 1/rps_off, µs */
  addedTimePerRequestUs?: Spread;
  workerCpuUs?: Spread;
  addedWorkerCpuUs?: Spread;
  /** at the fixed rate, below saturation */
  addedWorkerCpuUsFixedRate?: Spread;
  hookRunsPerRequest?: Spread;
  nsPerHookRun?: Spread;
  /** hook runs x ns per run / request: the in-kernel part of the added worker CPU (and of others') */
  hookNsPerRequest?: Spread;
  /** per BPF program: runs per request and ns per run */
  hooksByProgram: { program: string; runsPerRequest?: Spread; nsPerRun?: Spread }[];
  fixedRateRps?: Spread;
  p50Us?: Spread;
  p99Us?: Spread;
  addedP50Us?: Spread;
  addedP99Us?: Spread;
  agentCpuUs?: Spread;
  agentCpuUsFixedRate?: Spread;
  rssSteadyMiB?: Spread;
  rssPeakMiB?: Spread;
  lostEvents?: Spread;
  /** requests the agent counted / requests the gateway logged */
  requestsSeen?: Spread;
  spansPerRequest?: Spread;
  spansDropped?: Spread;
  cpu1Busy?: Spread;
  errors: string[];
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export function summarize(result: BenchResult): ArmSummary[] {
  const byRound = new Map<string, Map<number, ArmRun>>();
  for (const r of result.runs) {
    if (r.error) continue;
    if (!byRound.has(r.arm)) byRound.set(r.arm, new Map());
    byRound.get(r.arm)!.set(r.round, r);
  }
  return result.arms.map((arm) => {
    const runs = result.runs.filter((r) => r.arm === arm.name);
    const ok = runs.filter((r) => !r.error);
    const baseline = byRound.get(arm.baseline ?? 'off');
    const paired = (f: (r: ArmRun, off: ArmRun) => number | undefined): Spread | undefined =>
      spread(
        ok.map((r) => {
          const off = baseline?.get(r.round);
          return off ? f(r, off) : undefined;
        }),
      );
    const programs = [...new Set(ok.flatMap((r) => Object.keys(r.hooks?.byProgram ?? {})))].sort();
    const each = (f: (r: ArmRun) => number | undefined): Spread | undefined => spread(ok.map(f));
    const rps = (r: ArmRun): number => r.saturation?.rps ?? NaN;
    const stat = (r: ArmRun, key: string): number | undefined => num(r.agent?.counters?.[key]);
    return {
      arm: arm.name,
      rounds: runs.length,
      failures: runs.length - ok.length,
      rps: each(rps),
      throughputRatio: paired((r, off) => rps(r) / rps(off)),
      addedTimePerRequestUs: paired((r, off) => 1e6 / rps(r) - 1e6 / rps(off)),
      workerCpuUs: each((r) => (r.workerCpuNsPerRequest ?? NaN) / 1000),
      addedWorkerCpuUs: paired(
        (r, off) => ((r.workerCpuNsPerRequest ?? NaN) - (off.workerCpuNsPerRequest ?? NaN)) / 1000,
      ),
      addedWorkerCpuUsFixedRate: paired(
        (r, off) => ((r.workerCpuNsPerRequestFixedRate ?? NaN) - (off.workerCpuNsPerRequestFixedRate ?? NaN)) / 1000,
      ),
      hookRunsPerRequest: each((r) => r.hooks?.runsPerRequest),
      nsPerHookRun: each((r) => r.hooks?.nsPerRun),
      hookNsPerRequest: each((r) => (r.hooks && r.saturation ? r.hooks.runTimeNs / r.saturation.requests : undefined)),
      hooksByProgram: programs.map((program) => ({
        program,
        runsPerRequest: each((r) => {
          const p = r.hooks?.byProgram[program];
          return p && r.saturation ? p.runs / r.saturation.requests : undefined;
        }),
        nsPerRun: each((r) => {
          const p = r.hooks?.byProgram[program];
          return p && p.runs > 0 ? p.ns / p.runs : undefined;
        }),
      })),
      fixedRateRps: each((r) => r.latency?.rps),
      p50Us: each((r) => r.latency?.latencyP50Us),
      p99Us: each((r) => r.latency?.latencyP99Us),
      addedP50Us: paired((r, off) => (r.latency?.latencyP50Us ?? NaN) - (off.latency?.latencyP50Us ?? NaN)),
      addedP99Us: paired((r, off) => (r.latency?.latencyP99Us ?? NaN) - (off.latency?.latencyP99Us ?? NaN)),
      agentCpuUs: each((r) => r.agent?.cpuUsPerRequestSaturation),
      agentCpuUsFixedRate: each((r) => r.agent?.cpuUsPerRequestFixedRate),
      rssSteadyMiB: each((r) => (r.agent?.rssSteadyBytes === undefined ? undefined : r.agent.rssSteadyBytes / 2 ** 20)),
      rssPeakMiB: each((r) => (r.agent ? r.agent.rssPeakBytes / 2 ** 20 : undefined)),
      lostEvents: each((r) => stat(r, 'lost_events')),
      requestsSeen: each((r) => {
        const seen = stat(r, 'requests');
        return seen !== undefined && r.accessLogRequests ? seen / r.accessLogRequests : undefined;
      }),
      spansPerRequest: arm.spans
        ? each((r) => (r.accessLogRequests ? (r.spansReceived ?? 0) / r.accessLogRequests : undefined))
        : undefined,
      spansDropped: arm.spans ? each((r) => stat(r, 'spans_dropped')) : undefined,
      cpu1Busy: each((r) => (r.cpuBusy?.[1] === undefined ? undefined : r.cpuBusy[1] * 100)),
      errors: [...new Set(runs.filter((r) => r.error).map((r) => r.error!.split('\n')[0]))],
    };
  });
}

function fmt(s: Spread | undefined, digits = 1): string {
  if (!s) return '–';
  if (s.n === 1) return `${round(s.median, digits)}`;
  return `${round(s.median, digits)} [${round(s.min, digits)}..${round(s.max, digits)}]`;
}

interface TargetRow {
  target: string;
  figure: string;
  met: boolean | undefined;
}

function targets(result: BenchResult, sums: ArmSummary[]): TargetRow[] {
  const by = (name: string): ArmSummary | undefined => sums.find((s) => s.arm === name);
  const noop = by('noop');
  const def = by('default');
  const spans = by('default+spans');
  const limited = by('default@200m');
  const rows: TargetRow[] = [];
  const noise = (s: Spread | undefined): string => (s ? ` (no-op control: ${fmt(s, 2)})` : '');
  const le = (s: Spread | undefined, limit: number): boolean | undefined => (s ? s.median <= limit : undefined);

  rows.push({
    target: 'agent CPU <= 2 µs per proxied request, metrics only',
    figure: `${fmt(def?.agentCpuUs, 2)} µs at saturation; ${fmt(def?.agentCpuUsFixedRate, 2)} µs at the fixed rate`,
    met: le(def?.agentCpuUs, 2),
  });
  rows.push({
    target: 'agent CPU <= 8 µs per proxied request with every request exported as SERVER and CLIENT spans',
    figure: `${fmt(spans?.agentCpuUs, 2)} µs at saturation; ${fmt(spans?.agentCpuUsFixedRate, 2)} µs at the fixed rate`,
    met: le(spans?.agentCpuUs, 8),
  });
  const steady = result.steady?.filter((r) => !r.error) ?? [];
  const steadyCores = spread(steady.map((r) => r.agentCores * 100));
  rows.push({
    target: 'at a steady 2,000 req/s with every span exported, at most 5% of one core',
    figure: steadyCores
      ? `${fmt(steadyCores, 2)}% of a core (${fmt(spread(steady.map((r) => r.agentCpuUsPerRequest)), 2)} µs per request)`
      : 'not run',
    met: steadyCores ? steadyCores.median <= 5 : undefined,
  });
  const p = result.pipeline;
  rows.push({
    target:
      'pipeline (records -> native assembly -> enrichment -> spans and metrics -> OTLP gRPC) >= 150k spans/s with zero drops',
    figure: !p
      ? 'not run'
      : 'error' in p
        ? `failed: ${p.error.split('\n')[0]}`
        : `${Math.round(p.sustainedSpansPerSecond)} spans/s, peak RSS ${round(p.rssPeakBytes / 2 ** 20)} MiB`,
    met: p && !('error' in p) ? p.sustainedSpansPerSecond >= 150_000 : undefined,
  });
  rows.push({
    target: 'agent RSS with every span exported: steady <= 100 MiB',
    figure: `${fmt(spans?.rssSteadyMiB)} MiB (metrics only: ${fmt(def?.rssSteadyMiB)} MiB)`,
    met: le(spans?.rssSteadyMiB, 100),
  });
  rows.push({
    target: 'agent RSS with every span exported: peak <= 128 MiB',
    figure: `${spans?.rssPeakMiB ? round(spans.rssPeakMiB.max) : '–'} MiB highest peak`,
    met: spans?.rssPeakMiB ? spans.rssPeakMiB.max <= 128 : undefined,
  });
  rows.push({
    target: 'in-kernel BPF time <= 1.5 µs per proxied request (kernel.bpf_stats_enabled)',
    figure: `${fmt(def?.hookNsPerRequest, 0)} ns (${fmt(def?.hookRunsPerRequest, 1)} runs x ${fmt(def?.nsPerHookRun, 0)} ns)`,
    met: def?.hookNsPerRequest ? def.hookNsPerRequest.median <= 1500 : undefined,
  });
  rows.push({
    target: "the gateway worker's added CPU <= 2 µs per request, at a fixed rate below saturation",
    figure: `${fmt(def?.addedWorkerCpuUsFixedRate, 2)} µs${noise(noop?.addedWorkerCpuUsFixedRate)}; at saturation ${fmt(def?.addedWorkerCpuUs, 2)} µs`,
    met: le(def?.addedWorkerCpuUsFixedRate, 2),
  });
  rows.push({
    target: 'agent limited to 0.2 CPU, metrics only, at saturation: zero events lost, every request counted',
    figure: limited
      ? `lost events max ${limited.lostEvents?.max ?? '–'}; requests counted / logged ${fmt(limited.requestsSeen, 4)} (min ${limited.requestsSeen ? round(limited.requestsSeen.min, 4) : '–'})`
      : 'not run',
    met:
      limited?.lostEvents && limited.requestsSeen
        ? limited.lostEvents.max === 0 && limited.requestsSeen.min === 1
        : undefined,
  });
  const ls = result.limitedSpans;
  rows.push({
    target: 'agent limited to 0.2 CPU, every span exported: the highest rate that stays exact (published)',
    figure: ls
      ? ls.highestExactRps
        ? `${ls.highestExactRps} req/s (${2 * ls.highestExactRps} spans/s)`
        : `exact at none of ${ls.runs.map((r) => r.offeredRps).join(', ')} req/s`
      : 'not run',
    met: undefined,
  });
  const tax = result.tax;
  for (const n of [1, 4]) {
    const added = tax?.addedSocketNs[n];
    const pipe = tax?.addedPipeNs[n];
    rows.push({
      target: `a non-Kong process pays <= 60 ns per syscall with ${n} agent${n > 1 ? 's' : ''} attached`,
      figure: added
        ? `hooked syscalls (sendto/recvfrom) +${fmt(added, 0)} ns; unhooked (pipe read/write) +${fmt(pipe, 0)} ns (baseline ${fmt(tax?.socketNs[0], 0)} / ${fmt(tax?.pipeNs[0], 0)} ns)`
        : 'not run',
      met: added ? added.median <= 60 : undefined,
    });
  }
  const lostDefault = [def?.lostEvents, spans?.lostEvents].filter((s): s is Spread => s !== undefined);
  rows.push({
    target: 'zero events lost at saturation, default ring buffer',
    figure: lostDefault.length
      ? `max lost per run: default ${def?.lostEvents?.max ?? '–'}, default+spans ${spans?.lostEvents?.max ?? '–'}`
      : 'no data',
    met: lostDefault.length ? lostDefault.every((s) => s.max === 0) : undefined,
  });
  const loss = result.loss;
  if (loss) {
    const st: Record<string, number> = loss.agent?.counters ?? {};
    const events = num(st.events);
    const lost = num(st.lost_events);
    const perRequest = eventsPerRequest(result);
    const expected =
      perRequest !== undefined && loss.accessLogRequests ? perRequest * loss.accessLogRequests : undefined;
    const accounted = events !== undefined && lost !== undefined ? events + lost : undefined;
    const ratio = expected && accounted !== undefined ? accounted / expected : undefined;
    rows.push({
      target: 'losses forced by a 4 KiB ring are counted: received + lost within 5% of the events the requests produce',
      figure: loss.error
        ? `run failed: ${loss.error.split('\n')[0]}`
        : `requests ${loss.accessLogRequests}, agent counted ${String(st.requests ?? '?')}; events received ${events ?? '?'} + lost ${lost ?? '?'} = ${accounted ?? '?'} vs ${expected === undefined ? '?' : Math.round(expected)} expected (${perRequest === undefined ? '?' : round(perRequest, 2)} events/request from the default arm): ratio ${ratio === undefined ? '?' : round(ratio, 3)}`,
      met: ratio === undefined || !lost ? undefined : Math.abs(ratio - 1) <= 0.05,
    });
  }
  const peaks = sums.map((s) => s.rssPeakMiB?.max).filter((x): x is number => x !== undefined);
  rows.push({
    target: 'agent RSS never above 256 MiB (any arm, any round)',
    figure: peaks.length ? `highest peak ${round(Math.max(...peaks))} MiB` : 'no data',
    met: peaks.length ? Math.max(...peaks) <= 256 : undefined,
  });
  return rows;
}

/** Conditions under which a figure does not mean what its column says, found in the data. */
function readingNotes(result: BenchResult, sums: ArmSummary[]): string[] {
  const notes: string[] = [];
  const rate = Number(result.options.rate);
  const overloaded = sums.filter((s) => s.rps && s.rps.median < rate).map((s) => s.arm);
  if (overloaded.length) {
    notes.push(
      `The fixed rate (${rate} req/s) is above the saturation throughput of ${overloaded.join(', ')}: ` +
        'their latency columns are measured in overload (queueing), not at half load.',
    );
  }
  const cpu1 = sums
    .filter((s) => s.arm !== 'off' && s.arm !== 'noop' && s.cpu1Busy && s.cpu1Busy.median >= 90)
    .map((s) => s.arm);
  if (cpu1.length) {
    notes.push(
      `CPU 1 (load generator, upstream, receiver and the agent) was >= 90% busy at saturation with ${cpu1.join(', ')}: ` +
        "their throughput is bounded by CPU 1, i.e. by the agent's own CPU use, and the worker (CPU 0) was not saturated, " +
        'which also raises its CPU per request (fewer requests per wake-up). "Added worker CPU" is then an upper bound.',
    );
  }
  const dropped = sums.filter((s) => s.spansDropped && s.spansDropped.max > 0).map((s) => s.arm);
  if (dropped.length)
    notes.push(`Spans were dropped by the agent's export queue in ${dropped.join(', ')} (see "spans dropped").`);
  const noop = sums.find((s) => s.arm === 'noop')?.throughputRatio;
  if (noop) {
    notes.push(
      `Noise floor: the no-op control's throughput ratio to "off" spans ${round(noop.min, 3)}..${round(noop.max, 3)} over the rounds; ` +
        'differences inside that band are not the agent.',
    );
  }
  return notes;
}

/** Ring-buffer records per proxied request in the default arm (events received + lost / requests). */
function eventsPerRequest(result: BenchResult): number | undefined {
  const values = result.runs
    .filter((r) => r.arm === 'default' && !r.error && r.accessLogRequests)
    .map((r) => {
      const s: Record<string, number> = r.agent?.counters ?? {};
      const e = num(s.events);
      return e === undefined ? undefined : (e + (num(s.lost_events) ?? 0)) / r.accessLogRequests!;
    });
  return spread(values)?.median;
}

export function markdown(result: BenchResult): string {
  const sums = summarize(result);
  const m = result.machine;
  const o = result.options;
  const lines: string[] = [];
  lines.push('# kong-watcher benchmark results', '');
  lines.push(
    `Generated by \`make bench\` (bench/run.ts) on ${result.started.slice(0, 10)}; raw data: bench/out/<time>.json.`,
    '',
  );
  lines.push(`- Machine: ${m.cpu}, ${m.cpus} CPUs, ${m.memory}; ${m.os}; kernel ${m.kernel}`);
  lines.push(
    `- Versions: node ${m.node}, nginx ${m.nginx} (+ lua module), libbpf ${m.libbpf}, ${m.bpftool}, wrk ${m.wrk}`,
  );
  lines.push(`- Agent: \`${result.agentCommand}\` (${result.agentBuild}), pinned to CPU ${String(o.agentCpu)}`);
  lines.push(
    `- Layout: one gateway worker pinned to CPU 0; upstream, wrk, the OTLP receiver and the agent on CPU 1. ` +
      `Saturation: \`wrk -t1 -c${String(o.connections)} -d${String(o.seconds)}s\` on /api/bench (proxied, keep-alive). ` +
      `Fixed rate: ${String(o.rate)} req/s offered (half of the bare gateway's saturation), wrk paced with ${String(o.pacedConnections)} connections x ${String(o.pacedDelayMs)} ms.`,
  );
  lines.push(
    `- ${String(o.rounds)} interleaved rounds (arm order rotated each round, fresh gateway per arm). ` +
      'Cells: median [min..max] over rounds; "added" figures are paired with the same round\'s "off" run ' +
      '("h2-off" for the HTTP/2 arms, whose load is h2load: no latency percentiles; "tls-off" for the TLS arms). ' +
      'The no-op control (a process that attaches nothing) shows the noise floor.',
  );
  lines.push('');
  lines.push('## Targets', '', '| target | figure | met |', '| --- | --- | --- |');
  for (const t of targets(result, sums))
    lines.push(`| ${t.target} | ${t.figure} | ${t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
  const notes = readingNotes(result, sums);
  if (notes.length) {
    lines.push('', 'Reading the figures:', '');
    for (const n of notes) lines.push(`- ${n}`);
  }
  lines.push('');
  lines.push('## Cost to the gateway (saturation and fixed rate)', '');
  lines.push(
    '| arm | req/s | ratio to baseline | 1/rps added µs | worker CPU µs/req | added worker CPU µs/req | hook runs/req | ns/run | fixed rate achieved req/s | p50 µs | p99 µs | added p50 µs | added p99 µs |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const s of sums) {
    lines.push(
      `| ${s.arm} | ${fmt(s.rps, 0)} | ${fmt(s.throughputRatio, 3)} | ${fmt(s.addedTimePerRequestUs, 2)} | ${fmt(s.workerCpuUs, 2)} | ${fmt(s.addedWorkerCpuUs, 2)} | ${fmt(s.hookRunsPerRequest, 1)} | ${fmt(s.nsPerHookRun, 0)} | ${fmt(s.fixedRateRps, 0)} | ${fmt(s.p50Us, 0)} | ${fmt(s.p99Us, 0)} | ${fmt(s.addedP50Us, 0)} | ${fmt(s.addedP99Us, 0)} |`,
    );
  }
  lines.push('');
  lines.push('## In-kernel cost per program (saturation)', '');
  lines.push(
    'Runs per proxied request and ns per run (bpf_stats), programs that ran at least once per 100 requests. ' +
      'A uprobe adds its trap (about 10 µs, 12 µs for a uretprobe, on this VM), which bpf_stats does not count.',
    '',
    '| arm | program | runs/req | ns/run |',
    '| --- | --- | --- | --- |',
  );
  for (const s of sums) {
    for (const p of s.hooksByProgram) {
      if ((p.runsPerRequest?.median ?? 0) < 0.01) continue;
      lines.push(`| ${s.arm} | ${p.program} | ${fmt(p.runsPerRequest, 2)} | ${fmt(p.nsPerRun, 0)} |`);
    }
  }
  lines.push('');
  lines.push('## Cost of the agent itself', '');
  lines.push(
    '| arm | agent CPU µs/req (saturation) | at fixed rate | RSS steady MiB | RSS peak MiB | events lost | requests seen / logged | spans received / request | spans dropped | CPU 1 busy % |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  // The baselines ("off", "h2-off", "tls-off") run no sidecar.
  const baselines = new Set(['off', ...result.arms.flatMap((a) => (a.baseline ? [a.baseline] : []))]);
  for (const s of sums.filter((x) => !baselines.has(x.arm))) {
    lines.push(
      `| ${s.arm} | ${fmt(s.agentCpuUs, 2)} | ${fmt(s.agentCpuUsFixedRate, 2)} | ${fmt(s.rssSteadyMiB)} | ${fmt(s.rssPeakMiB)} | ${fmt(s.lostEvents, 0)} | ${fmt(s.requestsSeen, 3)} | ${fmt(s.spansPerRequest, 2)} | ${fmt(s.spansDropped, 0)} | ${fmt(s.cpu1Busy, 0)} |`,
    );
  }
  lines.push('');
  const rateTable = (title: string, intro: string, runs: RateRun[]): void => {
    lines.push(`## ${title}`, '', intro, '');
    lines.push(
      '| offered req/s | achieved | logged | counted | lost events | spans dropped | agent % of a core | agent µs/req | RSS median / peak MiB | exact |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const r of runs) {
      lines.push(
        r.error
          ? `| ${r.offeredRps} | failed: ${r.error} | | | | | | | | |`
          : `| ${r.offeredRps} | ${Math.round(r.achievedRps)} | ${r.accessLogRequests} | ${r.agentRequests} | ${r.lostEvents} | ${r.spansDropped} | ${round(r.agentCores * 100, 2)} | ${round(r.agentCpuUsPerRequest, 2)} | ${round(r.rssMedianMiB)} / ${round(r.rssPeakMiB)} | ${r.exact ? 'yes' : '**no**'} |`,
      );
    }
    lines.push('');
  };
  if (result.steady?.length) {
    rateTable(
      'Steady 2,000 req/s, every span exported',
      'The agent unlimited, `hey -q` pacing the load below saturation, every request exported as SERVER and CLIENT spans to the loopback receiver.',
      result.steady,
    );
  }
  if (result.limitedSpans) {
    rateTable(
      `Agent limited to ${result.limitedSpans.limitCpus} CPU, every span exported`,
      "The agent in a CPU-limited cgroup (the sidecar manifest's limit), rates stepping up until it is no longer exact (lost events, or a logged request not counted); each failing rate is tried twice.",
      result.limitedSpans.runs,
    );
  }
  const tax = result.tax;
  if (tax) {
    lines.push('## Node-wide tax on processes that are not Kong', '');
    lines.push(
      "Syscall tracepoints run for every process on the node, and every sidecar attaches its own copy. `bench/syscall-loop.c` times its own syscalls with 0, 1 and 4 idle agents attached (interleaved rounds): pipe write+read (syscalls no agent hooks: the tracepoint slow path only) and socketpair sendto+recvfrom (hooked: each agent's pid filter rejects them).",
      '',
      '| agents | pipe ns/syscall | added | socket ns/syscall | added |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const n of [0, 1, 4]) {
      lines.push(
        `| ${n} | ${fmt(tax.pipeNs[n], 0)} | ${n ? fmt(tax.addedPipeNs[n], 0) : '–'} | ${fmt(tax.socketNs[n], 0)} | ${n ? fmt(tax.addedSocketNs[n], 0) : '–'} |`,
      );
    }
    lines.push('');
  }
  lines.push('Arms:', '');
  for (const a of result.arms) lines.push(`- **${a.name}**: ${a.description}`);
  const failures = sums.filter((s) => s.failures > 0);
  if (failures.length) {
    lines.push('', '## Failed runs', '');
    for (const s of failures) lines.push(`- ${s.arm}: ${s.failures} of ${s.rounds}: ${s.errors.join('; ')}`);
  }
  const p = result.pipeline;
  if (p && !('error' in p)) {
    lines.push('', '## Pipeline microbenchmark', '');
    lines.push(
      `Synthetic ring-buffer records (${p.recordsPerRequest} per proxied request) injected into the native capture in replay mode, through the agent's own wiring: the drain thread's native assembly, decode, enrichment, metrics, spans and the OTLP gRPC exporter into a loopback receiver (its own process on CPU 1; the agent on CPU 0). CPU per span counts every thread of the agent, and the bench's own stamping of the records.${p.note ? ` ${p.note}` : ''}`,
    );
    if (p.stageUsPerRequest) {
      const st = p.stageUsPerRequest;
      lines.push(
        '',
        `CPU µs per proxied request by stage, nothing exported: ${Object.entries(st)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} ("stamp" is the bench writing timestamps into the synthetic batch).`,
      );
    }
    lines.push(
      '',
      '| offered req/s | requests | spans created | received | dropped | spans/s | CPU µs/span | peak RSS MiB |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const s of p.steps) {
      lines.push(
        `| ${s.offeredRequestsPerSecond} | ${s.requests} | ${s.spansCreated} | ${s.spansReceived} | ${s.spansDropped} | ${Math.round(s.spansPerSecond)} | ${round(s.cpuUsPerSpan, 2)} | ${round(s.rssPeakBytes / 2 ** 20)} |`,
      );
    }
  }
  lines.push('', '## How to run', '');
  lines.push(
    '```',
    'sudo make bench                      # or: npm run bench (root: BPF, sysctl kernel.bpf_stats_enabled)',
    'npm run bench -- --quick             # 2 rounds of 2 s: a smoke run (results in bench/out only)',
    'BENCH_ROUNDS=15 BENCH_SECONDS=5 BENCH_ARMS=default,default+spans npm run bench',
    '```',
    '',
  );
  lines.push(
    "Hook runs and ns/run come from `kernel.bpf_stats_enabled` (bpftool prog show): syscall tracepoints run for every process on the machine and filter by pid inside, so runs/request counts the host's syscalls (wrk, upstream) too.",
  );
  return `${lines.join('\n')}\n`;
}

/** Writes the JSON (always) and the Markdown (bench/RESULTS.md, or bench/out for --quick). */
export function writeReports(result: BenchResult, outDir: string, benchDir: string, quick: boolean): string[] {
  const stamp = result.started.replace(/[:.]/g, '-');
  const jsonPath = path.join(outDir, `${stamp}.json`);
  fs.writeFileSync(jsonPath, JSON.stringify({ ...result, summary: summarize(result) }, null, 2));
  const mdPath = quick ? path.join(outDir, `${stamp}.md`) : path.join(benchDir, 'RESULTS.md');
  fs.writeFileSync(mdPath, markdown(result));
  return [jsonPath, mdPath];
}

/** `node --import tsx bench/report.ts bench/out/<time>.json`: rewrites bench/RESULTS.md from raw data. */
if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node --import tsx bench/report.ts bench/out/<time>.json\n');
    process.exit(2);
  }
  const result = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResult;
  const md = path.join(__dirname, 'RESULTS.md');
  fs.writeFileSync(md, markdown(result));
  process.stderr.write(`wrote ${md}\n`);
}
