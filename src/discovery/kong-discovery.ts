/**
 * Follows Kong's processes through procfs: the master (see classify.ts) and its worker children,
 * across reloads (new workers) and restarts (new master), emitting `add` and `remove`.
 *
 * The kernel reports forks, execs and exits of the processes it follows (and execs of nginx) as
 * they happen: check() and exited() act on one pid at once, between scans.
 *
 * Cost on a host with thousands of processes: each scan lists the procfs root, reads `stat` only
 * for pids it has not classified yet, for young pids (a fresh process may still exec nginx or set
 * its title) and for a rotating slice of old ones (a long-lived process may exec nginx, as Kong's
 * entrypoint does), and reads `cmdline` only when comm is nginx or processName. Kong pids are
 * re-checked every scan by pid + start time, so a reused pid is never taken for the old process.
 */
import { EventEmitter } from 'node:events';
import { isCandidateComm, isWorkerTitle, matchKongMaster } from './classify';
import { readPodMetadata } from './pod-metadata';
import { listPids, readCmdline, readExe, readNsInode, readStat, type ProcStat } from './procfs';
import type { KongDiscoveryEvents, KongDiscoveryOptions, KongProcess } from './types';

interface Entry {
  startTime: number;
  firstSeen: number;
  /** when a non-Kong process is looked at again */
  nextCheck: number;
  kong?: KongProcess;
}

interface Inspected {
  pid: number;
  stat: ProcStat;
  firstSeen: number;
  cmdline?: string;
}

export const DEFAULT_DISCOVERY_OPTIONS: KongDiscoveryOptions = {
  hostProc: '/proc',
  processName: 'kong',
  scope: 'netns',
  // The kernel reports a new master's exec and its workers' forks and exits at once; the scan is
  // for what it cannot report (a Kong already running at start), so it need not be frequent.
  intervalMs: 1000,
  sweepMs: 5000,
  selfNetnsPath: '/proc/self/ns/net',
};

export class KongDiscovery extends EventEmitter<KongDiscoveryEvents> {
  readonly options: KongDiscoveryOptions;
  private readonly entries = new Map<number, Entry>();
  private readonly selfNetns: number;
  private readonly youngMs: number;
  private timer: NodeJS.Timeout | undefined;
  private scanned = false;

