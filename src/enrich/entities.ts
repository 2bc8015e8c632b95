/**
 * What an endpoint is, from Cilium's reserved labels and identities; names and CIDR groups from its
 * labels. Cilium writes labels as `source:key=value` (`reserved:world`, `fqdn:*.example.com`,
 * `cidrgroup:io.cilium.policy.cidrgroupname/corp`).
 */

// Reserved identities (pkg/identity): 1 host, 2 world, 3 unmanaged, 4 health, 5 init,
// 6 remote-node, 7 kube-apiserver, 8 ingress, 9 world-ipv4, 10 world-ipv6.
const RESERVED_IDENTITY: ReadonlyMap<number, string> = new Map([
  [1, 'host'], [2, 'world'], [3, 'unmanaged'], [4, 'health'], [5, 'init'], [6, 'remote-node'],
  [7, 'kube-apiserver'], [8, 'ingress'], [9, 'world'], [10, 'world'],
]);

// When an endpoint carries several reserved labels (the API server on a node is host and
// kube-apiserver), the more specific one names it.
const RESERVED_ORDER = ['kube-apiserver', 'ingress', 'health', 'remote-node', 'host', 'init', 'unmanaged', 'world', 'world-ipv4', 'world-ipv6'];

/** The entity an endpoint's reserved labels name, if any. */
export function reservedEntity(labels: unknown): string | null {
  let best = -1;
  if (Array.isArray(labels)) {
    for (const l of labels) {
      if (typeof l !== 'string' || !l.startsWith('reserved:')) continue;
      const i = RESERVED_ORDER.indexOf(l.slice(9));
      if (i >= 0 && (best < 0 || i < best)) best = i;
    }
  }
  if (best < 0) return null;
  const name = RESERVED_ORDER[best]!;
  return name.startsWith('world') ? 'world' : name;
}

/** What an endpoint is: its reserved labels' entity, else its reserved identity, else pod or remote cluster. */
export function entityOf(fromLabels: string | null, identity: number | null, podName: string | null, clusterName: string | null, ownCluster: string | null): string | null {
  if (fromLabels !== null) return fromLabels;
  if (identity !== null && RESERVED_IDENTITY.has(identity)) return RESERVED_IDENTITY.get(identity)!;
  if (podName !== null) return clusterName !== null && ownCluster !== null && clusterName !== ownCluster ? 'cluster' : 'pod';
  return null;
}

/** Values of the labels of one source (`fqdn`, `cidrgroup`), without the prefix. */
export function labelValues(labels: unknown, source: string): string[] {
  const out: string[] = [];
  if (!Array.isArray(labels)) return out;
  const prefix = `${source}:`;
  for (const l of labels) if (typeof l === 'string' && l.startsWith(prefix)) out.push(l.slice(prefix.length));
  return out;
}

export function cidrGroups(labels: unknown): string[] | null {
  const groups = labelValues(labels, 'cidrgroup').map((v) => {
    const slash = v.lastIndexOf('/');
    const name = slash >= 0 ? v.slice(slash + 1) : v;
    const eq = name.indexOf('=');
    return eq >= 0 ? name.slice(0, eq) : name;
  });
  return groups.length > 0 ? groups : null;
}

/** The destination's DNS names, then the FQDN selectors of its labels (`fqdnLabels`), once each. */
export function fqdns(names: unknown, fqdnLabels: readonly string[]): string[] | null {
  if (!Array.isArray(names) && fqdnLabels.length === 0) return null;
  const out = new Set<string>();
  if (Array.isArray(names)) for (const n of names) if (typeof n === 'string') out.add(n);
  for (const f of fqdnLabels) out.add(f);
  return out.size > 0 ? [...out] : null;
}
