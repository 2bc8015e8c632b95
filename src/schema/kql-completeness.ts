import type { FunctionDefinition, TableNames } from './kql-types.js';

/**
 * The completeness functions: HubbleCoverageGaps (where the record may be incomplete, and why),
 * HubbleCompleteness (per node, where the flows went and how much of the time was covered) and
 * HubbleReconcile (per coverage window, the flows counted against the rows that arrived).
 * docs/completeness.md says how an auditor reads them. The kinds and columns are exported so that
 * the TypeScript ports the tests run (test/support/) stay in step with the KQL.
 */

/** Each kind of HubbleCoverageGaps row, with what it means. */
export const COVERAGE_GAP_KINDS = {
  crash: 'Space between two runs of the node, the earlier one crashed (or ended without a stop row): nothing was received meanwhile.',
  restart:
    'Space between two runs of the node, the earlier one stopped cleanly (a rolling update, a drain): nothing was received meanwhile.',
  missing_window: 'Coverage rows of a run missing between two of its windows (deleted, or not delivered yet).',
  silent: 'The node stopped reporting: no coverage row since GapStart.',
  overlap: 'Two serve runs of one node at the same time: two hubble-adx processes with one node name.',
  config_changed: 'A run with another ConfigHash than the run before it: what is kept changed.',
  version_changed: 'A run of another hubble-adx version than the run before it.',
  agent_started: 'cilium-agent started (an agent_event AGENT_STARTED): Hubble exported nothing while it was down.',
  upstream_gap: 'Bytes of the export file that never reached hubble-adx (UpstreamGapBytes).',
  hubble_lost_events: 'Hubble reported events lost before they were exported (HubbleLostEvents).',
  backpressure: 'Requests answered 503 (Fluent Bit retried them; sustained, its buffer may drop).',
} as const;

export type CoverageGapKind = keyof typeof COVERAGE_GAP_KINDS;

/** The columns HubbleCoverageGaps returns, in order. */
export const COVERAGE_GAP_COLUMNS = ['Cluster', 'NodeName', 'Kind', 'GapStart', 'GapEnd', 'RunId', 'Detail'] as const;

/** Each kind of HubbleReconcile row, with what it means. */
export const RECONCILE_KINDS = {
  missing_rows:
    'Fewer flows in the rows that arrived than the window counted: rows deleted (.delete, a retention cut) or not delivered yet.',
  extra_rows: 'More flows in the rows than the window counted: rows without a Uuid (Cilium before 1.15) delivered twice.',
  no_coverage_row: 'Rows that name a window (or none) that has no coverage row.',
} as const;

export type ReconcileKind = keyof typeof RECONCILE_KINDS;

/** The columns HubbleReconcile returns, in order. */
export const RECONCILE_COLUMNS = [
  'Cluster',
  'ReceiverNode',
  'RunId',
  'RunKind',
  'CoverageWindow',
  'WindowStart',
  'WindowEnd',
  'FlowsKept',
  'FlowsInRows',
  'Missing',
  'Kind',
  'Detail',
] as const;

/** The agent_event type cilium-agent sends when it starts (flow.proto AgentEventType, with its agent_start notification). */
export const AGENT_STARTED = 'AGENT_STARTED';

const gapColumns = COVERAGE_GAP_COLUMNS.join(', ');

