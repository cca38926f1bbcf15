import type { PodMetadata } from './pod-metadata';

/** What discovery reports about one Kong (OpenResty/nginx) process. */
export interface KongProcess {
  pid: number;
  role: 'master' | 'worker';
  /** the master's pid; equal to pid for a master */
  masterPid: number;
  /** the -p prefix of the master (workers carry their master's) */
  prefix?: string;
  /** binary path inside the process's own mount namespace, from <hostProc>/<pid>/exe */
  exePath: string;
  /** the same binary reachable from the agent: <hostProc>/<pid>/root<exePath>; use it for uprobes */
  binaryPath: string;
  /** NUL-separated argv joined with spaces (nginx's process title) */
  cmdline: string;
  /** inode of the network namespace, 0 when unreadable */
  netnsInode: number;
  /** start time in clock ticks since boot (field 22 of stat); with pid, identifies the process */
  startTime: number;
  /** the Kubernetes pod it runs in, when it runs in one */
  pod?: PodMetadata;
}

export type DiscoveryScope = 'netns' | 'host';

export interface KongDiscoveryOptions {
  /** procfs to scan (HOST_PROC), default /proc */
  hostProc: string;
  /** KONG_PROCESS_NAME: a prefix path component, or a comm/exe name, that marks Kong (default kong) */
  processName: string;
  /** KONG_PREFIX: only the master started with exactly this -p prefix */
  prefix?: string;
  /** netns: only Kong in the agent's own network namespace; host: every Kong on the node */
  scope: DiscoveryScope;
  /** rescan period, default 1000 ms */
  intervalMs: number;
  /** how often long-lived non-Kong processes are looked at again (they may exec nginx), default 5000 ms */
  sweepMs: number;
  /** the agent's own network namespace link, default /proc/self/ns/net */
  selfNetnsPath: string;
}

export interface KongDiscoveryEvents {
  add: [proc: KongProcess];
  remove: [pid: number, proc: KongProcess];
}
