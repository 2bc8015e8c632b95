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
 */
export function labelBag(labels: unknown, keys: ReadonlySet<string>): Record<string, string> | null {
  if (!Array.isArray(labels) || keys.size === 0) return null;
  let bag: Record<string, string> | null = null;
  const fromNs: [string, string][] = [];
  for (const l of labels) {
    if (typeof l !== 'string' || !l.startsWith('k8s:')) continue;
    const eq = l.indexOf('=');
    if (eq < 0) continue;
    const key = l.slice(4, eq);
    const value = l.slice(eq + 1);
    if (key.startsWith(NS_LABEL.slice(4))) {
      const nsKey = key.slice(NS_LABEL.length - 4);
      if (keys.has(nsKey)) fromNs.push([nsKey, value]);
    } else if (keys.has(key)) {
      (bag ??= {})[key] = value;
    }
  }
  for (const [k, v] of fromNs) if (!bag || !(k in bag)) (bag ??= {})[k] = v;
  return bag;
}
