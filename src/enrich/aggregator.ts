import { boundedJson } from '../json-values.js';
import type { FlowRow } from '../schema/index.js';

export interface AggregationOptions {
  verdicts: readonly string[];
  key: readonly (keyof FlowRow)[];
  keepIps: boolean;
  /** Aggregate rows held at once: the pipeline takes them (a checkpoint) before a slice could pass it. */
  maxKeys: number;
}

/** Per-flow details that do not describe the aggregate; nulled unless they are part of the key. */
const PER_FLOW: readonly (keyof FlowRow)[] = [
  'Uuid', 'SourcePort', 'TcpFlags', 'IsReply', 'Summary', 'AdditionalFlowData', 'L7LatencyNs', 'HttpUrl', 'DnsIps', 'DnsTtl',
  'IcmpType', 'IcmpCode', 'EventSubType', 'TraceObservationPoint', 'TraceReason',
];
const IP_COLUMNS: readonly (keyof FlowRow)[] = ['SourceIp', 'SourceIpXlated', 'DestinationIp'];

/** A key column's value as text: scalars as they print, anything else (a configured dynamic column) as JSON, never String() of it. */
function keyPart(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return boundedJson(v);
}

/**
 * Collapses the flows of the configured verdicts into one row per key until they are taken, with
 * FlowCount (the flows it stands for, Cilium's own aggregate counts included), AggregatedFlows (the
 * flow records folded into it), the SamplingWeight those records carried (part of the key: rows of
 * different weights are never folded together), FirstSeen and LastSeen. Rows of other verdicts,
 * denied ones by default, pass through one by one. IPs stay unless `keepIps` is false.
 */
export class Aggregator {
  private groups = new Map<string, FlowRow>();
  private readonly verdicts: ReadonlySet<string>;
  private readonly nulled: (keyof FlowRow)[];
  private readonly key: readonly (keyof FlowRow)[];

  constructor(private readonly o: AggregationOptions) {
    this.verdicts = new Set(o.verdicts);
    this.key = o.keepIps ? o.key : o.key.filter((k) => !IP_COLUMNS.includes(k));
    this.nulled = [...PER_FLOW, ...(o.keepIps ? [] : IP_COLUMNS)].filter((c) => !this.key.includes(c));
  }

  /** Whether a row of this verdict is folded here. */
  accepts(row: FlowRow): boolean {
    return row.Verdict !== null && this.verdicts.has(row.Verdict);
  }

  /** Fold a row this aggregator accepts into its group. */
  absorb(row: FlowRow): void {
    let k = `${row.SamplingWeight ?? 1}\u0000`;
    for (const c of this.key) k += `${keyPart(row[c])}\u0000`;
    const count = row.FlowCount ?? 1;
    const t = row.TimeGenerated as string;
    const g = this.groups.get(k);
    if (!g) {
      for (const c of this.nulled) (row as Record<string, unknown>)[c] = null;
      row.FlowCount = count;
      row.AggregatedFlows = 1;
      row.FirstSeen = t;
      row.LastSeen = t;
      this.groups.set(k, row);
      return;
    }
    // Counts per record are bounded (normalize): a sum past 2^53 is held there rather than made inexact.
    g.FlowCount = Math.min((g.FlowCount ?? 0) + count, Number.MAX_SAFE_INTEGER);
    g.AggregatedFlows = (g.AggregatedFlows ?? 0) + 1;
    if (t < (g.FirstSeen as string)) g.FirstSeen = t;
    if (t > (g.LastSeen as string)) g.LastSeen = t;
  }

  get size(): number {
    return this.groups.size;
  }

  /** Groups that can still be opened before maxKeys. */
  get room(): number {
    return this.o.maxKeys - this.groups.size;
  }

  /** The aggregated rows held now; the aggregator starts empty again. */
  take(): FlowRow[] {
    const rows = [...this.groups.values()];
    this.groups = new Map();
    return rows;
  }
}
