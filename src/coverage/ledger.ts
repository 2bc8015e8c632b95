import type { Counts } from '../process/counts.js';
import type { CoverageRow } from '../schema/index.js';
import { markBefore, type Mark } from '../spool/checkpoint-record.js';
import { CoverageWindow, type RunInfo, type WindowState } from './coverage-window.js';

/** A closed window and the records it counted: what rows made again after a crash are stamped with. */
interface Range {
  runId: string;
  seq: number;
  from: Mark;
  to: Mark;
}

/** The ledger as plain data: part of every checkpoint. */
export interface LedgerState {
  /** Open windows: the live run's, and the one of an earlier run whose records are still being counted. */
  windows: WindowState[];
  /** The run whose window records are counted into now. */
  counting: string | null;
  closed: Range[];
  /** The outcome settings of the runs the closed ranges belong to (RunInfo.outcomes), by run. */
  outcomes?: Record<string, unknown>;
}

/** Most closed ranges remembered; past it the oldest go (rows made again from them carry no window). */
const MAX_RANGES = 10_000;

/**
 * Which coverage window counts what. Records are counted into the window of the run that received
 * them: the live run's current window, or, while a backlog an earlier run left is made into rows,
 * that run's last window, closed (reason `crash`) when the backlog reaches the next run's start.
 * The live run's windows end on the clock (heartbeats). Each window counts a contiguous stretch of
 * the spool (records are made into rows in spool order), remembered after it closes so that rows
 * made again after a crash are stamped with the window that counted them.
 */
export class CoverageLedger {
  private readonly windows = new Map<string, CoverageWindow>();
  private counting: string | null;
  private readonly closed: Range[];
  private readonly outcomes: Map<string, unknown>;

  constructor(
    private readonly windowSeconds: number,
    private readonly liveRun: RunInfo,
    restored: LedgerState | null,
  ) {
    for (const w of restored?.windows ?? []) this.windows.set(w.run.runId, new CoverageWindow(structuredClone(w)));
    this.counting = restored?.counting ?? null;
    this.closed = [...(restored?.closed ?? [])];
    this.outcomes = new Map(Object.entries(restored?.outcomes ?? {}));
    // The live run's first window opens now; it counts only once the backlog reaches the run's start.
    this.windows.set(liveRun.runId, CoverageWindow.open(liveRun, 0, liveRun.startedAt, { position: Number.MAX_SAFE_INTEGER, item: 0 }));
  }

  get liveWindow(): CoverageWindow {
    const w = this.windows.get(this.liveRun.runId);
    if (!w) throw new Error('the live run has stopped: no window is open');
    return w;
  }

  /** Whether the live run's window is open (not yet closed by a clean stop). */
  get liveOpen(): boolean {
    return this.windows.has(this.liveRun.runId);
  }

  /** The window counting records now (none before the first run's start is reached). */
  get countingWindow(): CoverageWindow | null {
    return this.counting === null ? null : (this.windows.get(this.counting) ?? null);
  }

  /**
   * The window that counts a record at `mark` from now on. Records come after the start of the run
   * they belong to, so one is always open; but a spool an earlier version wrote has no run starts,
   * and a request that reached the spool after its run closed its last window (a stop) has none
   * left: the live run's window counts them, from here.
   */
  countingFrom(mark: Mark): CoverageWindow {
    const w = this.countingWindow;
    if (w) return w;
    const live = this.windows.get(this.liveRun.runId) ?? CoverageWindow.open(this.liveRun, 0, this.liveRun.startedAt, mark);
    this.windows.set(this.liveRun.runId, live);
    if (markBefore(mark, live.s.from)) live.s.from = mark;
    this.counting = this.liveRun.runId;
    return live;
  }

  /** Add what a slice counted to the window counting now. */
  count(c: Counts): void {
    this.countingWindow?.add(c);
  }


  refused(): void {
    this.windows.get(this.liveRun.runId)?.refused();
  }

  written(rows: number): void {
    this.windows.get(this.liveRun.runId)?.written(rows);
  }

  overloadAggregating(): void {
    this.windows.get(this.liveRun.runId)?.overloadAggregating();
  }

  /** When the live window ends (never, once the run has stopped). */
  get liveEnd(): number {
    const live = this.windows.get(this.liveRun.runId);
    if (!live) return Number.POSITIVE_INFINITY;
    const w = this.windowSeconds * 1000;
    return Math.floor(live.s.start / w) * w + w;
  }

