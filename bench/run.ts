/**
 * `npm run bench` / `make bench`: the whole benchmark, as root, on a 2-core machine.
 *   CPU 0: the gateway's one worker.  CPU 1: upstream (bench/upstream.ts), wrk, OTLP receiver, this
 *   process, and the agent (BENCH_AGENT_CPU; pinned there so the throughput change measures what
 *   the agent costs inside the worker, and its own CPU is reported apart).
 * Steps: build the agent -> calibrate the saturation rate -> interleaved rounds of every arm (one
 * of them in the sidecar's 0.2-CPU cgroup) -> forced loss with a 4 KiB ring -> fixed rates: a
 * steady 2,000 req/s with every span, and the CPU-limited agent with spans at stepping rates ->
 * the node-wide tax on other processes -> pipeline microbenchmark -> bench/out/<time>.json and
 * bench/RESULTS.md. Options: see bench/options.ts.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway } from '../test/fixture/gateway';
import { runArm, runRounds, type AbOptions, type ArmRun } from './ab';
import { arms, SIDECAR_CPU_LIMIT } from './arms';
import { createCpuLimit, type CpuLimit } from './cgroup';
import { enableBpfStats } from './bpf-stats';
import { pacing, runWrk } from './load';
import { parseOptions, type BenchOptions } from './options';
import { describe as describeRate, runAtRate, sweep, type RateRun } from './rates';
import { startReceiverProcess, type ReceiverProcess } from './receiver-process';
import { measureTax, type TaxResult } from './tax';
import { startBenchUpstream, type BenchUpstream } from './upstream';
import { machineInfo, writeReports, type BenchResult, type PipelineResult } from './report';

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'bench', 'out');
const PROXY_PORT = 19400;
const UPSTREAM_PORT = 19401;
const H2C_PORT = 19403;
const TLS_PORT = 19402;
const GATEWAY_CPU = 0;
const LOAD_CPU = '1';

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/**
 * The agent as users run it: compiled JavaScript (tsx would add its compiler to the agent's
 * start-up and RSS). Compiled into bench/out/dist; falls back to tsx when tsc emits nothing.
 */
function buildCommands(o: BenchOptions): { agent: string[]; noop: string[]; how: string } {
  const distDir = path.join(OUT, 'dist');
  try {
    execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', distDir], {
      cwd: ROOT,
      stdio: 'pipe',
    });
  } catch (err) {
    const out = String((err as { stdout?: Buffer }).stdout ?? '')
      .split('\n')
      .slice(0, 5)
      .join('\n');
    log(`tsc reported errors (using what it emitted):\n${out}`);
  }
  const cli = path.join(distDir, 'src', 'cli.js');
  const noop = path.join(distDir, 'bench', 'noop-agent.js');
  const compiled = fs.existsSync(cli) && fs.existsSync(noop);
  const tsx = (file: string): string[] => [process.execPath, '--import', 'tsx', path.join(ROOT, file)];
  // The V8 flag the image's ENTRYPOINT and the bin's shebang use.
  const agent = o.agentCommand ?? (compiled ? [process.execPath, '--max-semi-space-size=8', cli] : tsx('src/cli.ts'));
  return {
    agent,
    noop: compiled ? [process.execPath, noop] : tsx('bench/noop-agent.ts'),
    how: o.agentCommand ? 'BENCH_AGENT_CMD' : compiled ? 'compiled (tsc -> bench/out/dist)' : 'tsx',
  };
}

/** Saturation of the bare gateway, then a paced run to find the connections that give half of it. */
async function calibrate(o: BenchOptions, ab: AbOptions): Promise<void> {
  const url = `http://127.0.0.1:${PROXY_PORT}/api/bench`;
  const gw = await startGateway({
    proxyPort: PROXY_PORT,
    upstreamPort: UPSTREAM_PORT,
    workerCpu: GATEWAY_CPU,
    dir: fs.mkdtempSync(path.join(ab.workDir, 'cal-')),
  });
  try {
    await runWrk({ url, seconds: 1, connections: o.connections, cpu: LOAD_CPU });
    const sat = await runWrk({ url, seconds: Math.min(3, o.seconds), connections: o.connections, cpu: LOAD_CPU });
    ab.rate = o.rate ?? Math.round(sat.rps / 2);
    let p = pacing(ab.rate, sat.latencyMeanUs / 4);
    const probe = await runWrk({ url, seconds: 2, connections: p.connections, cpu: LOAD_CPU, delayMs: p.delayMs });
    const connections = Math.max(1, Math.round((p.connections * ab.rate) / probe.rps));
    p = { ...p, connections };
    ab.pacedConnections = p.connections;
    ab.pacedDelayMs = p.delayMs;
    log(
      `calibration: saturation ${Math.round(sat.rps)} req/s; fixed rate ${ab.rate} req/s with ${p.connections} connections x ${p.delayMs} ms pacing (probe gave ${Math.round(probe.rps)} with ${Math.round((p.connections * probe.rps) / ab.rate)})`,
    );
  } finally {
    await gw.stop();
  }
}

