/**
 * Small, never-throwing readers for one process's procfs entries. Processes vanish between any
 * two reads, so every reader returns undefined (or 0) instead of failing.
 */
import fs from 'node:fs';

export interface ProcStat {
  comm: string;
  ppid: number;
  startTime: number;
}

/** Numeric entries of the procfs root; empty when it cannot be read. */
export function listPids(hostProc: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(hostProc);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c >= 48 && c <= 57 && /^\d+$/.test(name)) pids.push(Number(name));
  }
  return pids;
}

/** Parses /proc/<pid>/stat; comm may hold spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): ppid is field 4, starttime field 22
  const ppid = Number(rest[1]);
  const startTime = Number(rest[19]);
  if (!Number.isFinite(ppid) || !Number.isFinite(startTime)) return undefined;
  return { comm: text.slice(open + 1, close), ppid, startTime };
}

export function readStat(hostProc: string, pid: number): ProcStat | undefined {
  try {
    return parseStat(fs.readFileSync(`${hostProc}/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/** argv joined with spaces; nginx's rewritten title comes back as one string plus NUL padding. */
export function readCmdline(hostProc: string, pid: number): string | undefined {
  try {
    return fs.readFileSync(`${hostProc}/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ').trim();
  } catch {
    return undefined;
  }
}

/** Inode from a namespace link such as "net:[4026531840]"; 0 when unreadable. */
export function readNsInode(linkPath: string): number {
  try {
    const m = /\[(\d+)\]/.exec(fs.readlinkSync(linkPath));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Target of <hostProc>/<pid>/exe without the " (deleted)" mark of a replaced binary. */
export function readExe(hostProc: string, pid: number): string | undefined {
  try {
    return fs.readlinkSync(`${hostProc}/${pid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}