  /**
   * The backlog reached the start of `run` (at `mark`): the window still counting the run before it
   * is closed (that run crashed, or stopped with records not yet counted: the row ends when it was
   * last known alive, or when it stopped), and `run`'s window counts from here.
   */
  crossRun(run: RunInfo, mark: Mark): CoverageRow | null {
    let row: CoverageRow | null = null;
    const before = this.countingWindow;
    if (before && before.s.run.runId !== run.runId) {
      const end = Math.max(before.s.start, run.previousLastAlive ?? run.startedAt);
      row = before.row(end, run.previousRunEnd === 'clean' ? 'stop' : 'crash', 0);
      this.remember(before, mark);
      this.windows.delete(before.s.run.runId);
    }
    let w = this.windows.get(run.runId);
    if (!w) {
      w = CoverageWindow.open(run, 0, run.startedAt, mark);
      this.windows.set(run.runId, w);
    }
    // Counting starts here. A live window that counted only what was never spooled (requests of
    // agent log lines alone, answered while the backlog was made) still has no place in the spool.
    if (markBefore(mark, w.s.from)) w.s.from = mark;
    this.counting = run.runId;
    return row;
  }

  /**
   * Close the live window, counting up to `mark`: at its end, and the next one opens; or, when the
   * run stops with everything counted, at `now`, and none opens (a stop with records still to
   * count leaves it open: the next run closes it once it has counted them).
   */
  closeLive(now: number, mark: Mark, stopping: boolean, oldestPendingSeconds: number): CoverageRow {
    const w = this.liveWindow;
    const end = stopping ? Math.max(now, w.s.start) : Math.max(this.liveEnd, w.s.start);
    const row = w.row(end, stopping ? 'stop' : 'window', oldestPendingSeconds);
    const counted = this.counting === this.liveRun.runId;
    if (counted) this.remember(w, mark);
    if (stopping) {
      this.windows.delete(this.liveRun.runId);
      if (counted) this.counting = null;
      return row;
    }
    // A tick that comes late (a busy event loop) closes one window; the next catches up.
    const next = CoverageWindow.open(this.liveRun, w.s.seq + 1, end, counted ? mark : w.s.from);
    this.windows.set(this.liveRun.runId, next);
    return row;
  }

  /** The window (run and sequence) that counted the record item at `mark`, made into rows again after a crash. */
  windowAt(mark: Mark): { runId: string; seq: number } | null {
    let open: CoverageWindow | null = null;
    for (const w of this.windows.values()) if (!markBefore(mark, w.s.from) && (!open || markBefore(open.s.from, w.s.from))) open = w;
    if (open) return { runId: open.s.run.runId, seq: open.s.seq };
    for (let i = this.closed.length - 1; i >= 0; i--) {
      const r = this.closed[i]!;
      if (!markBefore(mark, r.from) && markBefore(mark, r.to)) return { runId: r.runId, seq: r.seq };
    }
    return null;
  }

  /**
   * The outcome settings of the run whose window counted (or counts) the record at `mark`, as that
   * run wrote them (RunInfo.outcomes); undefined when no window holds it.
   */
  outcomesAt(mark: Mark): unknown {
    const w = this.windowAt(mark);
    if (!w) return undefined;
    const open = this.windows.get(w.runId);
    return open ? open.s.run.outcomes : this.outcomes.get(w.runId);
  }

  /** The outcome settings of the run whose window counts the records counted from now on (see countingFrom). */
  get countingOutcomes(): unknown {
    return (this.countingWindow?.s.run ?? this.liveRun).outcomes;
  }

  /** Forget ranges that end before `oldest` (no record before it is left in the spool). */
  trim(oldest: Mark): void {
    let n = 0;
    while (n < this.closed.length && !markBefore(oldest, this.closed[n]!.to)) n++;
    if (n === 0) return;
    this.closed.splice(0, n);
    this.forgetOutcomes();
  }

  snapshot(): LedgerState {
    return {
      windows: [...this.windows.values()].map((w) => structuredClone(w.s)),
      counting: this.counting,
      closed: [...this.closed],
      outcomes: Object.fromEntries(this.outcomes),
    };
  }

  private remember(w: CoverageWindow, to: Mark): void {
    if (!markBefore(w.s.from, to)) return;
    this.closed.push({ runId: w.s.run.runId, seq: w.s.seq, from: w.s.from, to });
    if (w.s.run.outcomes !== undefined) this.outcomes.set(w.s.run.runId, w.s.run.outcomes);
    if (this.closed.length > MAX_RANGES) {
      this.closed.splice(0, this.closed.length - MAX_RANGES);
      this.forgetOutcomes();
    }
  }

  /** The settings of runs no range belongs to any more. */
  private forgetOutcomes(): void {
    if (this.outcomes.size === 0) return;
    const runs = new Set(this.closed.map((r) => r.runId));
    for (const id of this.outcomes.keys()) if (!runs.has(id)) this.outcomes.delete(id);
  }
}
