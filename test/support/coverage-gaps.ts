/**
 * HubbleCoverageGaps and HubbleCompleteness (src/schema/kql-completeness.ts) in TypeScript, step
 * for step, to check what their rules find over the rows the service writes: the language service
 * checks the KQL, this checks its logic. Times are epoch milliseconds; `now` stands for now().
 */
import type { CoverageGapKind } from '../../src/schema/kql-completeness.js';

export interface CoverageRowLike {
  TimeGenerated: string;
  WindowStart: string;
  WindowEnd: string;
  Cluster: string;
  NodeName: string;
  RunId: string;
  RunKind: string;
  WindowSequence: number;
  PreviousRunEnd: string;
  WindowEndReason: string;
  HubbleLostEvents: number;
  BackpressureResponses: number;
  UpstreamGapBytes: number;
  UpstreamGaps?: unknown;
  ConfigHash: string;
  Version: string;
}

export interface EventRowLike {
  TimeGenerated: string;
  Cluster: string;
  NodeName: string;
  ReceiverNode: string | null;
  EventKind: string;
  Type: string | null;
  Details: unknown;
}

/** A HubbleCoverageGaps row (COVERAGE_GAP_COLUMNS). */
export interface Gap {
  Cluster: string;
  NodeName: string;
  Kind: CoverageGapKind;
  GapStart: number;
  GapEnd: number;
  RunId: string;
  Detail: string;
}

export interface GapOptions {
  windowMs: number;
  lookbackMs?: number;
  now?: number;
}

const t = Date.parse;
const DAY = 86_400_000;

/** `summarize arg_max(TimeGenerated, *) by Cluster, NodeName, RunId, WindowSequence`. */
export function dedupCoverage<R extends CoverageRowLike>(rows: readonly R[]): R[] {
  const byKey = new Map<string, R>();
  for (const r of rows) {
    const k = JSON.stringify([r.Cluster, r.NodeName, r.RunId, r.WindowSequence]);
    const had = byKey.get(k);
    if (!had || t(had.TimeGenerated) <= t(r.TimeGenerated)) byKey.set(k, r);
  }
  return [...byKey.values()];
}

interface Run {
  Cluster: string;
  NodeName: string;
  RunId: string;
  RunStart: number;
  RunEnd: number;
  LastReason: string;
  PreviousRunEnd: string;
  ConfigHash: string;
  Version: string;
}

const nodeKey = (r: { Cluster: string; NodeName: string }) => JSON.stringify([r.Cluster, r.NodeName]);

function runsOf(rows: readonly CoverageRowLike[]): Run[] {
  const runs = new Map<string, { run: Run; lastSeq: number }>();
  for (const r of rows) {
    const k = JSON.stringify([r.Cluster, r.NodeName, r.RunId]);
    const had = runs.get(k);
    if (!had) {
      const run: Run = {
        Cluster: r.Cluster,
        NodeName: r.NodeName,
        RunId: r.RunId,
        RunStart: t(r.WindowStart),
        RunEnd: t(r.WindowEnd),
        LastReason: r.WindowEndReason,
        PreviousRunEnd: r.PreviousRunEnd,
        ConfigHash: r.ConfigHash,
        Version: r.Version,
      };
      runs.set(k, { run, lastSeq: r.WindowSequence });
      continue;
    }
    had.run.RunStart = Math.min(had.run.RunStart, t(r.WindowStart));
    had.run.RunEnd = Math.max(had.run.RunEnd, t(r.WindowEnd));
    if (r.WindowSequence > had.lastSeq) {
      had.lastSeq = r.WindowSequence;
      Object.assign(had.run, {
        LastReason: r.WindowEndReason,
        PreviousRunEnd: r.PreviousRunEnd,
        ConfigHash: r.ConfigHash,
        Version: r.Version,
      });
    }
  }
  return [...runs.values()].map((v) => v.run);
}

function restartDetail(prev: Run, run: Run): string {
  const how =
    prev.LastReason === 'crash'
      ? `run ${prev.RunId} crashed (the next run closed its last window at its last sign of life)`
      : prev.LastReason === 'stop' && run.PreviousRunEnd === 'crash'
        ? `run ${prev.RunId} wrote its stop row but did not finish stopping`
        : prev.LastReason === 'stop'
          ? `run ${prev.RunId} stopped cleanly`
          : `run ${prev.RunId} ended without a stop row (its last window is not in HubbleCoverage)`;
  return `${how}; nothing received for ${run.RunStart - prev.RunEnd} ms until run ${run.RunId} started`;
}

