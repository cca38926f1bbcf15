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
  /** http:// or https:// (wrk does TLS without ALPN, so Kong's TLS listener answers HTTP/1.1) */
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

export interface H2loadOptions {
  url: string;
  seconds: number;
  /** HTTP/2 connections (h2load -c) */
  connections: number;
  /** streams in flight per connection (h2load -m) */
  streams: number;
  /** a taskset CPU list, e.g. "1" */
  cpu: string;
  /** paced mode: requests per second per connection (h2load --rps) */
  rps?: number;
}

/**
 * h2load for HTTP/2 arms (h2c with prior knowledge), for a duration. It reports no latency
 * percentiles: only the mean is filled in, the rest are NaN (left out of the reports).
 */
export async function runH2load(o: H2loadOptions): Promise<WrkResult> {
  const args = ['-c', o.cpu, 'h2load', `-c${o.connections}`, `-m${o.streams}`, `-D${o.seconds}`];
  if (o.rps !== undefined) args.push(`--rps=${o.rps}`);
  args.push(o.url);
  const { stdout } = await run('taskset', args, { maxBuffer: 16 * 1024 * 1024, timeout: (o.seconds + 30) * 1000 });
  return parseH2load(stdout);
}

const H2LOAD_UNITS: Record<string, number> = { us: 1, ms: 1e3, s: 1e6 };

/** h2load's summary: "finished in", "requests:", "status codes:", "time for request:". */
export function parseH2load(stdout: string): WrkResult {
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(stdout);
  const requests =
    /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      stdout,
    );
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const time = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(stdout);
  if (!finished || !requests || !codes) throw new Error(`h2load printed no summary:\n${stdout}`);
  const us = (v: string, unit: string): number => Number(v) * H2LOAD_UNITS[unit];
  const done = Number(requests[2]);
  const seconds = Number(finished[1]);
  return {
    requests: done,
    seconds,
    rps: done / seconds,
    errors: Number(requests[5]) + Number(requests[6]) + Number(codes[3]) + Number(codes[4]),
    latencyMeanUs: time ? us(time[5], time[6]) : NaN,
    latencyP50Us: NaN,
    latencyP90Us: NaN,
    latencyP99Us: NaN,
    latencyP999Us: NaN,
    latencyMaxUs: time ? us(time[3], time[4]) : NaN,
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