export function completenessFunctionDefinitions(n: TableNames): FunctionDefinition[] {
  const C = n.coverage;
  const F = n.flows;
  const E = n.events;
  const fn = (name: string, params: string, doc: string, body: string): FunctionDefinition => ({ name, params, doc, body: body.trim() });
  // At least once: a coverage row may arrive twice. Windows are told apart by run and sequence (two
  // processes for one node, or a replay, have windows at the same times).
  const dedup = 'summarize arg_max(TimeGenerated, *) by Cluster, NodeName, RunId, WindowSequence';
  return [
    fn(
      'HubbleCoverageGaps',
      'start: datetime, end: datetime, window: timespan = 1m, lookback: timespan = 7d',
      'Where the record may be incomplete, per node: every space between runs (crash or restart), missing coverage rows, a node that stopped reporting, two processes for one node, a change of ConfigHash or version, a cilium-agent start, bytes of the export file never received, Hubble lost events, 503 answers. Replay runs are not the node record. Looks back up to lookback before start for the run before.',
      `
    let stop = iff(end < now(), end, now());
    // The node's own record: serve runs (a replay is a run of its own, not the node's).
    let Rows = ${C}
        | where RunKind == "serve" and WindowEnd > start - lookback and WindowStart < end
        | ${dedup};
    let InRange = Rows
        | where WindowEnd > start;
    let Runs = Rows
        | summarize RunStart = min(WindowStart), RunEnd = max(WindowEnd), arg_max(WindowSequence, WindowEndReason, PreviousRunEnd, ConfigHash, Version)
            by Cluster, NodeName, RunId
        | project Cluster, NodeName, RunId, RunStart, RunEnd, LastReason = WindowEndReason, PreviousRunEnd, ConfigHash, Version;
    // Each run with every run of the node that began before it.
    let Pairs = Runs
        | join kind=inner (Runs
            | project Cluster, NodeName, PrevRun = RunId, PrevStart = RunStart, PrevEnd = RunEnd, PrevReason = LastReason, PrevHash = ConfigHash, PrevVersion = Version)
            on Cluster, NodeName
        | where PrevStart < RunStart or (PrevStart == RunStart and strcmp(PrevRun, RunId) < 0);
    // The run before each run: of those that began before it, the one that ended last.
    let Seams = Pairs
        | summarize arg_max(PrevEnd, PrevRun, PrevReason, PrevHash, PrevVersion) by Cluster, NodeName, RunId, RunStart, PreviousRunEnd, ConfigHash, Version;
    let Restarts = Seams
        | where PrevEnd <= RunStart and RunStart >= start and PrevEnd < end
        | extend Crashed = PrevReason != "stop" or PreviousRunEnd == "crash"
        | project Cluster, NodeName, Kind = iff(Crashed, "crash", "restart"), GapStart = PrevEnd, GapEnd = RunStart, RunId,
                  Detail = strcat(case(
                      PrevReason == "crash", strcat("run ", PrevRun, " crashed (the next run closed its last window at its last sign of life)"),
                      PrevReason == "stop" and PreviousRunEnd == "crash", strcat("run ", PrevRun, " wrote its stop row but did not finish stopping"),
                      PrevReason == "stop", strcat("run ", PrevRun, " stopped cleanly"),
                      strcat("run ", PrevRun, " ended without a stop row (its last window is not in ${C})")),
                      "; nothing received for ", tostring(RunStart - PrevEnd), " until run ", RunId, " started");
    let Overlaps = Pairs
        | where PrevEnd > RunStart
        | extend GapStart = RunStart, GapEnd = min_of(PrevEnd, RunEnd)
        | where GapEnd > start and GapStart < end
        | project Cluster, NodeName, Kind = "overlap", GapStart, GapEnd, RunId,
                  Detail = strcat("runs ", PrevRun, " and ", RunId, " report for this node at the same time: two hubble-adx processes with one node name (a shared coverage.nodeName?)");
    let Changed = Seams
        | where RunStart >= start and RunStart < end and PrevHash != ConfigHash
        | project Cluster, NodeName, Kind = "config_changed", GapStart = RunStart, GapEnd = RunStart, RunId,
                  Detail = strcat("ConfigHash ", PrevHash, " -> ", ConfigHash, " from run ", RunId, ": what is kept changed");
    let Upgraded = Seams
        | where RunStart >= start and RunStart < end and PrevVersion != Version
        | project Cluster, NodeName, Kind = "version_changed", GapStart = RunStart, GapEnd = RunStart, RunId,
                  Detail = strcat("hubble-adx ", PrevVersion, " -> ", Version, " from run ", RunId);
    let Holes = Rows
        | order by Cluster asc, NodeName asc, RunId asc, WindowSequence asc
        | extend PrevRun = prev(RunId), PrevSeq = prev(WindowSequence), PrevWindowEnd = prev(WindowEnd)
        | where PrevRun == RunId and WindowSequence > PrevSeq + 1 and WindowStart >= start and PrevWindowEnd < end
        | project Cluster, NodeName, Kind = "missing_window", GapStart = PrevWindowEnd, GapEnd = WindowStart, RunId,
                  Detail = strcat(WindowSequence - PrevSeq - 1, " coverage rows of run ", RunId, " missing (windows ", PrevSeq + 1, " to ", WindowSequence - 1, "): deleted, or not delivered yet");
    let Silent = Rows
        | summarize arg_max(WindowEnd, RunId, WindowEndReason) by Cluster, NodeName
        | where WindowEnd < end - 2 * window and WindowEnd < now() - 2 * window
        | project Cluster, NodeName, Kind = "silent", GapStart = WindowEnd, GapEnd = stop, RunId,
                  Detail = strcat("no coverage row since: the node stopped reporting", case(
                      WindowEndReason == "stop", " (its last run stopped cleanly)",
                      WindowEndReason == "crash", " (its last run crashed)",
                      " (its last run has not closed its last window: it crashed and has not restarted, or it cannot deliver)"));
    let Lost = InRange
        | where HubbleLostEvents > 0
        | project Cluster, NodeName, Kind = "hubble_lost_events", GapStart = WindowStart, GapEnd = WindowEnd, RunId,
                  Detail = strcat(HubbleLostEvents, " events lost by Hubble before hubble-adx");
    let Busy = InRange
        | where BackpressureResponses > 0
        | project Cluster, NodeName, Kind = "backpressure", GapStart = WindowStart, GapEnd = WindowEnd, RunId,
                  Detail = strcat(BackpressureResponses, " requests answered 503 (Fluent Bit retried; sustained, its buffer may drop)");
    let Upstream = InRange
        | where UpstreamGapBytes > 0
        | project Cluster, NodeName, Kind = "upstream_gap", GapStart = WindowStart, GapEnd = WindowEnd, RunId,
                  Detail = strcat(UpstreamGapBytes, " bytes of the export file never reached hubble-adx: ", tostring(UpstreamGaps));
    let AgentStarts = ${E}
        | where TimeGenerated >= start and TimeGenerated < end
        | where EventKind == "agent_event" and (Type == "${AGENT_STARTED}" or isnotnull(Details.agent_start))
        | extend At = coalesce(todatetime(Details.agent_start['time']), TimeGenerated)
        | summarize by Cluster, NodeName = iff(isnotempty(ReceiverNode), ReceiverNode, NodeName), At
        | project Cluster, NodeName, Kind = "agent_started", GapStart = At, GapEnd = At, RunId = "",
                  Detail = "cilium-agent started: Hubble exported nothing while it was down";
    union Restarts, Overlaps, Changed, Upgraded, Holes, Silent, Lost, Busy, Upstream, AgentStarts
    | project ${gapColumns}
    | order by GapStart asc, Cluster asc, NodeName asc, Kind asc`,
    ),
    fn(
      'HubbleCompleteness',
      'start: datetime, end: datetime',
      'Per node: flows seen, kept, filtered, sampled out, dead-lettered and lost by Hubble, as shares, runs and crashes, bytes never received, and the share of the time covered by coverage rows (edge windows clipped to the range; replay runs left out)',
      `
    let stop = iff(end < now(), end, now());
    let Rows = ${C}
        | where RunKind == "serve" and WindowEnd > start and WindowStart < end
        | ${dedup}
        // Edge windows count only their time inside the range.
        | extend From = iff(WindowStart < start, start, WindowStart), To = iff(WindowEnd > stop, stop, WindowEnd);
    // Time covered by at least one row: two processes for one node do not cover it twice.
    let Covered = Rows
        | where To > From
        | project Cluster, NodeName, From, To
        | order by Cluster asc, NodeName asc, From asc
        | scan declare (Reach: datetime, Added: real) with (
            step s: true =>
                Added = iff(isnotnull(s.Reach) and Cluster == s.Cluster and NodeName == s.NodeName, max_of(0.0, (To - max_of(From, s.Reach)) / 1s), (To - From) / 1s),
                Reach = iff(isnotnull(s.Reach) and Cluster == s.Cluster and NodeName == s.NodeName, max_of(s.Reach, To), To);
        )
        | summarize CoveredSeconds = sum(Added) by Cluster, NodeName;
    let RunCounts = Rows
        | summarize by Cluster, NodeName, RunId
        | summarize Runs = count() by Cluster, NodeName;
    Rows
    | summarize Windows = count(), Seen = sum(FlowsSeen), Kept = sum(FlowsKept), Filtered = sum(FlowsFiltered), SampledOut = sum(FlowsSampledOut),
                DeadLettered = sum(FlowsDeadLettered), Aggregated = sum(FlowsAggregated), Lost = sum(HubbleLostEvents),
                BackpressureResponses = sum(BackpressureResponses), UpstreamGapBytes = sum(UpstreamGapBytes), Crashes = countif(WindowEndReason == "crash"),
                ConfigHashes = dcount(ConfigHash)
        by Cluster, NodeName
    | lookup kind=leftouter Covered on Cluster, NodeName
    | lookup kind=leftouter RunCounts on Cluster, NodeName
    | extend CoveredSeconds = coalesce(CoveredSeconds, 0.0), Observed = Seen + Lost
    | extend KeptShare = iff(Observed == 0, real(null), todouble(Kept) / Observed),
             FilteredShare = iff(Observed == 0, real(null), todouble(Filtered) / Observed),
             SampledOutShare = iff(Observed == 0, real(null), todouble(SampledOut) / Observed),
             DeadLetteredShare = iff(Observed == 0, real(null), todouble(DeadLettered) / Observed),
             LostShare = iff(Observed == 0, real(null), todouble(Lost) / Observed),
             CoveredShare = CoveredSeconds / ((stop - start) / 1s),
             Balanced = Seen == Kept + Filtered + SampledOut + DeadLettered
    | project Cluster, NodeName, Runs, Crashes, Windows, CoveredSeconds, CoveredShare, Seen, Observed, Kept, Filtered, SampledOut, DeadLettered, Aggregated, Lost,
              KeptShare, FilteredShare, SampledOutShare, DeadLetteredShare, LostShare, BackpressureResponses, UpstreamGapBytes, ConfigHashes, Balanced
    | order by Cluster asc, NodeName asc`,
    ),
    fn(
      'HubbleReconcile',
      'start: datetime, end: datetime, settle: timespan = 5m',
      'Per receiving node, run and coverage window: FlowsKept against the flows in the rows that arrived (one row per Uuid; aggregate rows count their AggregatedFlows). Lists every window where they differ, and rows whose window has no coverage row. Windows and rows younger than settle are left out (they may be on their way).',
      `
    let Windows = ${C}
        // Rows written before schema v5 name no run: nothing can be reconciled with them.
        | where WindowEnd > start and WindowStart < end and WindowEnd < now() - settle and isnotempty(RunId)
        | ${dedup}
        | project Cluster, ReceiverNode = NodeName, RunId, RunKind, CoverageWindow = WindowSequence, WindowStart, WindowEnd, FlowsKept;
    // A row is ingested after the window that counted it opened (10 minutes allowed for clock skew).
    let from = min_of(coalesce(toscalar(Windows | summarize min(WindowStart)), start), start) - 10m;
    let Flows = ${F}
        | where ingestion_time() > from and isnotempty(RunId)
        | extend Ingested = ingestion_time();
    // At least once: one row per Uuid, aggregate rows included (a row that names its window preferred);
    // rows without a Uuid (Cilium before 1.15) count as they are.
    let Arrived = union
            (Flows | where isnotempty(Uuid) | summarize arg_max(CoverageWindow, AggregatedFlows, ReceiverNode, Ingested) by RunId, Uuid),
            (Flows | where isempty(Uuid) | project RunId, Uuid, CoverageWindow, AggregatedFlows, ReceiverNode, Ingested)
        | summarize FlowsInRows = sum(coalesce(AggregatedFlows, 1)), LastIngested = max(Ingested) by ReceiverNode, RunId, CoverageWindow;
    let Compared = Windows
        | join kind=leftouter Arrived on ReceiverNode, RunId, CoverageWindow
        | extend FlowsInRows = coalesce(FlowsInRows, 0)
        | extend Missing = FlowsKept - FlowsInRows
        | where Missing != 0
        | project Cluster, ReceiverNode, RunId, RunKind, CoverageWindow, WindowStart, WindowEnd, FlowsKept, FlowsInRows, Missing,
                  Kind = iff(Missing > 0, "missing_rows", "extra_rows"),
                  Detail = iff(Missing > 0,
                      strcat(Missing, " of the ", FlowsKept, " flows counted have no row: rows deleted (.delete, a retention cut) or not delivered yet"),
                      strcat(-Missing, " flows more in rows than counted: rows without a Uuid delivered twice"));
    let OfRuns = ${C}
        | where RunId in ((Arrived | distinct RunId));
    let RunsOfRows = OfRuns
        | summarize Cluster = take_any(Cluster), RunKind = take_any(RunKind) by RunId;
    let Orphans = Arrived
        | where LastIngested >= start and LastIngested < end and LastIngested < now() - settle
        | join kind=leftanti (OfRuns | summarize by ReceiverNode = NodeName, RunId, CoverageWindow = WindowSequence) on ReceiverNode, RunId, CoverageWindow
        | lookup kind=leftouter RunsOfRows on RunId
        | project Cluster, ReceiverNode, RunId, RunKind, CoverageWindow, WindowStart = datetime(null), WindowEnd = datetime(null), FlowsKept = long(null), FlowsInRows,
                  Missing = -FlowsInRows, Kind = "no_coverage_row",
                  Detail = iff(isnull(CoverageWindow), strcat(FlowsInRows, " flows in rows that name no window of run ", RunId),
                      strcat(FlowsInRows, " flows in rows of window ", CoverageWindow, " of run ", RunId, ", which has no coverage row"));
    union Compared, Orphans
    | project ${RECONCILE_COLUMNS.join(', ')}
    | order by WindowStart asc nulls last, ReceiverNode asc, RunId asc, CoverageWindow asc`,
    ),
  ];
}
