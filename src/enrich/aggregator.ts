import { boundedJson } from '../json-values.js';
import type { FlowRow } from '../schema/index.js';

export interface AggregationOptions {
  windowSeconds: number;
  verdicts: readonly string[];
  key: readonly (keyof FlowRow)[];
  keepIps: boolean;
  /** Aggregate rows held for the window; a flow that would open one more stays a row of its own. */
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
 * Collapses the flows of the configured verdicts over a window into one row per key, with
 * FlowCount (sampling weight included), FirstSeen and LastSeen. Rows of other verdicts, denied ones
 * by default, pass through one by one. IPs stay unless `keepIps` is false.
 */
export class Aggregator {
  private groups = new Map<string, FlowRow>();
  private readonly verdicts: ReadonlySet<string>;
  private readonly nulled: (keyof FlowRow)[];
  private readonly key: readonly (keyof FlowRow)[];
  /** Flows left unaggregated because the window held maxKeys rows already, since the start. */
  overflowed = 0;

  constructor(private readonly o: AggregationOptions) {
    this.verdicts = new Set(o.verdicts);
    this.key = o.keepIps ? o.key : o.key.filter((k) => !IP_COLUMNS.includes(k));
    this.nulled = [...PER_FLOW, ...(o.keepIps ? [] : IP_COLUMNS)].filter((c) => !this.key.includes(c));
  }

  /** Absorbs the row when its verdict is aggregated (returns true); else the caller keeps it. */
  absorb(row: FlowRow): boolean {
    if (row.Verdict === null || !this.verdicts.has(row.Verdict)) return false;
    let k = '';
    for (const c of this.key) k += `${keyPart(row[c])}\u0000`;
    const count = (row.FlowCount ?? 1) * (row.SamplingWeight ?? 1);
    const t = row.TimeGenerated as string;
    const g = this.groups.get(k);
    // A group stays an exact count: a flow that would take it past 2^53 starts no sum, it is kept on its own.
    if (g && (g.FlowCount ?? 0) + count > Number.MAX_SAFE_INTEGER) return false;
    if (!g) {
      if (this.groups.size >= this.o.maxKeys) {
        this.overflowed++;
        return false;
      }
      for (const c of this.nulled) (row as Record<string, unknown>)[c] = null;
      row.FlowCount = count;
      row.SamplingWeight = 1;
      row.FirstSeen = t;
      row.LastSeen = t;
      this.groups.set(k, row);
      return true;
    }
    g.FlowCount = (g.FlowCount ?? 0) + count;
    if (t < (g.FirstSeen as string)) g.FirstSeen = t;
    if (t > (g.LastSeen as string)) g.LastSeen = t;
    return true;
  }

  get size(): number {
    return this.groups.size;
  }

  /** The aggregated rows of the window that ends now. */
  take(): FlowRow[] {
    const rows = [...this.groups.values()];
    this.groups = new Map();
    return rows;
  }
}