function describeRun(r: ArmRun, offRps?: number): string {
  if (r.error) return `round ${r.round + 1} ${r.arm}: FAILED ${r.error.split('\n')[0]}`;
  const f = (x: number | undefined, d = 1): string => (x === undefined ? '-' : x.toFixed(d));
  const parts = [
    `round ${r.round + 1} ${r.arm}:`,
    `${Math.round(r.saturation?.rps ?? 0)} req/s${offRps ? ` (x${f((r.saturation?.rps ?? 0) / offRps, 3)} of off)` : ''}`,
    `worker ${f((r.workerCpuNsPerRequest ?? 0) / 1000, 2)} µs/req`,
    `fixed-rate p50/p99 ${r.latency?.latencyP50Us}/${r.latency?.latencyP99Us} µs`,
    `cpu0/1 busy ${(r.cpuBusy ?? []).map((b) => `${Math.round(b * 100)}%`).join('/')}`,
  ];
  if (r.hooks) parts.push(`hooks ${f(r.hooks.runsPerRequest)}/req x ${f(r.hooks.nsPerRun, 0)} ns`);
  if (r.agent) {
    const s: Record<string, number> = r.agent.counters ?? {};
    parts.push(
      `agent ${f(r.agent.cpuUsPerRequestSaturation, 2)} µs/req, rss ${f((r.agent.rssSteadyBytes ?? 0) / 2 ** 20)}/${f(r.agent.rssPeakBytes / 2 ** 20)} MiB`,
    );
    parts.push(
      `lost ${String(s.lost_events ?? '?')}, requests ${String(s.requests ?? '?')}/${r.accessLogRequests}, spans ${r.spansReceived}`,
    );
  }
  return parts.join(', ');
}

