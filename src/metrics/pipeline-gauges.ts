import type { Metrics } from './registry.js';

/** What the runtime holds at one moment, as the gauges show it. */
export interface PipelineState {
  pendingRows: number;
  pendingBytes: number;
  partialLines: number;
  partialBytes: number;
  /** Totals since the start of what was given up to stay within a cap. */
  partialsEvicted: number;
  identitiesEvicted: number;
  oldestPendingSeconds: number;
  parkedRequests: number;
  spool: { bytes: number; segments: number } | null;
}

/** Sets the gauges from a snapshot; the evictions counter grows by what grew since the last one. */
export class PipelineGauges {
  private seen = { cri_partial_lines: 0, identities: 0 };

  constructor(private readonly m: Metrics) {}

  publish(s: PipelineState): void {
    const m = this.m;
    m.pendingRows.set(s.pendingRows);
    m.pendingBytes.set(s.pendingBytes);
    m.criPartialsPending.set(s.partialLines);
    m.criPartialBytes.set(s.partialBytes);
    this.evictions('cri_partial_lines', s.partialsEvicted);
    this.evictions('identities', s.identitiesEvicted);
    m.oldestPendingAge.set(s.oldestPendingSeconds);
    m.parkedRequests.set(s.parkedRequests);
    if (s.spool) {
      m.spoolBytes.set(s.spool.bytes);
      m.spoolSegments.set(s.spool.segments);
    }
  }

  private evictions(state: keyof PipelineGauges['seen'], total: number): void {
    const grown = total - this.seen[state];
    if (grown > 0) this.m.stateEvictions.inc({ state }, grown);
    this.seen[state] = total;
  }
}
