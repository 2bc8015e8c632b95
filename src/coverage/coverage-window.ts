import type { Counts } from '../process/counts.js';
import { SCHEMA_VERSION, type CoverageRow } from '../schema/index.js';
import type { Mark } from '../spool/checkpoint-record.js';

/** One run of the service (or of `replay`), as its coverage rows name it. */
export interface RunInfo {
  runId: string;
  kind: 'serve' | 'replay';
  startedAt: number;
  cluster: string;
  nodeName: string;
  version: string;
  configHash: string;
  /** How the run before it on the same spool ended. */
  previousRunEnd: 'clean' | 'crash' | 'none';
  /** When the run before it was last known to be alive (its spool lock's last refresh), when it crashed. */
  previousLastAlive: number | null;
  /**
   * The settings that decided its flows' outcomes (config/outcome-settings.ts): a later run that
   * makes its records into rows again decides them the same way. Absent in runs of older versions.
   */
  outcomes?: unknown;
}

export type WindowEndReason = 'window' | 'stop' | 'crash';

/** Bytes of an export file Fluent Bit never sent, as a HubbleCoverage row lists them. */
export interface UpstreamGap {
  File: string;
  Bytes: number;
  Ranges: [number, number][];
}

/** Most files listed in one row (their bytes are all counted). */
const MAX_GAPS_LISTED = 20;

/** A window as it stands, as plain data: persisted in every checkpoint. */
export interface WindowState {
  run: RunInfo;
  seq: number;
  start: number;
  /** The first record counted in it. */
  from: Mark;
  records: number;
  seen: number;
  kept: number;
  filtered: number;
  sampledOut: number;
  deadLettered: number;
  aggregated: number;
  rowsWritten: number;
  lost: number;
  busy: number;
  aggregating: boolean;
  gapBytes: number;
  gaps: UpstreamGap[];
  readsStarted: number;
}

/**
 * What one run counted in one window: the records made into rows (for the first time) while it was
 * open, where their flows went, and what happened around them; closed into a HubbleCoverage row.
 */
export class CoverageWindow {
  constructor(readonly s: WindowState) {}

  static open(run: RunInfo, seq: number, start: number, from: Mark): CoverageWindow {
    return new CoverageWindow({
      run, seq, start, from, records: 0, seen: 0, kept: 0, filtered: 0, sampledOut: 0, deadLettered: 0, aggregated: 0,
      rowsWritten: 0, lost: 0, busy: 0, aggregating: false, gapBytes: 0, gaps: [], readsStarted: 0,
    });
  }

  /** What one slice of a request (or a checkpoint) came to. */
  add(c: Counts): void {
    const s = this.s;
    s.records += c.records;
    s.seen += c.flowsSeen;
    const aggregated = c.outcomes.get('aggregated') ?? 0;
    s.kept += (c.outcomes.get('kept') ?? 0) + aggregated;
    s.aggregated += aggregated;
    s.filtered += c.outcomes.get('filtered') ?? 0;
    s.sampledOut += c.outcomes.get('sampled_out') ?? 0;
    s.deadLettered += c.flowsDeadLettered;
    for (const l of c.lost) s.lost += l.events;
  }

  written(rows: number): void {
    this.s.rowsWritten += rows;
  }

  refused(): void {
    this.s.busy++;
  }

  overloadAggregating(): void {
    this.s.aggregating = true;
  }

  /** What the export files' offsets said when the window closed: bytes that can no longer arrive, and reads begun again. */
  upstream(missingBytes: number, gaps: readonly UpstreamGap[], readsStarted: number): void {
    this.s.gapBytes += missingBytes;
    for (const g of gaps) if (this.s.gaps.length < MAX_GAPS_LISTED) this.s.gaps.push(g);
    this.s.readsStarted += readsStarted;
  }

  row(end: number, reason: WindowEndReason, oldestPendingSeconds: number): CoverageRow {
    const s = this.s;
    const r = s.run;
    return {
      TimeGenerated: iso(end),
      WindowStart: iso(s.start),
      WindowEnd: iso(end),
      Cluster: r.cluster,
      NodeName: r.nodeName,
      RunId: r.runId,
      RunKind: r.kind,
      WindowSequence: s.seq,
      PreviousRunEnd: r.previousRunEnd,
      WindowEndReason: reason,
      RecordsReceived: s.records,
      FlowsSeen: s.seen,
      FlowsKept: s.kept,
      FlowsFiltered: s.filtered,
      FlowsSampledOut: s.sampledOut,
      FlowsDeadLettered: s.deadLettered,
      FlowsAggregated: s.aggregated,
      RowsWritten: s.rowsWritten,
      HubbleLostEvents: s.lost,
      BackpressureResponses: s.busy,
      OldestPendingSeconds: Math.round(oldestPendingSeconds * 1000) / 1000,
      OverloadAggregating: s.aggregating,
      UpstreamGapBytes: s.gapBytes,
      UpstreamGaps: s.gaps.length > 0 ? s.gaps : null,
      UpstreamReadsStarted: s.readsStarted,
      ConfigHash: r.configHash,
      Version: r.version,
      SchemaVersion: SCHEMA_VERSION,
    };
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