function runPipeline(o: BenchOptions, tsxFallback: boolean): Promise<PipelineResult | { error: string }> {
  const compiled = path.join(OUT, 'dist', 'bench', 'pipeline.js');
  const args =
    !tsxFallback && fs.existsSync(compiled) ? [compiled] : ['--import', 'tsx', path.join(ROOT, 'bench', 'pipeline.ts')];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, BENCH_PIPELINE_SECONDS: String(o.pipelineSeconds) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('PIPELINE_RESULT '));
      if (line) resolve(JSON.parse(line.slice('PIPELINE_RESULT '.length)) as PipelineResult);
      else resolve({ error: `pipeline benchmark exited with ${code}: ${out.slice(-2000)}` });
    });
  });
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the bench loads BPF programs and needs root');
  // Everything started from here inherits CPU 1; the gateway worker pins itself to CPU 0.
  execFileSync('taskset', ['-a', '-p', '-c', LOAD_CPU, String(process.pid)], { stdio: 'ignore' });
  fs.mkdirSync(OUT, { recursive: true });
  const workDir = fs.mkdtempSync('/tmp/kw-bench-');
  const started = new Date();
  const restoreStats = enableBpfStats();
  let upstream: BenchUpstream | undefined;
  let receiver: ReceiverProcess | undefined;
  let limit: CpuLimit | undefined;
  const cleanup = async (): Promise<void> => {
    restoreStats();
    limit?.remove();
    await receiver?.stop().catch(() => undefined);
    await upstream?.stop().catch(() => undefined);
    fs.rmSync(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    log(`options: ${JSON.stringify({ ...o, agentCommand: undefined })}`);
    const commands = buildCommands(o);
    log(`agent: ${commands.agent.join(' ')} (${commands.how}); pinned to CPU ${o.agentCpu}`);
    limit = createCpuLimit('kong-watcher-bench', SIDECAR_CPU_LIMIT);
    log(`sidecar CPU limit: ${limit.cpus} CPU via cgroup v${limit.version} at ${limit.path}`);
    upstream = await startBenchUpstream(UPSTREAM_PORT, workDir);
    receiver = await startReceiverProcess(LOAD_CPU);
    const endpoint = `http://127.0.0.1:${receiver.port}`;
    const allArms = arms(endpoint, o.earlierCommand);
    // An arm comes with the arm it is paired with ("off", "h2-off" for the HTTP/2 arms, "tls-off" for the TLS arms).
    const wanted = new Set(o.arms ?? allArms.map((a) => a.name));
    for (const a of allArms) if (wanted.has(a.name)) wanted.add(a.baseline ?? 'off');
    const chosen = allArms.filter((a) => wanted.has(a.name) || a.name === 'off');

    const ab: AbOptions = {
      rounds: o.rounds,
      seconds: o.seconds,
      warmupSeconds: o.warmupSeconds,
      connections: o.connections,
      proxyPort: PROXY_PORT,
      h2cPort: H2C_PORT,
      tlsPort: TLS_PORT,
      upstreamPort: UPSTREAM_PORT,
      gatewayCpu: GATEWAY_CPU,
      loadCpu: LOAD_CPU,
      agentCpu: o.agentCpu,
      agentCommand: commands.agent,
      noopCommand: commands.noop,
      workDir,
      receiver,
      rate: 0,
      pacedConnections: 1,
      pacedDelayMs: 1,
      limit,
    };
    await calibrate(o, ab);

    let runs: ArmRun[] = [];
    if (o.doRounds) {
      const total = o.rounds * chosen.length;
      log(
        `${o.rounds} rounds x ${chosen.length} arms (${chosen.map((a) => a.name).join(', ')}): ~${Math.round((total * (o.seconds * 2 + o.warmupSeconds + 4)) / 60)} min`,
      );
      runs = await runRounds(chosen, ab, (r, off) => log(describeRun(r, off)));
    }

    let loss: ArmRun | undefined;
    const defaultArm = allArms.find((a) => a.name === 'default')!;
    if (o.doLoss) {
      log('forced loss: default arm with RINGBUF_SIZE=4096');
      loss = await runArm(defaultArm, -1, 0, ab, { RINGBUF_SIZE: '4096' });
      log(describeRun(loss));
    }

    let steady: RateRun[] | undefined;
    let limitedSpans: { runs: RateRun[]; highestExactRps?: number; limitCpus: number } | undefined;
    if (o.doRates) {
      const spansArm = allArms.find((a) => a.name === 'default+spans')!;
      const rateOptions = {
        proxyPort: PROXY_PORT,
        upstreamPort: UPSTREAM_PORT,
        gatewayCpu: GATEWAY_CPU,
        loadCpu: LOAD_CPU,
        agentCpu: o.agentCpu,
        agentCommand: commands.agent,
        env: spansArm.env,
        workDir,
      };
      steady = [];
      for (let i = 0; i < Math.max(1, Math.min(3, o.rounds)); i++) {
        log(`steady 2,000 req/s with every span exported, run ${i + 1}`);
        const r = await runAtRate(rateOptions, 2000, o.rateSeconds);
        log(describeRate(r));
        steady.push(r);
      }
      log(`the agent limited to ${SIDECAR_CPU_LIMIT} CPU, every span exported: ${o.sweepRates.join(', ')} req/s`);
      const swept = await sweep({ ...rateOptions, limit }, o.sweepRates, o.rateSeconds, log);
      limitedSpans = { ...swept, limitCpus: SIDECAR_CPU_LIMIT };
      log(`highest exact rate with spans in ${SIDECAR_CPU_LIMIT} CPU: ${swept.highestExactRps ?? 'none'} req/s`);
    }

    let tax: TaxResult | undefined;
    if (o.doTax) {
      log(`node-wide tax: ${o.taxRounds} rounds of 0, 1 and 4 idle agents`);
      tax = await measureTax({
        rounds: o.taxRounds,
        agentCommand: commands.agent,
        loopCpu: String(GATEWAY_CPU),
        agentCpu: LOAD_CPU,
        outDir: OUT,
        log,
      });
    }

    let pipeline: PipelineResult | { error: string } | undefined;
    if (o.doPipeline) {
      log('pipeline microbenchmark');
      pipeline = await runPipeline(o, commands.how === 'tsx');
      log(`pipeline: ${JSON.stringify(pipeline).slice(0, 400)}`);
    }

    const result: BenchResult = {
      started: started.toISOString(),
      finished: new Date().toISOString(),
      options: { ...o, rate: ab.rate, pacedConnections: ab.pacedConnections, pacedDelayMs: ab.pacedDelayMs },
      machine: machineInfo(),
      agentCommand: commands.agent.join(' '),
      agentBuild: commands.how,
      arms: chosen.map((a) => ({
        name: a.name,
        description: a.description,
        env: a.env,
        spans: a.spans,
        h2: a.h2,
        tls: a.tls,
        baseline: a.baseline,
      })),
      runs,
      loss,
      pipeline,
      tax,
      steady,
      limitedSpans,
    };
    const written = writeReports(result, OUT, path.join(ROOT, 'bench'), o.quick);
    log(`wrote ${written.join(', ')}`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`[bench] failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
