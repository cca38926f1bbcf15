/**
 * Which Kubernetes pod a process belongs to, read from procfs alone (no API server access): the
 * pod UID and container id from its cgroup path, the pod name from the HOSTNAME the kubelet sets,
 * the namespace from the service account mount inside the process's root. A DaemonSet agent
 * labels each Kong's requests with it.
 */
import fs from 'node:fs';

export interface PodMetadata {
  uid: string;
  name?: string;
  namespace?: string;
  containerId?: string;
}

// cgroupfs: /kubepods/burstable/pod<uid>/<id>; systemd: kubepods-burstable-pod<uid_with_underscores>.slice
const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/;
const CONTAINER_ID = /(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$/;
const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export function parsePodCgroup(cgroup: string): Pick<PodMetadata, 'uid' | 'containerId'> | undefined {
  for (const line of cgroup.split('\n')) {
    const path = line.slice(line.lastIndexOf(':') + 1);
    const uid = POD_UID.exec(path)?.[1];
    if (uid === undefined) continue;
    return { uid: uid.replace(/_/g, '-'), containerId: CONTAINER_ID.exec(path)?.[1] };
  }
  return undefined;
}

/** HOSTNAME from a NUL-separated environ block: the pod's name unless the pod sets hostname. */
export function hostnameFromEnviron(environ: string): string | undefined {
  for (const entry of environ.split('\0')) {
    if (entry.startsWith('HOSTNAME=')) return entry.slice('HOSTNAME='.length) || undefined;
  }
  return undefined;
}

/** undefined when the process is not in a Kubernetes pod (or procfs says nothing). */
export function readPodMetadata(hostProc: string, pid: number): PodMetadata | undefined {
  const base = `${hostProc}/${pid}`;
  const ids = parsePodCgroup(readText(`${base}/cgroup`) ?? '');
  if (ids === undefined) return undefined;
  return {
    ...ids,
    name: hostnameFromEnviron(readText(`${base}/environ`) ?? ''),
    namespace: readText(`${base}/root${SERVICE_ACCOUNT_NAMESPACE}`)?.trim() || undefined,
  };
}

function readText(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}
