/**
 * Load generators, pinned to the load CPU: wrk at saturation (closed loop, as many requests as
 * the gateway can take), and wrk paced to a fixed offered rate for latency. wrk is used for
 * both because it keeps latencies in microseconds; hey prints them to 0.1 ms, too coarse for a
 * +50 µs target. bench/wrk-report.lua prints the exact figures as one JSON line.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = path.join(__dirname, 'wrk-report.lua');

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** connect + read + write errors, timeouts, and non-2xx/3xx responses */
  errors: number;
  latencyMeanUs: number;
  latencyP50Us: number;
  latencyP90Us: number;
  latencyP99Us: number;
  latencyP999Us: number;
  latencyMaxUs: number;
}

export interface WrkOptions {
  url: string;
  seconds: number;
  connections: number;
  /** a taskset CPU list, e.g. "1" */
  cpu: string;
  /** paced mode: each connection waits this long after every response */
  delayMs?: number;
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-c',
    o.cpu,
    'wrk',
    '-t1',
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    '--timeout',
    '5s',
    '-s',
    SCRIPT,
    o.url,
  ];
  const env = { ...process.env, BENCH_DELAY_MS: String(o.delayMs ?? 0) };
  const { stdout } = await run('taskset', args, { env, maxBuffer: 16 * 1024 * 1024, timeout: (o.seconds + 30) * 1000 });
  return parseWrk(stdout);
}

/** The BENCH_RESULT line of wrk-report.lua. */
export function parseWrk(stdout: string): WrkResult {
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`wrk printed no BENCH_RESULT line:\n${stdout}`);
  const r = JSON.parse(line.slice('BENCH_RESULT '.length)) as Record<string, number>;
  const seconds = r.duration_us / 1e6;
  return {
    requests: r.requests,
    seconds,
    rps: r.requests / seconds,
    errors: r.connect_errors + r.read_errors + r.write_errors + r.status_errors + r.timeouts,
    latencyMeanUs: r.latency_mean_us,
    latencyP50Us: r.latency_p50_us,
    latencyP90Us: r.latency_p90_us,
    latencyP99Us: r.latency_p99_us,
    latencyP999Us: r.latency_p999_us,
    latencyMaxUs: r.latency_max_us,
  };
}

/**
 * Connections for a paced run near `rate` req/s: each connection sends one request per
 * (delayMs + latency), and wrk's delay is whole milliseconds.
 */
export function pacing(rate: number, expectedLatencyUs = 100): { connections: number; delayMs: number } {
  const delayMs = 1;
  const perConnection = 1e6 / (delayMs * 1000 + expectedLatencyUs);
  return { connections: Math.max(1, Math.round(rate / perConnection)), delayMs };
}