  constructor(options: Partial<KongDiscoveryOptions> = {}) {
    super();
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...DEFAULT_DISCOVERY_OPTIONS, ...defined };
    this.options.hostProc = this.options.hostProc.replace(/\/+$/, '') || '/';
    this.selfNetns = readNsInode(this.options.selfNetnsPath);
    this.youngMs = Math.max(2 * this.options.sweepMs, 10_000);
  }

  /** Scans once now (listeners attached before start() see the initial processes), then periodically. */
  start(): void {
    if (this.timer) return;
    this.scan();
    this.timer = setInterval(() => this.scan(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Kong processes known right now, masters first. */
  processes(): KongProcess[] {
    const all = [...this.entries.values()].flatMap((e) => (e.kong ? [e.kong] : []));
    return all.sort((a, b) => (a.role === b.role ? a.pid - b.pid : a.role === 'master' ? -1 : 1));
  }

  /**
   * Looks at one pid now (an exec or a fork the kernel reported), whatever the scan's schedule.
   * A process that is not recognisably Kong yet (nginx sets its title after exec, a worker after
   * fork) is treated as young, so the next scans look at it again.
   */
  check(pid: number, now = Date.now(), execed = false): void {
    try {
      const entry = this.entries.get(pid);
      const stat = readStat(this.options.hostProc, pid);
      if (!stat) return;
      if (entry?.kong && entry.startTime === stat.startTime) return;
      if (entry) this.forget(pid, entry);
      const item: Inspected = { pid, stat, firstSeen: now };
      if (isCandidateComm(stat.comm, this.options.processName)) item.cmdline = readCmdline(this.options.hostProc, pid);
      if (!this.tryMaster(item, now, execed) && !this.tryWorker(item)) this.remember(item, now);
    } catch {
      // As scan(): unexpected procfs content never stops the agent.
    }
  }

  /** The kernel saw this pid exit: forget it now rather than at the next scan. */
  exited(pid: number): void {
    const entry = this.entries.get(pid);
    if (entry) this.forget(pid, entry);
  }

  /** One pass over procfs; never throws. */
  scan(now = Date.now()): void {
    try {
      this.scanOnce(now);
    } catch {
      // Unexpected procfs content must not take the agent down; the next scan starts over.
    }
  }

  private scanOnce(now: number): void {
    const pids = listPids(this.options.hostProc);
    // An unreadable procfs is not "every process exited": keep what is known until it reads again.
    if (pids.length === 0) return;
    const present = new Set(pids);
    for (const [pid, entry] of this.entries) {
      if (!present.has(pid)) this.forget(pid, entry);
    }

    const firstScan = !this.scanned;
    this.scanned = true;
    const todo: Inspected[] = [];
    for (const pid of pids) {
      let entry = this.entries.get(pid);
      if (entry && !entry.kong && now < entry.nextCheck) continue;
      const stat = readStat(this.options.hostProc, pid);
      if (!stat) continue;
      if (entry && entry.startTime !== stat.startTime) {
        this.forget(pid, entry);
        entry = undefined;
      }
      if (entry?.kong) continue;
      todo.push({ pid, stat, firstSeen: entry?.firstSeen ?? (firstScan ? -Infinity : now) });
    }

    for (const item of todo) {
      if (isCandidateComm(item.stat.comm, this.options.processName)) {
        item.cmdline = readCmdline(this.options.hostProc, item.pid);
      }
    }
    // Masters before workers, so workers found in the same pass as their master are recognised.
    const rest: Inspected[] = [];
    for (const item of todo) {
      if (!this.tryMaster(item, now)) rest.push(item);
    }
    for (const item of rest) {
      if (!this.tryWorker(item)) this.remember(item, now);
    }
  }

  private kongMaster(pid: number): KongProcess | undefined {
    const kong = this.entries.get(pid)?.kong;
    return kong?.role === 'master' ? kong : undefined;
  }

  private describe(item: Inspected, role: KongProcess['role'], masterPid: number, prefix?: string): KongProcess {
    const { hostProc } = this.options;
    const exePath = readExe(hostProc, item.pid) ?? '';
    return {
      pid: item.pid,
      role,
      masterPid,
      prefix,
      exePath,
      binaryPath: exePath ? `${hostProc}/${item.pid}/root${exePath}` : `${hostProc}/${item.pid}/exe`,
      cmdline: item.cmdline ?? '',
      netnsInode: readNsInode(`${hostProc}/${item.pid}/ns/net`),
      startTime: item.stat.startTime,
      pod: readPodMetadata(hostProc, item.pid),
    };
  }

  private tryMaster(item: Inspected, now: number, execed = false): boolean {
    if (item.cmdline === undefined) return false;
    // A worker fresh out of fork() still shows its master's title until it renames itself; only a
    // child that keeps the title (a binary upgrade's new master) is a master of its own.
    if (this.kongMaster(item.stat.ppid) && now - item.firstSeen < this.youngMs) return false;
    const exePath = readExe(this.options.hostProc, item.pid);
    const title = matchKongMaster(
      { cmdline: item.cmdline, comm: item.stat.comm, exePath },
      this.options.processName,
      this.options.prefix,
      execed,
    );
    if (!title) return false;
    const proc = this.describe(item, 'master', item.pid, title.prefix);
    if (!this.inScope(proc)) return false;
    this.adopt(item, proc);
    return true;
  }

  private tryWorker(item: Inspected): boolean {
    if (item.cmdline === undefined || !isWorkerTitle(item.cmdline)) return false;
    const master = this.kongMaster(item.stat.ppid);
    if (!master) return false;
    this.adopt(item, this.describe(item, 'worker', master.pid, master.prefix));
    return true;
  }

  private inScope(proc: KongProcess): boolean {
    if (this.options.scope === 'host' || this.selfNetns === 0) return true;
    return proc.netnsInode === this.selfNetns;
  }

  private adopt(item: Inspected, proc: KongProcess): void {
    this.entries.set(item.pid, { startTime: item.stat.startTime, firstSeen: item.firstSeen, nextCheck: 0, kong: proc });
    this.emit('add', proc);
  }

  private remember(item: Inspected, now: number): void {
    const young = now - item.firstSeen < this.youngMs;
    // Old processes are revisited at a random point of the sweep period, spreading the reads.
    const nextCheck = young ? now : now + this.options.sweepMs * (0.5 + Math.random());
    this.entries.set(item.pid, { startTime: item.stat.startTime, firstSeen: item.firstSeen, nextCheck });
  }

  private forget(pid: number, entry: Entry): void {
    this.entries.delete(pid);
    if (entry.kong) this.emit('remove', pid, entry.kong);
  }
}
