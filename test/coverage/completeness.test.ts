import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startService, type Running } from '../helpers/service.js';
import { spawnService, type Child } from '../support/child-service.js';
import { completeness, coverageGaps, type CompletenessRowLike, type EventRowLike } from '../support/coverage-gaps.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { flowLine } from '../support/hostile-bodies.js';
import { projectRoot } from '../support/project-root.js';
import { reconcile, type FlowRowLike, type ReconcileCoverageRow } from '../support/reconcile.js';

/**
 * The completeness functions' rules (their TypeScript ports) over the rows the real service writes:
 * a kill -9 and a restart, a replay and a second process for one node, rows deleted after ingestion.
 */

const ndjson = { 'content-type': 'application/x-ndjson' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `hubble-adx-${p}-`));
const CLI = join(projectRoot(), 'dist', 'src', 'cli.js');

type Coverage = CompletenessRowLike & ReconcileCoverageRow;
type Flow = FlowRowLike & { Verdict: string };

/**
 * The rows of a table in one or more local sink directories, as ADX would hold them. A line the
 * killed process did not finish writing is left out: its batch was not acknowledged, and the next
 * run sends it again.
 */
function rowsIn(dirs: readonly string[], table: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => n.startsWith(`${table}-`) && n.endsWith('.jsonl')).sort()) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (line.length === 0) continue;
        try {
          out.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // torn by the kill
        }
      }
    }
  }
  return out;
}

const coverageIn = (dirs: readonly string[]) => rowsIn(dirs, 'HubbleCoverage') as unknown as Coverage[];
const flowsIn = (dirs: readonly string[]) => rowsIn(dirs, 'HubbleFlows') as unknown as Flow[];
const eventsIn = (dirs: readonly string[]) => rowsIn(dirs, 'HubbleEvents') as unknown as EventRowLike[];

