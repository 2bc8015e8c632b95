import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { functionDefinitions } from '../../src/schema/index.js';
import { COVERAGE_GAP_COLUMNS, COVERAGE_GAP_KINDS, RECONCILE_COLUMNS, RECONCILE_KINDS } from '../../src/schema/kql-completeness.js';
import { completeness, coverageGaps, type CompletenessRowLike, type EventRowLike, type Gap } from '../support/coverage-gaps.js';
import { reconcile, type FlowRowLike } from '../support/reconcile.js';
import { kqlErrors, kqlResultColumns } from '../helpers/kusto-language.js';
import { projectRoot } from '../support/project-root.js';

/**
 * The completeness functions and their TypeScript ports (test/support/coverage-gaps.ts and
 * reconcile.ts) in step: the same columns and kinds, and the rules of each kind, on rows made for it.
 */

const body = (name: string) => functionDefinitions().find((f) => f.name === name)!.body;
/** The string literals a KQL body gives the Kind column. */
const kindsIn = (kql: string) =>
  new Set(
    [...kql.matchAll(/Kind = (?:iff\([^,]+, "(\w+)", "(\w+)"\)|"(\w+)")/g)].flatMap((m) =>
      [m[1], m[2], m[3]].filter((k) => typeof k === 'string'),
    ),
  );

