/**
 * The bench's control arm: a process that starts like the agent (same node, same environment,
 * finds the same Kong worker through /proc and logs the same readiness line), then loads no BPF,
 * attaches nothing and idles with the agent's timers. Its cost beside "off" is the noise floor:
 * whatever it changes is not the agent's doing.
 */
import fs from 'node:fs';

const prefix = process.env.KONG_PREFIX ?? '';

function readCmdline(pid: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+/g, ' ').trim();
  } catch {
    return '';
  }
}

function parentOf(pid: string): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
  } catch {
    return '';
  }
}

function line(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ level: 'info', msg, timestamp: new Date().toISOString(), ...fields })}\n`);
}

/** Workers of the master started with `-p <KONG_PREFIX>`, as the agent's discovery finds them. */
function findWorkers(): number[] {
  const pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  const masters = new Set(
    pids.filter((p) => {
      const cmd = readCmdline(p);
      return cmd.includes('master process') && prefix !== '' && cmd.includes(`-p ${prefix}`);
    }),
  );
  return pids.filter((p) => masters.has(parentOf(p)) && readCmdline(p).startsWith('nginx: worker process')).map(Number);
}

const seen = new Set<number>();
function discover(): void {
  for (const pid of findWorkers()) {
    if (seen.has(pid)) continue;
    seen.add(pid);
    line('monitoring Kong process', { pid, role: 'worker', noop: true });
  }
}

line('no-op control started; nothing is loaded or attached');
discover();
// The agent rescans /proc and logs stats on timers; the control keeps timers of the same period.
const timers = [setInterval(discover, 1000), setInterval(() => undefined, 1000)];
const stop = (): void => {
  for (const t of timers) clearInterval(t);
  line('stats', { requests: 0, lost_events: 0, events: 0, spans_exported: 0, spans_dropped: 0 });
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
