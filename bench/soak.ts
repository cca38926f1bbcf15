/**
 * `make soak`: the agent for a long time at a fixed rate with every span exported, as a sidecar
 * lives, watching for memory that creeps. One gateway worker on CPU 0; the load (hey -q), the
 * upstream, the OTLP receiver and the agent on CPU 1. The agent's RSS is sampled every 10 s; the
 * slope is a least-squares fit over the second half of the run (the first half holds warm-up:
 * JIT, heap growth to its working size). At the end: lost events, dropped spans, and the agent's
 * request count and spans received against the access log. Writes bench/SOAK.md and
 * bench/out/soak-<time>.json.
 *
 *   SOAK_MINUTES (30), SOAK_RATE (req/s, 2000),
 *   SOAK_FLAP_SECONDS (0: off; else the receiver is stopped and started again every that many
 *   seconds, a collector that flaps: RSS must stay bounded, and spans received + dropped must
 *   cover every request).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway } from '../test/fixture/gateway';
import { startArmProcess } from './arm-process';
import { arms } from './arms';
import { memory, processCpu } from './proc-stats';
import { runHey } from './rates';
import { startReceiverProcess } from './receiver-process';
import { machineInfo } from './report';
import { startBenchUpstream } from './upstream';

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'bench', 'out');
const PROXY_PORT = 19450;
const UPSTREAM_PORT = 19451;
const SAMPLE_MS = 10_000;

function log(message: string): void {
  process.stderr.write(`[soak] ${message}\n`);
}

/** Least squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function lines(file: string): number {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the soak loads BPF programs and needs root');
  const minutes = Number(process.env.SOAK_MINUTES ?? 30);
  const rate = Number(process.env.SOAK_RATE ?? 2000);
  const flapSeconds = Number(process.env.SOAK_FLAP_SECONDS ?? 0);
  execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  fs.mkdirSync(OUT, { recursive: true });
  const distDir = path.join(OUT, 'dist');
  execFileSync(path.join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', distDir], {
    cwd: ROOT,
    stdio: 'pipe',
  });
  const workDir = fs.mkdtempSync('/tmp/kw-soak-');
  const upstream = await startBenchUpstream(UPSTREAM_PORT, workDir);
  let receiver = await startReceiverProcess('1');
  const receiverPort = receiver.port;
  // Spans counted by receivers already stopped (flapping).
  let receivedByStopped = 0;
  let receiverUp = true;
  const gateway = await startGateway({
    proxyPort: PROXY_PORT,
    upstreamPort: UPSTREAM_PORT,
    workers: 1,
    workerCpu: 0,
    dir: workDir,
  });
  const spansArm = arms(`http://127.0.0.1:${receiver.port}`).find((a) => a.name === 'default+spans')!;
  const agent = startArmProcess(
    [process.execPath, '--max-semi-space-size=8', path.join(distDir, 'src', 'cli.js')],
    { ...spansArm.env, KONG_PREFIX: gateway.prefix, STATS_INTERVAL: '10s' },
    '1',
  );
  const started = new Date();
  const samples: { minute: number; rssMiB: number; heapMiB?: number }[] = [];
  try {
    const worker = gateway.workerPids()[0];
    await agent.waitFor('worker monitored', (l) => l.msg === 'monitoring Kong process' && l.pid === worker, 30_000);
    const receivedBefore = (await receiver.counts()).spans;
    const cpuBefore = processCpu(agent.pid);
    const t0 = Date.now();
    let flapping = Promise.resolve();
    const flapper =
      flapSeconds > 0
        ? setInterval(() => {
            flapping = flapping.then(async () => {
              if (receiverUp) {
                receivedByStopped += (await receiver.counts()).spans;
                await receiver.stop();
                receiverUp = false;
              } else {
                receiver = await startReceiverProcess('1', receiverPort);
                receiverUp = true;
              }
            });
          }, flapSeconds * 1000)
        : undefined;
    const sampler = setInterval(() => {
      const m = memory(agent.pid);
      if (!m) return;
      const minute = (Date.now() - t0) / 60_000;
      // The V8 heap in use, from the agent's latest stats line: tells the heap's growth from the rest.
      const heap = agent.lastStats()?.heap_mib;
      samples.push({ minute, rssMiB: m.rssBytes / 2 ** 20, heapMiB: typeof heap === 'number' ? heap : undefined });
      if (samples.length % 6 === 0) log(`${minute.toFixed(1)} min: RSS ${(m.rssBytes / 2 ** 20).toFixed(1)} MiB`);
    }, SAMPLE_MS);
    log(
      `${rate} req/s with every span exported for ${minutes} min` +
        (flapSeconds > 0 ? `, the receiver stopped and started again every ${flapSeconds} s` : ''),
    );
    const load = await runHey(`http://127.0.0.1:${PROXY_PORT}/api/soak`, rate, minutes * 60, '1');
    clearInterval(sampler);
    if (flapper) clearInterval(flapper);
    await flapping;
    if (!receiverUp) {
      receiver = await startReceiverProcess('1', receiverPort);
      receiverUp = true;
    }
    // Long enough for spans held through an outage to be retried into the receiver.
    await new Promise((r) => setTimeout(r, flapSeconds > 0 ? 15_000 : 3000));
    const cpuAfter = processCpu(agent.pid);
    await agent.stop(15_000);
    const counters = agent.counters();
    const logged = lines(gateway.accessLogPath);
    const received = receivedByStopped + (await receiver.counts()).spans - receivedBefore;
    const secondHalf = samples
      .filter((s) => s.minute >= minutes / 2)
      .map((s): [number, number] => [s.minute, s.rssMiB]);
    const cpuS =
      cpuBefore && cpuAfter ? (cpuAfter.userNs + cpuAfter.systemNs - cpuBefore.userNs - cpuBefore.systemNs) / 1e9 : 0;
    const result = {
      started: started.toISOString(),
      machine: machineInfo(),
      minutes,
      flapSeconds,
      offeredRps: rate,
      // From the access log: hey's own figures stop counting at 1,000,000 results.
      achievedRps: logged / load.seconds,
      loadErrors: load.errors,
      accessLogRequests: logged,
      agentRequests: counters.requests ?? 0,
      lostEvents: counters.lost_events ?? 0,
      spansReceived: received,
      spansDropped: counters.spans_dropped ?? 0,
      agentCores: cpuS / (minutes * 60),
      rssStartMiB: samples[0]?.rssMiB,
      rssEndMiB: samples[samples.length - 1]?.rssMiB,
      rssPeakMiB: Math.max(...samples.map((s) => s.rssMiB)),
      rssSlopeMiBPerMinute: slope(secondHalf),
      samples,
    };
    const stamp = result.started.replace(/[:.]/g, '-');
    fs.writeFileSync(path.join(OUT, `soak-${stamp}.json`), JSON.stringify(result, null, 2));
    fs.writeFileSync(path.join(ROOT, 'bench', flapSeconds > 0 ? 'SOAK-FLAP.md' : 'SOAK.md'), markdown(result));
    log(
      `RSS ${result.rssStartMiB?.toFixed(1)} -> ${result.rssEndMiB?.toFixed(1)} MiB (peak ${result.rssPeakMiB.toFixed(1)}), ` +
        `slope ${result.rssSlopeMiBPerMinute.toFixed(3)} MiB/min over the second half; requests logged ${logged}, ` +
        `counted ${result.agentRequests}; spans received ${received} (2 per request expected), dropped ${result.spansDropped}; lost events ${result.lostEvents}`,
    );
  } finally {
    await agent.stop(5_000).catch(() => undefined);
    await gateway.stop();
    await receiver.stop();
    await upstream.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

function markdown(r: {
  started: string;
  machine: Record<string, string>;
  minutes: number;
  flapSeconds: number;
  offeredRps: number;
  achievedRps: number;
  accessLogRequests: number;
  agentRequests: number;
  lostEvents: number;
  spansReceived: number;
  spansDropped: number;
  agentCores: number;
  rssStartMiB?: number;
  rssEndMiB?: number;
  rssPeakMiB: number;
  rssSlopeMiBPerMinute: number;
  samples: { minute: number; rssMiB: number; heapMiB?: number }[];
}): string {
  const f = (x: number | undefined, d = 1): string => (x === undefined ? '–' : x.toFixed(d));
  const rows = r.samples
    .filter((_, i) => i % 6 === 5)
    .map((s) => `| ${f(s.minute)} | ${f(s.rssMiB)} | ${f(s.heapMiB, 0)} |`);
  return [
    '# kong-watcher soak',
    '',
    `Generated by \`make soak\` (bench/soak.ts) on ${r.started.slice(0, 10)}: ${r.minutes} min at ${r.offeredRps} req/s offered (${Math.round(r.achievedRps)} achieved, \`hey -q\`), every request exported as SERVER and CLIENT spans over OTLP gRPC to a loopback receiver${r.flapSeconds > 0 ? `, which was stopped and started again every ${r.flapSeconds} s (a flapping collector: spans held through an outage are retried or dropped and counted, and a span may arrive twice across a stop)` : ''}. Machine: ${r.machine.cpu}, ${r.machine.cpus} CPUs, kernel ${r.machine.kernel}.`,
    '',
    '| figure | value |',
    '| --- | --- |',
    `| RSS slope, second half (target ~0) | ${f(r.rssSlopeMiBPerMinute, 3)} MiB/min |`,
    `| RSS start / end / peak | ${f(r.rssStartMiB)} / ${f(r.rssEndMiB)} / ${f(r.rssPeakMiB)} MiB |`,
    `| requests in the access log / counted by the agent | ${r.accessLogRequests} / ${r.agentRequests} |`,
    `| spans received (2 per request) / dropped | ${r.spansReceived} / ${r.spansDropped} |`,
    `| events lost | ${r.lostEvents} |`,
    `| agent CPU | ${f(r.agentCores * 100, 2)}% of one core |`,
    '',
    'RSS and V8 heap in use over time (every minute):',
    '',
    '| minute | RSS MiB | heap MiB |',
    '| --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`[soak] failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