/** One request: `n` flows, every third denied (never aggregated), the rest allowed. */
function flowsBody(prefix: string, n: number, node: string): Buffer {
  const lines = Array.from({ length: n }, (_, i) =>
    i % 3 === 0
      ? flowLine(`${prefix}-${i}`, { verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', IP: { source: '10.0.0.1', destination: '10.0.0.2' } }, `c1/${node}`)
      : flowLine(`${prefix}-${i}`, { IP: { source: '10.0.0.1', destination: '10.0.0.3' }, l4: { TCP: { destination_port: 443 } } }, `c1/${node}`),
  );
  return jsonLinesBody(lines.map((log) => ({ log })));
}

/** Post a request every `everyMs` for `forMs`, each answered 200; returns the flows acknowledged. */
async function load(url: string, prefix: string, node: string, forMs: number, everyMs = 100, n = 9): Promise<number> {
  let acked = 0;
  const end = Date.now() + forMs;
  for (let i = 0; Date.now() < end && i < 1000; i++) {
    const res = await fetch(url, { method: 'POST', body: flowsBody(`${prefix}-${i}`, n, node), headers: ndjson });
    if (res.status === 200) acked += n;
    await sleep(everyMs);
  }
  return acked;
}

/** A window with flows in it, and every flow row naming it taken away (a `.delete`, or a retention cut). */
function deleteWindow(coverage: readonly Coverage[], flows: readonly Flow[]): { flows: Flow[]; window: Coverage } {
  const window = coverage.find((r) => r.FlowsKept > 0 && flows.some((f) => f.RunId === r.RunId && f.CoverageWindow === r.WindowSequence));
  if (!window) throw new Error('no window with flows');
  return { window, flows: flows.filter((f) => !(f.RunId === window.RunId && f.CoverageWindow === window.WindowSequence)) };
}

describe('completeness by run, over the rows the service writes', () => {
  const children: Child[] = [];
  const running: Running[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });

  it('kill -9 and a restart on the same spool 1 s later: HubbleCoverageGaps reports a crash, HubbleReconcile finds every flow (aggregation on), and a window whose rows were deleted', async () => {
    const dir = tmp('crash');
    const data = join(dir, 'data');
    const env = {
      NODE_NAME: 'node-k',
      HUBBLE_ADX_SINK__LOCAL__DIRECTORY: data,
      HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
      HUBBLE_ADX_SPOOL__LOCK_STALE_MS: '2000',
      HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '1',
      HUBBLE_ADX_AGGREGATION__ENABLED: 'true',
      HUBBLE_ADX_AGGREGATION__WINDOW_SECONDS: '1',
      HUBBLE_ADX_BATCH__MAX_AGE_MS: '100',
    };
    const t0 = Date.now();
    const first = await spawnService(env);
    children.push(first);
    const ackedFirst = await load(`http://127.0.0.1:${first.port}/`, 'a', 'node-k', 2500);
    const killedAt = Date.now();
    first.proc.kill('SIGKILL');
    await first.exited;
    await sleep(1000);
    const second = await spawnService(env, first.port);
    children.push(second);
    const startedAgain = Date.now();
    const agentStart = new Date(startedAgain - 30_000).toISOString();
    const agent = JSON.stringify({ agent_event: { type: 'AGENT_STARTED', agent_start: { time: agentStart } }, node_name: 'c1/node-k', time: new Date().toISOString() });
    expect((await fetch(`http://127.0.0.1:${second.port}/`, { method: 'POST', body: jsonLinesBody([{ log: agent }]), headers: ndjson })).status).toBe(200);
    const ackedSecond = await load(`http://127.0.0.1:${second.port}/`, 'b', 'node-k', 2000);
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    const end = Date.now();

    const coverage = coverageIn([data]);
    const flows = flowsIn([data]);
    const runs = [...new Set(coverage.map((r) => r.RunId))];
    expect(runs).toHaveLength(2);
    const [a, b] = runs.sort((x, y) => Math.min(...coverage.filter((r) => r.RunId === x).map((r) => Date.parse(r.WindowStart))) - Math.min(...coverage.filter((r) => r.RunId === y).map((r) => Date.parse(r.WindowStart))));
    const lastOfA = coverage.filter((r) => r.RunId === a).sort((x, y) => y.WindowSequence - x.WindowSequence)[0]!;
    expect(lastOfA.WindowEndReason).toBe('crash');
    expect(coverage.find((r) => r.RunId === b)!.PreviousRunEnd).toBe('crash');

    const gaps = coverageGaps(coverage, eventsIn([data]), t0, end, { windowMs: 1000, now: end });
    const seams = gaps.filter((g) => g.Kind === 'crash' || g.Kind === 'restart');
    expect(seams).toHaveLength(1);
    const crash = seams[0]!;
    expect(crash).toMatchObject({ NodeName: 'node-k', Kind: 'crash', RunId: b });
    // From the last moment the killed run was known alive (its lock's last refresh) to the restart.
    expect(crash.GapStart).toBeLessThanOrEqual(killedAt);
    // The lock is refreshed every second (lockStaleMs 2000): a late refresh on a busy machine is allowed for.
    expect(crash.GapStart).toBeGreaterThan(killedAt - 3000);
    expect(crash.GapEnd).toBeGreaterThanOrEqual(killedAt);
    expect(crash.GapEnd).toBeLessThanOrEqual(startedAgain);
    expect(gaps.filter((g) => g.Kind === 'agent_started')).toEqual([expect.objectContaining({ NodeName: 'node-k', GapStart: Date.parse(agentStart) })]);
    expect(gaps.filter((g) => !['crash', 'agent_started'].includes(g.Kind))).toEqual([]);

    // A range that begins while the node was down: the crash shows from the last row before it.
    const fromInside = coverageGaps(coverage, [], crash.GapStart + 100, end, { windowMs: 1000, now: end });
    expect(fromInside.filter((g) => g.Kind === 'crash')).toEqual([expect.objectContaining({ GapStart: crash.GapStart, GapEnd: crash.GapEnd })]);

    const [node] = completeness(coverage, t0, end, end);
    expect(node).toMatchObject({ NodeName: 'node-k', Runs: 2, Crashes: 1, Seen: ackedFirst + ackedSecond, Balanced: true });
    expect(node!.CoveredShare).toBeLessThanOrEqual(1);
    // Each run's windows touch: the time covered is the two runs' spans, the crash gap not in it.
    const span = (run: string) => {
      const rows = coverage.filter((r) => r.RunId === run);
      return Math.max(...rows.map((r) => Date.parse(r.WindowEnd))) - Math.min(...rows.map((r) => Date.parse(r.WindowStart)));
    };
    expect(node!.CoveredSeconds * 1000).toBeCloseTo(span(a!) + span(b!), 0);

    // Every flow is in a row (aggregates included), rows resent after the kill counted once.
    const aggregates = flows.filter((f) => f.AggregatedFlows !== null);
    expect(aggregates.length).toBeGreaterThan(0);
    expect(flows.length).toBeLessThan(ackedFirst + ackedSecond);
    expect(reconcile(coverage, flows, t0, end, { settleMs: 0, now: end })).toEqual([]);

    const cut = deleteWindow(coverage, flows);
    expect(reconcile(coverage, cut.flows, t0, end, { settleMs: 0, now: end })).toEqual([
      expect.objectContaining({ RunId: cut.window.RunId, CoverageWindow: cut.window.WindowSequence, Kind: 'missing_rows', Missing: cut.window.FlowsKept, FlowsInRows: 0 }),
    ]);
    // One aggregate row deleted: its window misses the flows folded into it.
    const agg = aggregates[0]!;
    const withoutAgg = flows.filter((f) => f.Uuid !== agg.Uuid);
    expect(reconcile(coverage, withoutAgg, t0, end, { settleMs: 0, now: end })).toEqual([
      expect.objectContaining({ RunId: agg.RunId, CoverageWindow: agg.CoverageWindow, Kind: 'missing_rows', Missing: agg.AggregatedFlows }),
    ]);
    console.log(
      `[kill -9] acknowledged ${ackedFirst} + ${ackedSecond} flows in ${coverage.length} coverage rows (${runs.length} runs); crash gap ${crash.GapEnd - crash.GapStart} ms (killed ${killedAt - crash.GapStart} ms after the last sign of life); ` +
        `${flows.length} flow rows (${aggregates.length} aggregates, ${flows.length - new Set(flows.map((f) => f.Uuid)).size} delivered twice); covered ${node!.CoveredSeconds.toFixed(1)} s of ${((end - t0) / 1000).toFixed(1)} s`,
    );
  }, 30_000);

  it('a replay for the node and a second process with its node name are told apart: the replay is not the node, the second process is an overlap', async () => {
    const [d1, d2, d3] = [tmp('first'), tmp('second'), tmp('replay')];
    const common = { coverage: { windowSeconds: 1, nodeName: 'node-r' }, batch: { maxAgeMs: 100 } } as const;
    const t0 = Date.now();
    const first = await startService({ ...common, sink: { local: { directory: d1 } } });
    running.push(first);
    const loading = load(first.url, 'first', 'node-r', 4000, 200);
    await sleep(800);
    // `hubble-adx replay` of a saved log, for the same node, while the service runs.
    const replayed = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI, 'replay', join(projectRoot(), 'test/fixtures/fluent-bit/input-cilium-agent-cri.log')], {
        env: { PATH: process.env.PATH, NODE_NAME: 'node-r', HUBBLE_ADX_SINK__LOCAL__DIRECTORY: d3, HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '1', HUBBLE_ADX_LOG__LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
    expect(replayed.code, replayed.out).toBe(0);
    // A second service with the same coverage.nodeName (a shared ConfigMap), its own spool.
    const second = await startService({ ...common, sink: { local: { directory: d2 } } });
    running.push(second);
    const secondRun = Date.now();
    const ackedSecond = await load(second.url, 'second', 'node-r', 1500, 200);
    await second.stop();
    const secondStopped = Date.now();
    const ackedFirst = await loading;
    await first.stop();
    const end = Date.now();

    const dirs = [d1, d2, d3];
    const coverage = coverageIn(dirs);
    const byKind = (k: string) => [...new Set(coverage.filter((r) => r.RunKind === k).map((r) => r.RunId))];
    const [replayRun] = byKind('replay');
    expect(byKind('replay')).toHaveLength(1);
    expect(byKind('serve')).toHaveLength(2);
    expect(coverage.filter((r) => r.RunId === replayRun).every((r) => r.NodeName === 'node-r')).toBe(true);
    const replayFlows = coverage.filter((r) => r.RunId === replayRun).reduce((n, r) => n + r.FlowsSeen, 0);
    expect(replayFlows).toBe(10);
    const secondRunId = coverageIn([d2])[0]!.RunId;
    expect(Date.parse(coverageIn([d2])[0]!.WindowStart)).toBeLessThanOrEqual(secondRun);

    const gaps = coverageGaps(coverage, eventsIn(dirs), t0, end, { windowMs: 1000, now: end });
    // Only the second process shows: no crash, restart, overlap or silence for the replay.
    expect(gaps.map((g) => [g.Kind, g.RunId])).toEqual([['overlap', secondRunId]]);
    expect(gaps[0]!.GapEnd).toBeLessThanOrEqual(secondStopped);
    expect(gaps.some((g) => g.RunId === replayRun || g.Detail.includes(replayRun!))).toBe(false);

    const [node] = completeness(coverage, t0, end, end);
    // Both processes' flows (they came from different senders), none of the replay's; the time once.
    expect(node).toMatchObject({ NodeName: 'node-r', Runs: 2, Crashes: 0, Seen: ackedFirst + ackedSecond, Balanced: true });
    expect(node!.CoveredShare).toBeLessThanOrEqual(1);
    expect(node!.CoveredShare).toBeGreaterThan(0.9);
    // Replay windows reconcile with the replay's rows like any other.
    expect(reconcile(coverage, flowsIn(dirs), t0, end, { settleMs: 0, now: end })).toEqual([]);
    console.log(
      `[replay and a second process] node-r: ${ackedFirst} + ${ackedSecond} flows by two serve runs, ${replayFlows} replayed; overlap ${gaps[0]!.GapEnd - gaps[0]!.GapStart} ms; CoveredShare ${node!.CoveredShare.toFixed(3)}`,
    );
  }, 30_000);

  it('HubbleReconcile finds nothing when every row is there, and the windows whose rows a retention cut took', async () => {
    const data = tmp('reconcile');
    const t0 = Date.now();
    const svc = await startService({ coverage: { windowSeconds: 1, nodeName: 'node-c' }, batch: { maxAgeMs: 100 }, sink: { local: { directory: data } } });
    running.push(svc);
    const acked = await load(svc.url, 'c', 'node-c', 3000, 100, 6);
    await svc.stop();
    const end = Date.now();
    const coverage = coverageIn([data]);
    const flows = flowsIn([data]);
    expect(flows).toHaveLength(acked);
    expect(reconcile(coverage, flows, t0, end, { settleMs: 0, now: end })).toEqual([]);

    // Retention cut after the first windows: the rows of the oldest windows with flows are gone.
    const withFlows = coverage.filter((r) => r.FlowsKept > 0).sort((x, y) => x.WindowSequence - y.WindowSequence);
    const cut = withFlows.slice(0, 2);
    const kept = flows.filter((f) => !cut.some((w) => w.WindowSequence === f.CoverageWindow));
    expect(reconcile(coverage, kept, t0, end, { settleMs: 0, now: end }).map((d) => [d.CoverageWindow, d.Kind, d.Missing])).toEqual(cut.map((w) => [w.WindowSequence, 'missing_rows', w.FlowsKept]));

    // A row delivered twice is counted once; a row whose coverage row is gone shows on its own.
    const twice = [...flows, flows[0]!];
    expect(reconcile(coverage, twice, t0, end, { settleMs: 0, now: end })).toEqual([]);
    const lastWindow = withFlows[withFlows.length - 1]!;
    const noRow = coverage.filter((r) => r !== lastWindow);
    expect(reconcile(noRow, flows, t0, end, { settleMs: 0, now: end })).toEqual([
      expect.objectContaining({ CoverageWindow: lastWindow.WindowSequence, Kind: 'no_coverage_row', FlowsInRows: lastWindow.FlowsKept }),
    ]);
  }, 20_000);
});
