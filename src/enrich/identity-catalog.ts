import { SCHEMA_VERSION, type FlowRow, type IdentityRow } from '../schema/index.js';
import { BoundedMap, labelsBytes, type BoundedMapLimits } from './bounded-map.js';
import { sameLabels } from './label-facts.js';

export type EndpointLabels = 'identities' | 'rows' | 'both';

interface Seen {
  cluster: string | null;
  node: string | null;
  labels: readonly unknown[];
  at: number;
}

/**
 * Endpoint labels belong to a Cilium security identity, not to a flow: the same 10-40 labels repeat
 * on every flow of a pod, and were most of each row's bytes. The catalog writes an identity's labels
 * to HubbleIdentities when a flow first uses it (again when its labels differ, and every refresh
 * period while in use), and, in `identities` mode, takes them off the flow row.
 *
 * Rows are keyed by the observing cluster and node: node-local identities (CIDR, >= 2^24) mean
 * something only there, and keying every identity that way lets analysts join on one rule. An
 * instance sees one node's flows, so memory is by identity number, and an identity seen from
 * another node than the one remembered counts as new. Bounded in entries and label bytes: a sender
 * inventing identities costs rows written again, never unbounded memory.
 */
export class IdentityCatalog {
  private readonly seen: BoundedMap<number, Seen>;
  private pending: IdentityRow[] = [];
  private readonly refreshMs: number;

  constructor(
    private readonly mode: EndpointLabels,
    refreshSeconds: number,
    limits: BoundedMapLimits,
  ) {
    this.refreshMs = refreshSeconds * 1000;
    this.seen = new BoundedMap(limits, (s) => labelsBytes(s.labels) + 64);
  }

  /** Identities forgotten to stay within the bounds since the start. */
  get evicted(): number {
    return this.seen.evicted;
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

  private note(row: FlowRow, identity: number | null, namespace: string | null, labels: unknown, now: number): void {
    if (identity === null || !Array.isArray(labels)) return;
    const prev = this.seen.get(identity);
    if (prev && now - prev.at < this.refreshMs && prev.node === row.NodeName && prev.cluster === row.Cluster && sameLabels(prev.labels, labels)) return;
    this.seen.set(identity, { cluster: row.Cluster, node: row.NodeName, labels, at: now });
    this.pending.push({
      TimeGenerated: new Date(now).toISOString(),
      Cluster: row.Cluster,
      NodeName: row.NodeName,
      Identity: identity,
      Namespace: namespace,
      Labels: labels,
      ReceiverNode: null,
      RunId: null,
      SchemaVersion: SCHEMA_VERSION,
    });
  }
}
