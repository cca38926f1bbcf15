/**
 * The Kubernetes pod of each Kong process, for an agent that watches a whole node
 * (KONG_WATCH_SCOPE=host): discovery reads it from procfs once per process, the enrichment stage
 * looks it up once per exchange by pid. A sidecar's pod is its resource instead, and has no table.
 */
import type { PodMetadata } from '../discovery/pod-metadata';

export interface PodInfo {
  /** Stable per namespace/name for the agent's life (metric series are keyed by it); -1 = overflow */
  readonly index: number;
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
}

/** Distinct pods given their own metric series over the agent's life. */
export const MAX_POD_INDEXES = 65535;
/** Exchanges of a process can be reported after it exits (KW_ERR_PROCESS_EXITED): keep its pod a while. */
const RETIRE_MS = 10_000;

export class PodTable {
  private readonly byPid = new Map<number, PodInfo>();
  private readonly retired = new Map<number, number>();
  private readonly indexes = new Map<string, number>();

  get(pid: number): PodInfo | undefined {
    return this.byPid.get(pid);
  }

  set(pid: number, pod: PodMetadata | undefined): void {
    this.retired.delete(pid);
    if (pod === undefined) {
      this.byPid.delete(pid);
      return;
    }
    const key = `${pod.namespace ?? ''}/${pod.name ?? ''}`;
    let index = this.indexes.get(key);
    if (index === undefined) {
      index = this.indexes.size < MAX_POD_INDEXES ? this.indexes.size + 1 : -1;
      if (index > 0) this.indexes.set(key, index);
    }
    this.byPid.set(pid, { index, name: pod.name, namespace: pod.namespace, uid: pod.uid });
  }

  /** The process is gone: its pod is forgotten once its last exchanges have had time to arrive. */
  release(pid: number, now = Date.now()): void {
    if (this.byPid.has(pid)) this.retired.set(pid, now);
  }

  /** Forgets pods released more than a few seconds ago; call periodically. */
  expire(now = Date.now()): void {
    for (const [pid, at] of this.retired) {
      if (now - at < RETIRE_MS) continue;
      this.retired.delete(pid);
      this.byPid.delete(pid);
    }
  }
}
