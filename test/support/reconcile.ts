/**
 * HubbleReconcile (src/schema/kql-completeness.ts) in TypeScript, step for step, over the rows the
 * service writes. The KQL takes the flow rows ingested since the first window began; here every
 * flow row given has arrived (the local sink has no ingestion time), and `now` stands for now().
 */
import type { ReconcileKind } from '../../src/schema/kql-completeness.js';
import { dedupCoverage, type CoverageRowLike } from './coverage-gaps.js';

export interface ReconcileCoverageRow extends CoverageRowLike {
  FlowsKept: number;
}

export interface FlowRowLike {
  Uuid: string | null;
  ReceiverNode: string | null;
  RunId: string | null;
  CoverageWindow: number | null;
  AggregatedFlows: number | null;
}

/** A HubbleReconcile row (RECONCILE_COLUMNS). */
export interface Difference {
  Cluster: string | null;
  ReceiverNode: string;
  RunId: string;
  RunKind: string | null;
  CoverageWindow: number | null;
  WindowStart: number | null;
  WindowEnd: number | null;
  FlowsKept: number | null;
  FlowsInRows: number;
  Missing: number;
  Kind: ReconcileKind;
  Detail: string;
}

const t = Date.parse;
const windowKey = (node: string | null, run: string | null, seq: number | null) => JSON.stringify([node, run, seq]);

export function reconcile(
  coverage: readonly ReconcileCoverageRow[],
  flows: readonly FlowRowLike[],
  start: number,
  end: number,
  o: { settleMs?: number; now?: number } = {},
): Difference[] {
  const now = o.now ?? Date.now();
  const settle = o.settleMs ?? 5 * 60_000;
  const windows = dedupCoverage(
    coverage.filter((r) => t(r.WindowEnd) > start && t(r.WindowStart) < end && t(r.WindowEnd) < now - settle && r.RunId !== ''),
  );

  // At least once: one row per Uuid (a row that names its window preferred); rows without a Uuid count as they are.
  const byUuid = new Map<string, FlowRowLike>();
  const arrived: FlowRowLike[] = [];
  for (const f of flows) {
    if (!f.RunId) continue;
    if (!f.Uuid) {
      arrived.push(f);
      continue;
    }
    const k = JSON.stringify([f.RunId, f.Uuid]);
    const had = byUuid.get(k);
    if (
      !had ||
      (had.CoverageWindow === null && f.CoverageWindow !== null) ||
      (f.CoverageWindow !== null && had.CoverageWindow !== null && f.CoverageWindow > had.CoverageWindow)
    )
      byUuid.set(k, f);
  }
  arrived.push(...byUuid.values());
  const inRows = new Map<string, { node: string; run: string; seq: number | null; flows: number }>();
  for (const f of arrived) {
    const k = windowKey(f.ReceiverNode, f.RunId, f.CoverageWindow);
    const had = inRows.get(k) ?? { node: f.ReceiverNode ?? '', run: f.RunId!, seq: f.CoverageWindow, flows: 0 };
    had.flows += f.AggregatedFlows ?? 1;
    inRows.set(k, had);
  }

  const out: Difference[] = [];
  for (const w of windows) {
    const got = inRows.get(windowKey(w.NodeName, w.RunId, w.WindowSequence))?.flows ?? 0;
    const missing = w.FlowsKept - got;
    if (missing === 0) continue;
    out.push({
      Cluster: w.Cluster,
      ReceiverNode: w.NodeName,
      RunId: w.RunId,
      RunKind: w.RunKind,
      CoverageWindow: w.WindowSequence,
      WindowStart: t(w.WindowStart),
      WindowEnd: t(w.WindowEnd),
      FlowsKept: w.FlowsKept,
      FlowsInRows: got,
      Missing: missing,
      Kind: missing > 0 ? 'missing_rows' : 'extra_rows',
      Detail: missing > 0 ? `${missing} of the ${w.FlowsKept} flows counted have no row` : `${-missing} flows more in rows than counted`,
    });
  }

  const known = new Set(coverage.map((r) => windowKey(r.NodeName, r.RunId, r.WindowSequence)));
  for (const [k, g] of inRows) {
    if (known.has(k)) continue;
    const run = coverage.find((r) => r.RunId === g.run);
    out.push({
      Cluster: run?.Cluster ?? null,
      ReceiverNode: g.node,
      RunId: g.run,
      RunKind: run?.RunKind ?? null,
      CoverageWindow: g.seq,
      WindowStart: null,
      WindowEnd: null,
      FlowsKept: null,
      FlowsInRows: g.flows,
      Missing: -g.flows,
      Kind: 'no_coverage_row',
      Detail: `${g.flows} flows in rows of a window with no coverage row`,
    });
  }
  return out.sort(
    (a, b) =>
      (a.WindowStart ?? Number.POSITIVE_INFINITY) - (b.WindowStart ?? Number.POSITIVE_INFINITY) ||
      a.ReceiverNode.localeCompare(b.ReceiverNode) ||
      a.RunId.localeCompare(b.RunId) ||
      (a.CoverageWindow ?? -1) - (b.CoverageWindow ?? -1),
  );
}