const MIN = 60_000;
const S = Date.parse('2026-11-02T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

let seq = 0;
/** A run's coverage rows: one a minute from `from`, the last ending at `to` with `last` as its reason. */
function run(
  id: string,
  from: number,
  to: number,
  o: Partial<CompletenessRowLike> & { last?: string; skip?: number[]; node?: string } = {},
): CompletenessRowLike[] {
  const rows: CompletenessRowLike[] = [];
  let n = 0;
  for (let s = from; s < to; s = Math.floor(s / MIN) * MIN + MIN, n++) {
    const e = Math.min(Math.floor(s / MIN) * MIN + MIN, to);
    if (o.skip?.includes(n)) continue;
    rows.push({
      TimeGenerated: iso(e + seq++),
      WindowStart: iso(s),
      WindowEnd: iso(e),
      Cluster: 'c1',
      NodeName: o.node ?? 'n1',
      RunId: id,
      RunKind: o.RunKind ?? 'serve',
      WindowSequence: n,
      PreviousRunEnd: o.PreviousRunEnd ?? 'none',
      WindowEndReason: e === to ? (o.last ?? 'stop') : 'window',
      HubbleLostEvents: 0,
      BackpressureResponses: 0,
      UpstreamGapBytes: 0,
      ConfigHash: o.ConfigHash ?? 'h1',
      Version: o.Version ?? '1.0.0',
      FlowsSeen: 10,
      FlowsKept: 10,
      FlowsFiltered: 0,
      FlowsSampledOut: 0,
      FlowsDeadLettered: 0,
      FlowsAggregated: 0,
    });
  }
  return rows;
}

/** A day in the life of node n1, one of each kind. */
function history(): { coverage: CompletenessRowLike[]; events: EventRowLike[] } {
  const before = run('r0', S - 30 * MIN, S - 2 * MIN, { last: 'crash' });
  const r1 = run('r1', S + 60_500, S + 6 * MIN, { PreviousRunEnd: 'crash', ConfigHash: 'h2', Version: '1.1.0', skip: [2] });
  const r2 = run('r2', S + 7 * MIN + 1000, S + 12 * MIN, { PreviousRunEnd: 'clean', ConfigHash: 'h2', Version: '1.1.0', last: 'window' });
  r2[1]!.HubbleLostEvents = 5;
  r2[2]!.BackpressureResponses = 3;
  r2[3]!.UpstreamGapBytes = 812;
  r2[3]!.UpstreamGaps = [{ File: '/var/run/cilium/hubble/events.log', Bytes: 812, Ranges: [[1000, 1812]] }];
  const second = run('r3', S + 9 * MIN + 5000, S + 11 * MIN, { ConfigHash: 'h2', Version: '1.1.0' });
  const replay = run('rp', S + 3 * MIN, S + 4 * MIN, { RunKind: 'replay', ConfigHash: 'h9', Version: '0.9.0' });
  const events: EventRowLike[] = [
    {
      TimeGenerated: iso(S + 8 * MIN),
      Cluster: 'c1',
      NodeName: 'n1',
      ReceiverNode: 'n1',
      EventKind: 'agent_event',
      Type: 'AGENT_STARTED',
      Details: { type: 'AGENT_STARTED', agent_start: { time: iso(S + 7 * MIN + 30_000) } },
    },
    // Other agent events are not starts.
    {
      TimeGenerated: iso(S + 8 * MIN),
      Cluster: 'c1',
      NodeName: 'n1',
      ReceiverNode: 'n1',
      EventKind: 'agent_event',
      Type: 'POLICY_UPDATED',
      Details: {},
    },
  ];
  return { coverage: [...before, ...r1, ...r2, ...second, ...replay], events };
}

describe('the completeness functions and their TypeScript ports stay in step', () => {
  it('HubbleCoverageGaps: the columns and kinds of the KQL are those of the port', () => {
    expect(kqlResultColumns('HubbleCoverageGaps(ago(1d), now())').map((c) => c.name)).toEqual([...COVERAGE_GAP_COLUMNS]);
    expect([...kindsIn(body('HubbleCoverageGaps'))].sort()).toEqual(Object.keys(COVERAGE_GAP_KINDS).sort());
    const { coverage, events } = history();
    const gaps = coverageGaps(coverage, events, S, S + 20 * MIN, { windowMs: MIN, now: S + 30 * MIN });
    for (const g of gaps) expect(Object.keys(g)).toEqual([...COVERAGE_GAP_COLUMNS]);
    expect(new Set(gaps.map((g) => g.Kind))).toEqual(new Set(Object.keys(COVERAGE_GAP_KINDS)));
  });

  it('docs/completeness.md explains every kind HubbleCoverageGaps returns, and no other', () => {
    const page = readFileSync(join(projectRoot(), 'docs/completeness.md'), 'utf8');
    const table = page.slice(page.indexOf('| Kind | What it means |'));
    const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
    const documented = rows.flatMap((r) => [...r.split('|')[1]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!));
    expect(documented.sort()).toEqual(Object.keys(COVERAGE_GAP_KINDS).sort());
  });

  it('HubbleReconcile: the columns and kinds of the KQL are those of the port', () => {
    expect(kqlResultColumns('HubbleReconcile(ago(1d), now())').map((c) => c.name)).toEqual([...RECONCILE_COLUMNS]);
    expect([...kindsIn(body('HubbleReconcile'))].sort()).toEqual(Object.keys(RECONCILE_KINDS).sort());
    const coverage = run('r1', S, S + 3 * MIN);
    const row = (uuid: string | null, seq: number | null, aggregated: number | null = null): FlowRowLike => ({
      Uuid: uuid,
      ReceiverNode: 'n1',
      RunId: 'r1',
      CoverageWindow: seq,
      AggregatedFlows: aggregated,
    });
    const flows = [
      // Window 0: 10 flows, one row of its own and an aggregate of 9 (delivered twice).
      row('u-0', 0),
      row('agg-r1-0-0', 0, 9),
      row('agg-r1-0-0', 0, 9),
      // Window 1: 9 of its 10 flows (one row deleted).
      ...Array.from({ length: 9 }, (_, i) => row(`u-1-${i}`, 1)),
      // Window 2: 11 rows without a Uuid for 10 flows (one delivered twice); a window 7 with no coverage row.
      ...Array.from({ length: 11 }, () => row(null, 2)),
      row('u-7', 7),
    ];
    const diffs = reconcile(coverage, flows, S, S + 10 * MIN, { settleMs: 0, now: S + 10 * MIN });
    for (const d of diffs) expect(Object.keys(d)).toEqual([...RECONCILE_COLUMNS]);
    expect(diffs.map((d) => [d.CoverageWindow, d.Kind, d.Missing])).toEqual([
      [1, 'missing_rows', 1],
      [2, 'extra_rows', -1],
      [7, 'no_coverage_row', -1],
    ]);
  });

  it('HubbleCompleteness: the figures the port computes are columns of the KQL', () => {
    const columns = kqlResultColumns('HubbleCompleteness(ago(1d), now())').map((c) => c.name);
    const [node] = completeness(run('r1', S, S + 3 * MIN), S, S + 3 * MIN, S + 3 * MIN);
    expect(columns).toEqual(expect.arrayContaining(Object.keys(node!)));
  });

  it('every completeness function passes the language service when called with its defaults and with every parameter', () => {
    const calls = [
      'HubbleCoverageGaps(datetime(2026-11-01), datetime(2026-12-01))',
      'HubbleCoverageGaps(datetime(2026-11-01), datetime(2026-12-01), 5m, 30d)',
      'HubbleCompleteness(datetime(2026-11-01), datetime(2026-12-01))',
      'HubbleReconcile(datetime(2026-11-01), datetime(2026-12-01))',
      'HubbleReconcile(datetime(2026-11-01), datetime(2026-12-01), 15m)',
    ];
    expect(calls.flatMap((c) => kqlErrors(c))).toEqual([]);
  });
});

describe('the rules of HubbleCoverageGaps, on a history made for them (the port)', () => {
  const { coverage, events } = history();
  const gaps = coverageGaps(coverage, events, S, S + 20 * MIN, { windowMs: MIN, now: S + 30 * MIN });
  const of = (kind: string): Gap[] => gaps.filter((g) => g.Kind === kind);

  it('a node down at the start of the range shows from its last row before the start, as the crash it was', () => {
    expect(of('crash')).toEqual([expect.objectContaining({ GapStart: S - 2 * MIN, GapEnd: S + 60_500, RunId: 'r1' })]);
  });

  it('a clean stop and the next start: a restart; a kill and a restart 5 s later: a crash; however short', () => {
    expect(of('restart')).toEqual([expect.objectContaining({ GapStart: S + 6 * MIN, GapEnd: S + 7 * MIN + 1000, RunId: 'r2' })]);
    const tight = [
      ...run('a', S, S + 2 * MIN, { last: 'crash' }),
      ...run('b', S + 2 * MIN + 5000, S + 4 * MIN, { PreviousRunEnd: 'crash' }),
      ...run('c', S + 4 * MIN + 1000, S + 5 * MIN, { PreviousRunEnd: 'clean' }),
    ];
    expect(
      coverageGaps(tight, [], S, S + 5 * MIN, { windowMs: MIN, now: S + 5 * MIN }).map((g) => [g.Kind, g.GapEnd - g.GapStart]),
    ).toEqual([
      ['crash', 5000],
      ['restart', 1000],
    ]);
  });

  it('a missing row within a run, a second process, a change of config and version, a node gone silent', () => {
    expect(of('missing_window')).toEqual([expect.objectContaining({ GapStart: S + 3 * MIN, GapEnd: S + 4 * MIN, RunId: 'r1' })]);
    expect(of('overlap')).toEqual([expect.objectContaining({ GapStart: S + 9 * MIN + 5000, GapEnd: S + 11 * MIN, RunId: 'r3' })]);
    expect(of('config_changed').map((g) => g.RunId)).toEqual(['r1']);
    expect(of('version_changed').map((g) => g.RunId)).toEqual(['r1']);
    expect(of('silent')).toEqual([expect.objectContaining({ GapStart: S + 12 * MIN, GapEnd: S + 20 * MIN, RunId: 'r2' })]);
  });

  it('per window: Hubble lost events, 503 answers, bytes never received; a cilium-agent start at its own time', () => {
    expect(of('hubble_lost_events').map((g) => g.GapStart)).toEqual([S + 8 * MIN]);
    expect(of('backpressure').map((g) => g.GapStart)).toEqual([S + 9 * MIN]);
    expect(of('upstream_gap').map((g) => [g.GapStart, g.Detail])).toEqual([
      [
        S + 10 * MIN,
        `812 bytes never received: ${JSON.stringify([{ File: '/var/run/cilium/hubble/events.log', Bytes: 812, Ranges: [[1000, 1812]] }])}`,
      ],
    ]);
    expect(of('agent_started')).toEqual([expect.objectContaining({ NodeName: 'n1', GapStart: S + 7 * MIN + 30_000 })]);
  });

  it('a replay run is none of them: without it the result is the same', () => {
    expect(gaps.some((g) => g.RunId === 'rp')).toBe(false);
    const withoutReplay = coverage.filter((r) => r.RunKind !== 'replay');
    expect(coverageGaps(withoutReplay, events, S, S + 20 * MIN, { windowMs: MIN, now: S + 30 * MIN })).toEqual(gaps);
  });

  it('HubbleCompleteness: edge windows clipped, two processes covering one minute count it once, replay left out', () => {
    const [node] = completeness(coverage, S, S + 20 * MIN, S + 30 * MIN);
    // r1 from 1:00.5 to 6:00 less its missing window, r2 from 7:01 to 12:00 (r3 inside it), nothing after.
    expect(node!.CoveredSeconds).toBeCloseTo(299.5 - 60 + 299, 6);
    expect(node!.CoveredShare).toBeLessThanOrEqual(1);
    expect(node).toMatchObject({ Runs: 3, Crashes: 0, Balanced: true });
    // A range inside one window: covered exactly, not more.
    const [inside] = completeness(coverage, S + 8 * MIN + 10_000, S + 8 * MIN + 20_000, S + 30 * MIN);
    expect(inside!.CoveredShare).toBe(1);
  });
});
