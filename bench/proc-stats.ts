/**
 * CPU time and memory of one process from procfs. Worker CPU comes from schedstat (ns on CPU,
 * exact) when the process has one thread; the agent's from /proc/<pid>/stat, which counts every
 * thread (drain thread, libuv, GC), live or exited, at the clock-tick resolution.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const out = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    ticksPerSecond = Number(out) > 0 ? Number(out) : 100;
  }
  return ticksPerSecond;
}

export interface CpuTimes {
  userNs: number;
  systemNs: number;
}

/** utime + stime of the whole process (all threads) in ns; undefined when it is gone */
export function processCpu(pid: number): CpuTimes | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields restart after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = 1e9 / clockTicks();
    return { userNs: Number(fields[11]) * tick, systemNs: Number(fields[12]) * tick };
  } catch {
    return undefined;
  }
}

/** ns spent on a CPU by the process's threads alive now (schedstat, exact) */
export function onCpuNs(pid: number): number | undefined {
  try {
    let total = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
      total += Number(text.split(' ')[0]);
    }
    return total;
  } catch {
    return undefined;
  }
}

export interface Memory {
  rssBytes: number;
  /** VmHWM: the peak RSS over the process's life */
  peakRssBytes: number;
}

export function memory(pid: number): Memory | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    };
    return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS at a fixed period; `mark` labels the samples of a phase. */
export class RssSampler {
  private readonly samples: { at: number; phase: string; rss: number }[] = [];
  private timer?: NodeJS.Timeout;
  private phase = 'start';
  private peak = 0;

  constructor(
    private readonly pid: number,
    periodMs = 250,
  ) {
    this.take();
    this.timer = setInterval(() => this.take(), periodMs);
    this.timer.unref();
  }

  mark(phase: string): void {
    this.phase = phase;
    this.take();
  }

  private take(): void {
    const m = memory(this.pid);
    if (!m) return;
    this.samples.push({ at: Date.now(), phase: this.phase, rss: m.rssBytes });
    this.peak = Math.max(this.peak, m.peakRssBytes, m.rssBytes);
  }

  stop(): void {
    this.take();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** RSS samples of one phase */
  during(phase: string): number[] {
    return this.samples.filter((s) => s.phase === phase).map((s) => s.rss);
  }

  peakBytes(): number {
    return this.peak;
  }
}

/** Busy and total jiffies per CPU from /proc/stat, for the utilisation of each pinned CPU. */
export function cpuJiffies(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim().split(/\s+/).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    // idle + iowait are not busy
    out[Number(m[1])] = { busy: total - v[3] - (v[4] ?? 0), total };
  }
  return out;
}

/** Busy fraction of each CPU between two cpuJiffies() readings. */
export function cpuBusy(before: { busy: number; total: number }[], after: { busy: number; total: number }[]): number[] {
  return after.map((a, i) => {
    const b = before[i];
    const total = a.total - (b?.total ?? 0);
    return total > 0 ? (a.busy - (b?.busy ?? 0)) / total : 0;
  });
}
