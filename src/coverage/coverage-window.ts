import type { Counts } from '../process/index.js';
import { SCHEMA_VERSION, type CoverageRow } from '../schema/index.js';

export interface CoverageOptions {
  windowSeconds: number;
  cluster: string;
  nodeName: string;
  configHash: string;
  version: string;
}

/**
 * What this instance saw, kept and set aside in one window, closed into a HubbleCoverage row when
 * the window ends, whether or not anything arrived (a heartbeat). Windows are aligned to the clock,
 * but the first starts when the process does and the last ends when it stops: consecutive rows of a
 * node touch, and a gap between them is time nothing was covered.
 */
export class CoverageWindow {
  private start: number;
  private end: number;
  private records = 0;
  private seen = 0;
  private kept = 0;
  private filtered = 0;
  private sampledOut = 0;
  private deadLettered = 0;
  private aggregated = 0;
  private rowsWritten = 0;
  private lost = 0;
  private busy = 0;
  private aggregating = false;

  constructor(
    private readonly o: CoverageOptions,
    now: number,
  ) {
    this.start = now;
    this.end = this.boundaryAfter(now);
  }

  /** What one request (or tick) came to. */
  add(c: Counts): void {
    this.records += c.records;
    this.seen += c.flowsSeen;
    const aggregated = c.outcomes.get('aggregated') ?? 0;
    this.kept += (c.outcomes.get('kept') ?? 0) + aggregated;
    this.aggregated += aggregated;
    this.filtered += c.outcomes.get('filtered') ?? 0;
    this.sampledOut += c.outcomes.get('sampled_out') ?? 0;
    this.deadLettered += c.flowsDeadLettered;
    for (const l of c.lost) this.lost += l.events;
  }

  written(rows: number): void {
    this.rowsWritten += rows;
  }

  refused(): void {
    this.busy++;
  }

  overloadAggregating(): void {
    this.aggregating = true;
  }

  /**
   * The row of the window once it has ended by `now` (at once when `final`: the process stops),
   * and the next window begins; else null.
   */
  close(now: number, oldestPendingSeconds: number, final: boolean): CoverageRow | null {
    if (!final && now < this.end) return null;
    const end = final ? Math.max(now, this.start) : this.end;
    const row: CoverageRow = {
      TimeGenerated: iso(end),
      WindowStart: iso(this.start),
      WindowEnd: iso(end),
      Cluster: this.o.cluster,
      NodeName: this.o.nodeName,
      RecordsReceived: this.records,
      FlowsSeen: this.seen,
      FlowsKept: this.kept,
      FlowsFiltered: this.filtered,
      FlowsSampledOut: this.sampledOut,
      FlowsDeadLettered: this.deadLettered,
      FlowsAggregated: this.aggregated,
      RowsWritten: this.rowsWritten,
      HubbleLostEvents: this.lost,
      BackpressureResponses: this.busy,
      OldestPendingSeconds: Math.round(oldestPendingSeconds * 1000) / 1000,
      OverloadAggregating: this.aggregating,
      ConfigHash: this.o.configHash,
      Version: this.o.version,
      SchemaVersion: SCHEMA_VERSION,
    };
    this.start = end;
    // A tick that comes late (a busy event loop) closes one window; the next catches up.
    this.end = this.boundaryAfter(Math.max(end, now - this.o.windowSeconds * 1000));
    if (this.end <= this.start) this.end = this.boundaryAfter(this.start);
    this.records = this.seen = this.kept = this.filtered = this.sampledOut = this.deadLettered = this.aggregated = 0;
    this.rowsWritten = this.lost = this.busy = 0;
    this.aggregating = false;
    return row;
  }

  private boundaryAfter(t: number): number {
    const w = this.o.windowSeconds * 1000;
    return Math.floor(t / w) * w + w;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
