/**
 * In-kernel cost of the agent's BPF programs: with kernel.bpf_stats_enabled=1 the kernel counts
 * every program run and its ns (run_cnt, run_time_ns in the prog fd's fdinfo). Syscall
 * tracepoints run for every process on the machine and filter by pid inside, so the run count
 * is the whole host's cost, not only the gateway's; the bench reports it per proxied request.
 * The accounting itself adds two clock reads per run (a few tens of ns), to every agent arm alike.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

export interface ProgStat {
  id: number;
  name: string;
  type: string;
  runCnt: number;
  runTimeNs: number;
}

/** Turns the accounting on; the returned function puts the previous value back. */
export function enableBpfStats(): () => void {
  const fs = require('node:fs') as typeof import('node:fs');
  const before = fs.readFileSync(SYSCTL, 'utf8').trim();
  fs.writeFileSync(SYSCTL, '1');
  return () => fs.writeFileSync(SYSCTL, before);
}

/**
 * Programs held open by `pid`, read from its fds (/proc/<pid>/fdinfo: prog_id, run_cnt,
 * run_time_ns), named through `bpftool -j prog show` (this bpftool has no pids field).
 */
export async function programsOf(pid: number): Promise<ProgStat[]> {
  const fs = require('node:fs') as typeof import('node:fs');
  const byId = new Map<number, { runCnt: number; runTimeNs: number }>();
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    let info: string;
    try {
      info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const id = /^prog_id:\s+(\d+)/m.exec(info);
    // bpf_link fds name their program too, without its counters: only program fds count.
    if (!id || !/^run_cnt:/m.test(info)) continue;
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    byId.set(Number(id[1]), { runCnt: field('run_cnt'), runTimeNs: field('run_time_ns') });
  }
  if (byId.size === 0) return [];
  const names = await programNames();
  return [...byId].map(([id, c]) => ({
    id,
    name: names.get(id)?.name ?? `prog${id}`,
    type: names.get(id)?.type ?? '',
    ...c,
  }));
}

async function programNames(): Promise<Map<number, { name: string; type: string }>> {
  try {
    const { stdout } = await run('bpftool', ['-j', 'prog', 'show'], { maxBuffer: 64 * 1024 * 1024 });
    const progs = JSON.parse(stdout) as { id: number; name?: string; type: string }[];
    return new Map(progs.map((p) => [p.id, { name: p.name ?? '', type: p.type }]));
  } catch {
    return new Map();
  }
}

export interface HookDelta {
  runs: number;
  runTimeNs: number;
  /** per program name: runs and ns in the interval */
  byProgram: Record<string, { runs: number; ns: number }>;
}

export function hookDelta(before: ProgStat[], after: ProgStat[]): HookDelta {
  const prior = new Map(before.map((p) => [p.id, p]));
  const out: HookDelta = { runs: 0, runTimeNs: 0, byProgram: {} };
  for (const p of after) {
    const b = prior.get(p.id);
    const runs = p.runCnt - (b?.runCnt ?? 0);
    const ns = p.runTimeNs - (b?.runTimeNs ?? 0);
    out.runs += runs;
    out.runTimeNs += ns;
    const row = (out.byProgram[p.name] ??= { runs: 0, ns: 0 });
    row.runs += runs;
    row.ns += ns;
  }
  return out;
}

export function bpftoolVersion(): string {
  try {
    return execFileSync('bpftool', ['version'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return 'unknown';
  }
}
