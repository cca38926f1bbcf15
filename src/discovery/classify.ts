/**
 * Recognising Kong from a process title. Kong's master runs as
 *   nginx: master process /usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf
 * and its workers as "nginx: worker process" ("... is shutting down" while draining after a
 * reload). `kong health` / `kong prepare` exec the same binary as one short-lived process with
 * the raw argv (no title), which is never a master and so is never picked up.
 */
import path from 'node:path';

const MASTER_TITLE = 'nginx: master process';
const WORKER_TITLE = 'nginx: worker process';

export interface MasterTitle {
  /** the -p argument, trailing slashes removed; undefined when the master has none */
  prefix?: string;
}

export function normalizePrefix(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/** The master title's arguments, or undefined when the cmdline is not an nginx master title. */
export function parseMasterTitle(cmdline: string): MasterTitle | undefined {
  if (!cmdline.startsWith(MASTER_TITLE)) return undefined;
  const args = cmdline.slice(MASTER_TITLE.length).trim().split(/\s+/);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-p' && i + 1 < args.length) return { prefix: normalizePrefix(args[i + 1]) };
    if (args[i].startsWith('-p') && args[i].length > 2) return { prefix: normalizePrefix(args[i].slice(2)) };
  }
  return {};
}

/**
 * The arguments of a process that has just exec'd nginx and not set its title yet (the master
 * renames itself only once its configuration is loaded, just before it forks the workers):
 * `<.../nginx> ... -p <prefix> ...`. Undefined when it is not nginx started with a prefix.
 */
export function parseExecArgv(cmdline: string): MasterTitle | undefined {
  if (cmdline.startsWith('nginx: ')) return undefined;
  const args = cmdline.trim().split(/\s+/);
  if (path.basename(args[0] ?? '') !== 'nginx') return undefined;
  for (let i = 1; i < args.length; i++) {
    if (args[i] === '-p' && i + 1 < args.length) return { prefix: normalizePrefix(args[i + 1]) };
    if (args[i].startsWith('-p') && args[i].length > 2) return { prefix: normalizePrefix(args[i].slice(2)) };
  }
  return undefined;
}

export function isWorkerTitle(cmdline: string): boolean {
  return cmdline === WORKER_TITLE || cmdline.startsWith(`${WORKER_TITLE} `);
}

/** comm is cut to 15 bytes by the kernel, so a long processName is compared by its first 15. */
export function commMatches(comm: string, processName: string): boolean {
  return comm === processName.slice(0, 15);
}

/** Whether discovery should look at this process's cmdline at all (the cheap first filter). */
export function isCandidateComm(comm: string, processName: string): boolean {
  return comm === 'nginx' || commMatches(comm, processName);
}

export interface MasterMatchInput {
  cmdline: string;
  comm: string;
  exePath?: string;
}

/**
 * Decides whether a process is a Kong master. With a configured prefix only that exact prefix
 * counts; otherwise a prefix with a path component equal to processName (/usr/local/kong), or a
 * binary/comm named processName.
 */
export function matchKongMaster(
  input: MasterMatchInput,
  processName: string,
  wantedPrefix?: string,
  /** the kernel just reported its exec: its raw arguments count as the title it will set */
  justExeced = false,
): MasterTitle | undefined {
  const title = parseMasterTitle(input.cmdline) ?? (justExeced ? parseExecArgv(input.cmdline) : undefined);
  if (!title) return undefined;
  // Seen by its arguments only: the prefix must say Kong (`kong health` runs nginx with a temporary one).
  if (justExeced && title.prefix === undefined) return undefined;
  if (wantedPrefix !== undefined) {
    return title.prefix !== undefined && title.prefix === normalizePrefix(wantedPrefix) ? title : undefined;
  }
  if (title.prefix !== undefined && title.prefix.split('/').includes(processName)) return title;
  if (commMatches(input.comm, processName)) return title;
  if (input.exePath !== undefined && path.basename(input.exePath) === processName) return title;
  return undefined;
}
