/**
 * What a bench run does, from the environment and the command line:
 *   BENCH_ROUNDS (10), BENCH_SECONDS (4: each of saturation and fixed rate), BENCH_WARMUP_SECONDS (1),
 *   BENCH_CONNECTIONS (32), BENCH_RATE (req/s of the fixed-rate phase; default half of saturation),
 *   BENCH_ARMS (comma list, default all), BENCH_AGENT_CPU (1; "all" = not pinned),
 *   BENCH_PIPELINE_SECONDS (5), BENCH_AGENT_CMD (the agent command; default the compiled agent),
 *   BENCH_EARLIER_CMD (an earlier build's agent command: adds its arms "earlier" and "earlier+spans"),
 *   BENCH_TAX_ROUNDS (5), BENCH_RATE_SECONDS (10: each fixed-rate phase run),
 *   BENCH_SWEEP_RATES (req/s the CPU-limited agent with spans is tried at, ascending).
 *   --quick: 2 rounds of 2 s, short other phases; results go to bench/out only.
 *   --skip-pipeline, --skip-rounds, --skip-loss, --skip-tax, --skip-rates: leave a part out.
 */

export interface BenchOptions {
  quick: boolean;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  rate?: number;
  arms?: string[];
  /** taskset CPU list for the agent */
  agentCpu: string;
  pipelineSeconds: number;
  agentCommand?: string[];
  /** an earlier build's agent command (BENCH_EARLIER_CMD) */
  earlierCommand?: string[];
  doRounds: boolean;
  doPipeline: boolean;
  doLoss: boolean;
  doTax: boolean;
  doRates: boolean;
  taxRounds: number;
  rateSeconds: number;
  sweepRates: number[];
}

function num(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${v}"`);
  return n;
}

export function parseOptions(argv: string[], env: Record<string, string | undefined> = process.env): BenchOptions {
  const known = ['--quick', '--skip-pipeline', '--skip-rounds', '--skip-loss', '--skip-tax', '--skip-rates'];
  const unknown = argv.filter((a) => !known.includes(a));
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]} (known: ${known.join(' ')})`);
  const quick = argv.includes('--quick');
  const agentCpu = env.BENCH_AGENT_CPU ?? '1';
  return {
    quick,
    rounds: Math.round(num(env, 'BENCH_ROUNDS', quick ? 2 : 10)),
    seconds: num(env, 'BENCH_SECONDS', quick ? 2 : 4),
    warmupSeconds: num(env, 'BENCH_WARMUP_SECONDS', 1),
    connections: Math.round(num(env, 'BENCH_CONNECTIONS', 32)),
    rate: env.BENCH_RATE ? num(env, 'BENCH_RATE', 1) : undefined,
    arms: env.BENCH_ARMS ? env.BENCH_ARMS.split(',').map((s) => s.trim()) : undefined,
    agentCpu: agentCpu === 'all' ? '0-1' : agentCpu,
    pipelineSeconds: num(env, 'BENCH_PIPELINE_SECONDS', quick ? 2 : 5),
    agentCommand: env.BENCH_AGENT_CMD ? env.BENCH_AGENT_CMD.split(' ').filter(Boolean) : undefined,
    earlierCommand: env.BENCH_EARLIER_CMD ? env.BENCH_EARLIER_CMD.split(' ').filter(Boolean) : undefined,
    doRounds: !argv.includes('--skip-rounds'),
    doPipeline: !argv.includes('--skip-pipeline'),
    doLoss: !argv.includes('--skip-loss'),
    doTax: !argv.includes('--skip-tax'),
    doRates: !argv.includes('--skip-rates'),
    taxRounds: Math.round(num(env, 'BENCH_TAX_ROUNDS', quick ? 1 : 5)),
    rateSeconds: num(env, 'BENCH_RATE_SECONDS', quick ? 4 : 10),
    sweepRates: (env.BENCH_SWEEP_RATES ?? (quick ? '2000,8000' : '1000,2000,4000,6000,8000,12000,16000'))
      .split(',')
      .map((x) => Number(x.trim())),
  };
}
