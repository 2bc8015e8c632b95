import { SCHEMA_VERSION, type FlowRow, type IdentityRow } from '../schema/index.js';
import { sameLabels } from './label-facts.js';

export type EndpointLabels = 'identities' | 'rows' | 'both';

interface Seen {
  labels: readonly unknown[];
  at: number;
}

/** Past this many remembered identities the memory is cleared: the cost is a few rows written again. */
const MAX_REMEMBERED = 65_536;

/**
 * Endpoint labels belong to a Cilium security identity, not to a flow: the same 10-40 labels repeat
 * on every flow of a pod, and were most of each row's bytes. The catalog writes an identity's labels
 * to HubbleIdentities when a flow first uses it (again when its labels differ, and every refresh
 * period while in use), and, in `identities` mode, takes them off the flow row.
 *
 * Keyed by the observing cluster and node: node-local identities (CIDR, >= 2^24) mean something
 * only there, and keying every identity that way lets analysts join on one rule.
 */
export class IdentityCatalog {
  /** By observing cluster and node, then identity: no key string is built per flow. */
  private seen = new Map<string, Map<number, Seen>>();
  private remembered = 0;
  private lastCluster: string | null = null;
  private lastNode: string | null = null;
  private lastMap: Map<number, Seen> | null = null;
  private pending: IdentityRow[] = [];
  private readonly refreshMs: number;

  constructor(
    private readonly mode: EndpointLabels,
    refreshSeconds: number,
  ) {
    this.refreshMs = refreshSeconds * 1000;
  }

  /** Note the row's identities (when it will be written), then strip its labels if so configured. */
  observe(row: FlowRow, now: number): void {
    if (this.mode === 'rows') return;
    this.note(row, row.SourceIdentity, row.SourceNamespace, row.SourceLabels, now);
    this.note(row, row.DestinationIdentity, row.DestinationNamespace, row.DestinationLabels, now);
    if (this.mode === 'identities') {
      row.SourceLabels = null;
      row.DestinationLabels = null;
    }
  }

  /** Identity rows noted since the last call. */
  take(): IdentityRow[] {
    if (this.pending.length === 0) return [];
    const out = this.pending;
    this.pending = [];
    return out;
  }

  forget(rows: readonly IdentityRow[]): void {
    for (const r of rows) if (r.Identity !== null && this.seen.get(whereKey(r.Cluster, r.NodeName))?.delete(r.Identity)) this.remembered--;
  }

  private mapFor(cluster: string | null, node: string | null): Map<number, Seen> {
    // Nearly every flow of an instance has the same cluster and node: compare before building a key.
    if (this.lastMap && cluster === this.lastCluster && node === this.lastNode) return this.lastMap;
    const key = whereKey(cluster, node);
    let m = this.seen.get(key);
    if (!m) this.seen.set(key, (m = new Map()));
    this.lastCluster = cluster;
    this.lastNode = node;
    this.lastMap = m;
    return m;
  }

  private note(row: FlowRow, identity: number | null, namespace: string | null, labels: unknown, now: number): void {
    if (identity === null || !Array.isArray(labels)) return;
    const seen = this.mapFor(row.Cluster, row.NodeName);
    const prev = seen.get(identity);
    if (prev && now - prev.at < this.refreshMs && sameLabels(prev.labels, labels)) return;
    if (!prev && this.remembered >= MAX_REMEMBERED) {
      for (const m of this.seen.values()) m.clear();
      this.remembered = 0;
    }
    if (!prev) this.remembered++;
    seen.set(identity, { labels, at: now });
    this.pending.push({
      TimeGenerated: new Date(now).toISOString(),
      Cluster: row.Cluster,
      NodeName: row.NodeName,
      Identity: identity,
      Namespace: namespace,
      Labels: labels,
      SchemaVersion: SCHEMA_VERSION,
    });
  }
}

const whereKey = (cluster: string | null, node: string | null) => `${cluster ?? ''}/${node ?? ''}`;