export function coverageGaps(
  coverage: readonly CoverageRowLike[],
  events: readonly EventRowLike[],
  start: number,
  end: number,
  o: GapOptions,
): Gap[] {
  const now = o.now ?? Date.now();
  const lookback = o.lookbackMs ?? 7 * DAY;
  const stop = Math.min(end, now);
  const rows = dedupCoverage(coverage.filter((r) => r.RunKind === 'serve' && t(r.WindowEnd) > start - lookback && t(r.WindowStart) < end));
  const inRange = rows.filter((r) => t(r.WindowEnd) > start);
  const runs = runsOf(rows);
  const gaps: Gap[] = [];
  const at = (r: { Cluster: string; NodeName: string }) => ({ Cluster: r.Cluster, NodeName: r.NodeName });

  for (const run of runs) {
    // Every run of the node that began before it.
    const earlier = runs.filter(
      (p) => nodeKey(p) === nodeKey(run) && (p.RunStart < run.RunStart || (p.RunStart === run.RunStart && p.RunId < run.RunId)),
    );
    for (const p of earlier) {
      if (p.RunEnd <= run.RunStart) continue;
      const gapStart = run.RunStart;
      const gapEnd = Math.min(p.RunEnd, run.RunEnd);
      if (gapEnd > start && gapStart < end)
        gaps.push({
          ...at(run),
          Kind: 'overlap',
          GapStart: gapStart,
          GapEnd: gapEnd,
          RunId: run.RunId,
          Detail: `runs ${p.RunId} and ${run.RunId} report for this node at the same time`,
        });
    }
    if (earlier.length === 0) continue;
    // The run before: of those that began before it, the one that ended last.
    const prev = earlier.reduce((a, b) => (b.RunEnd > a.RunEnd ? b : a));
    if (prev.RunEnd <= run.RunStart && run.RunStart >= start && prev.RunEnd < end) {
      const crashed = prev.LastReason !== 'stop' || run.PreviousRunEnd === 'crash';
      gaps.push({
        ...at(run),
        Kind: crashed ? 'crash' : 'restart',
        GapStart: prev.RunEnd,
        GapEnd: run.RunStart,
        RunId: run.RunId,
        Detail: restartDetail(prev, run),
      });
    }
    if (run.RunStart >= start && run.RunStart < end) {
      if (prev.ConfigHash !== run.ConfigHash)
        gaps.push({
          ...at(run),
          Kind: 'config_changed',
          GapStart: run.RunStart,
          GapEnd: run.RunStart,
          RunId: run.RunId,
          Detail: `ConfigHash ${prev.ConfigHash} -> ${run.ConfigHash}`,
        });
      if (prev.Version !== run.Version)
        gaps.push({
          ...at(run),
          Kind: 'version_changed',
          GapStart: run.RunStart,
          GapEnd: run.RunStart,
          RunId: run.RunId,
          Detail: `hubble-adx ${prev.Version} -> ${run.Version}`,
        });
    }
  }

  const ordered = [...rows].sort(
    (a, b) =>
      a.Cluster.localeCompare(b.Cluster) ||
      a.NodeName.localeCompare(b.NodeName) ||
      a.RunId.localeCompare(b.RunId) ||
      a.WindowSequence - b.WindowSequence,
  );
  ordered.forEach((r, i) => {
    const p = ordered[i - 1];
    if (p?.RunId === r.RunId && r.WindowSequence > p.WindowSequence + 1 && t(r.WindowStart) >= start && t(p.WindowEnd) < end)
      gaps.push({
        ...at(r),
        Kind: 'missing_window',
        GapStart: t(p.WindowEnd),
        GapEnd: t(r.WindowStart),
        RunId: r.RunId,
        Detail: `${r.WindowSequence - p.WindowSequence - 1} coverage rows missing`,
      });
  });

  const last = new Map<string, CoverageRowLike>();
  for (const r of rows) {
    const had = last.get(nodeKey(r));
    if (!had || t(r.WindowEnd) > t(had.WindowEnd)) last.set(nodeKey(r), r);
  }
  for (const r of last.values()) {
    const lastEnd = t(r.WindowEnd);
    if (lastEnd < end - 2 * o.windowMs && lastEnd < now - 2 * o.windowMs)
      gaps.push({
        ...at(r),
        Kind: 'silent',
        GapStart: lastEnd,
        GapEnd: stop,
        RunId: r.RunId,
        Detail: `no coverage row since (last window ended: ${r.WindowEndReason})`,
      });
  }

  for (const r of inRange) {
    const w = (Kind: CoverageGapKind, Detail: string): Gap => ({
      ...at(r),
      Kind,
      GapStart: t(r.WindowStart),
      GapEnd: t(r.WindowEnd),
      RunId: r.RunId,
      Detail,
    });
    if (r.HubbleLostEvents > 0) gaps.push(w('hubble_lost_events', `${r.HubbleLostEvents} events lost by Hubble`));
    if (r.BackpressureResponses > 0) gaps.push(w('backpressure', `${r.BackpressureResponses} requests answered 503`));
    if (r.UpstreamGapBytes > 0)
      gaps.push(w('upstream_gap', `${r.UpstreamGapBytes} bytes never received: ${JSON.stringify(r.UpstreamGaps)}`));
  }

  const starts = new Map<string, Gap>();
  for (const e of events) {
    const time = t(e.TimeGenerated);
    if (!(time >= start && time < end) || e.EventKind !== 'agent_event') continue;
    const startedAt = (e.Details as { agent_start?: { time?: string } } | null)?.agent_start;
    if (e.Type !== 'AGENT_STARTED' && startedAt == null) continue;
    const when = startedAt?.time !== undefined && !Number.isNaN(t(startedAt.time)) ? t(startedAt.time) : time;
    const node = e.ReceiverNode !== null && e.ReceiverNode !== '' ? e.ReceiverNode : e.NodeName;
    const g: Gap = {
      Cluster: e.Cluster,
      NodeName: node,
      Kind: 'agent_started',
      GapStart: when,
      GapEnd: when,
      RunId: '',
      Detail: 'cilium-agent started',
    };
    starts.set(JSON.stringify([e.Cluster, node, when]), g);
  }
  gaps.push(...starts.values());

  return gaps.sort(
    (a, b) =>
      a.GapStart - b.GapStart || a.Cluster.localeCompare(b.Cluster) || a.NodeName.localeCompare(b.NodeName) || a.Kind.localeCompare(b.Kind),
  );
}

