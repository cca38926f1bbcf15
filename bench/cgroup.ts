/**
 * A CPU-limited cgroup for the sidecar's own limit (the manifests give it 200m): cgroup v1's
 * cpu controller (cpu.cfs_quota_us / cpu.cfs_period_us, as on these VMs) or cgroup v2's cpu.max,
 * whichever this host has. `wrap` turns a command into one that runs inside the group from its
 * first instruction.
 */
import fs from 'node:fs';
import path from 'node:path';

const PERIOD_US = 100_000;

export interface CpuLimit {
  /** e.g. 0.2 for 200m */
  cpus: number;
  /** where the group lives, for the report */
  path: string;
  version: 1 | 2;
  /** the command, run inside the group */
  wrap(command: string[]): string[];
  remove(): void;
}

function v2Root(): string | undefined {
  for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    try {
      if (fs.readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) return root;
    } catch {
      // not a v2 root with the cpu controller
    }
  }
  return undefined;
}

export function createCpuLimit(name: string, cpus: number): CpuLimit {
  const quota = Math.round(cpus * PERIOD_US);
  let dir: string;
  let version: 1 | 2;
  const root2 = v2Root();
  if (root2) {
    version = 2;
    dir = path.join(root2, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
  } else if (fs.existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) {
    version = 1;
    dir = path.join('/sys/fs/cgroup/cpu', name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
    fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(quota));
  } else {
    throw new Error('no cgroup cpu controller found (neither v2 cpu.max nor v1 cpu.cfs_quota_us)');
  }
  const procs = path.join(dir, 'cgroup.procs');
  return {
    cpus,
    path: dir,
    version,
    // The shell joins the group, then execs the command: every thread it starts is inside.
    wrap: (command) => ['sh', '-c', `echo $$ > ${procs} && exec "$@"`, 'sh', ...command],
    remove() {
      try {
        fs.rmdirSync(dir);
      } catch {
        // still has members (a process that outlived its stop); the next run reuses it
      }
    },
  };
}
