import { BoundedMap, labelsBytes, type BoundedMapLimits } from './bounded-map.js';
import { cidrGroups, labelValues, reservedEntity } from './entities.js';
import { serviceAccount, type LabelBag } from './workload.js';

/** Everything the enrich stage reads from an endpoint's labels. */
export interface LabelFacts {
  entity: string | null;
  cidrGroups: string[] | null;
  fqdnLabels: string[];
  serviceAccount: string | null;
  labelValues: Record<string, string> | null;
}

const NONE: LabelFacts = { entity: null, cidrGroups: null, fqdnLabels: [], serviceAccount: null, labelValues: null };


/**
 * Labels belong to a security identity, so what is read from them is the same for every flow of
 * that identity: read once per identity (the profile had label scanning at ~5% of the pipeline).
 * A cached entry is used only when the flow's labels are the same, so a reused identity number
 * or another cluster's identity gets its own reading. Facts are shared between rows: read-only.
 */
export class LabelFactsCache {
  private readonly byIdentity: BoundedMap<number, { labels: readonly unknown[]; facts: LabelFacts }>;

  /** `limits` bound what is remembered: past them the oldest readings are dropped (and done again). */
  constructor(
    private readonly bag: LabelBag,
    private readonly want: { entities: boolean; workloads: boolean },
    limits: BoundedMapLimits,
  ) {
    // The facts are read from the labels: about as large again.
    this.byIdentity = new BoundedMap(limits, (e) => 2 * labelsBytes(e.labels));
  }

  of(identity: number | null, labels: unknown): LabelFacts {
    if (!Array.isArray(labels)) return NONE;
    if (identity === null) return this.read(labels);
    const hit = this.byIdentity.get(identity);
    if (hit && sameLabels(hit.labels, labels)) return hit.facts;
    const facts = this.read(labels);
    this.byIdentity.set(identity, { labels, facts });
    return facts;
  }

  private read(labels: readonly unknown[]): LabelFacts {
    const e = this.want.entities;
    const w = this.want.workloads;
    return {
      entity: e ? reservedEntity(labels) : null,
      cidrGroups: e ? cidrGroups(labels) : null,
      fqdnLabels: e ? labelValues(labels, 'fqdn') : [],
      serviceAccount: w ? serviceAccount(labels) : null,
      labelValues: w ? this.bag.of(labels) : null,
    };
  }
}

export function sameLabels(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
