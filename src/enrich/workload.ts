import { dataMap } from '../json-values.js';

/**
 * Workload and ownership from a pod when Hubble did not name the workload (older Cilium, or
 * workloads not resolved): the controller's naming conventions say who owns the pod.
 */

const isLowerAlnum = (s: string) => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57))) return false;
  }
  return s.length > 0;
};
const isDigits = (s: string) => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return s.length > 0;
};

/**
 * `<deployment>-<pod-template-hash>-<5>`: Deployment (through its ReplicaSet);
 * `<statefulset>-<ordinal>`: StatefulSet; `<owner>-<5>`: a DaemonSet or Job pod (kind unknown).
 */
export function workloadFromPodName(pod: string): { name: string; kind: string | null } | null {
  const last = pod.lastIndexOf('-');
  if (last <= 0) return null;
  const suffix = pod.slice(last + 1);
  const head = pod.slice(0, last);
  if (isDigits(suffix)) return { name: head, kind: 'StatefulSet' };
  if (suffix.length !== 5 || !isLowerAlnum(suffix)) return null;
  const prev = head.lastIndexOf('-');
  const hash = prev > 0 ? head.slice(prev + 1) : '';
  if (hash.length >= 6 && hash.length <= 10 && isLowerAlnum(hash)) return { name: head.slice(0, prev), kind: 'Deployment' };
  return { name: head, kind: null };
}

const SA_LABEL = 'k8s:io.cilium.k8s.policy.serviceaccount=';
const NS_LABEL = 'k8s:io.cilium.k8s.namespace.labels.';

export function serviceAccount(labels: unknown): string | null {
  if (!Array.isArray(labels)) return null;
  for (const l of labels) if (typeof l === 'string' && l.startsWith(SA_LABEL)) return l.slice(SA_LABEL.length);
  return null;
}

/**
 * The configured label keys and their values: the pod's own label, else the namespace's
 * (`io.cilium.k8s.namespace.labels.<key>`), so a `team` label set on the namespace still counts.
 * Endpoints carry tens of labels: a label is only compared with the configured keys of the same
 * length, in place, and nothing is allocated for labels that are not wanted.
 */
export class LabelBag {
  /** Configured keys by length: byLength[n] lists the keys of n characters. */
  private readonly byLength: (string[] | undefined)[] = [];
  private readonly any: boolean;
  constructor(keys: readonly string[]) {
    for (const k of keys) (this.byLength[k.length] ??= []).push(k);
    this.any = keys.length > 0;
  }

  private match(l: string, from: number, eq: number): string | undefined {
    const candidates = this.byLength[eq - from];
    if (candidates) for (const k of candidates) if (l.startsWith(k, from)) return k;
    return undefined;
  }

  /** The values by key: a map without a prototype, so that a configured key is never one of Object's. */
  of(labels: unknown): Record<string, string> | null {
    if (!Array.isArray(labels) || !this.any) return null;
    let bag: Record<string, string> | null = null;
    let fromNs: [string, string][] | null = null;
    const nsLen = NS_LABEL.length;
    for (const l of labels) {
      if (typeof l !== 'string') continue;
      const eq = l.indexOf('=', 4);
      if (eq < 0) continue;
      // Only a label whose key has the length of a configured key can match: test that first.
      if (this.byLength[eq - 4] !== undefined && l.startsWith('k8s:')) {
        const podKey = this.match(l, 4, eq);
        if (podKey !== undefined) {
          (bag ??= dataMap())[podKey] = l.slice(eq + 1);
          continue;
        }
      }
      if (eq > nsLen && this.byLength[eq - nsLen] !== undefined && l.startsWith(NS_LABEL)) {
        const nsKey = this.match(l, nsLen, eq);
        if (nsKey !== undefined) (fromNs ??= []).push([nsKey, l.slice(eq + 1)]);
      }
    }
    if (fromNs) for (const [k, v] of fromNs) if (!bag || !(k in bag)) (bag ??= dataMap())[k] = v;
    return bag;
  }
}