export interface CompletenessRowLike extends CoverageRowLike {
  FlowsSeen: number;
  FlowsKept: number;
  FlowsFiltered: number;
  FlowsSampledOut: number;
  FlowsDeadLettered: number;
  FlowsAggregated: number;
}

/** The HubbleCompleteness figures the tests check, per node. */
export interface Completeness {
  Cluster: string;
  NodeName: string;
  Runs: number;
  Crashes: number;
  Windows: number;
  CoveredSeconds: number;
  CoveredShare: number;
  Seen: number;
  Kept: number;
  Balanced: boolean;
}

export function completeness(coverage: readonly CompletenessRowLike[], start: number, end: number, now = Date.now()): Completeness[] {
  const stop = Math.min(end, now);
  const rows = dedupCoverage(coverage.filter((r) => r.RunKind === 'serve' && t(r.WindowEnd) > start && t(r.WindowStart) < end));
  const byNode = new Map<string, CompletenessRowLike[]>();
  for (const r of rows) byNode.set(nodeKey(r), [...(byNode.get(nodeKey(r)) ?? []), r]);
  const out: Completeness[] = [];
  for (const list of byNode.values()) {
    // Edge windows clipped to the range; time covered by at least one row (the scan's reach).
    const spans = list
      .map((r) => ({ from: Math.max(t(r.WindowStart), start), to: Math.min(t(r.WindowEnd), stop) }))
      .filter((s) => s.to > s.from)
      .sort((a, b) => a.from - b.from);
    let reach: number | null = null;
    let covered = 0;
    for (const s of spans) {
      covered += reach === null ? s.to - s.from : Math.max(0, s.to - Math.max(s.from, reach));
      reach = reach === null ? s.to : Math.max(reach, s.to);
    }
    const sum = (k: keyof CompletenessRowLike) => list.reduce((n, r) => n + (r[k] as number), 0);
    const seen = sum('FlowsSeen');
    out.push({
      Cluster: list[0]!.Cluster,
      NodeName: list[0]!.NodeName,
      Runs: new Set(list.map((r) => r.RunId)).size,
      Crashes: list.filter((r) => r.WindowEndReason === 'crash').length,
      Windows: list.length,
      CoveredSeconds: covered / 1000,
      CoveredShare: covered / (stop - start),
      Seen: seen,
      Kept: sum('FlowsKept'),
      Balanced: seen === sum('FlowsKept') + sum('FlowsFiltered') + sum('FlowsSampledOut') + sum('FlowsDeadLettered'),
    });
  }
  return out.sort((a, b) => a.Cluster.localeCompare(b.Cluster) || a.NodeName.localeCompare(b.NodeName));
}
