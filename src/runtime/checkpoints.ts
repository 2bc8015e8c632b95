import type { Batcher, EncodedChunk } from '../batch/index.js';
import type { CoverageLedger, LedgerState, RunInfo, UpstreamGaps, UpstreamState } from '../coverage/index.js';
import type { DecidedLine } from '../extract/index.js';
import type { Logger } from '../logger.js';
import type { Counts, Processor } from '../process/index.js';
import type { CoverageRow, TableKey } from '../schema/index.js';
import { Receipt, type CheckpointRows, type Hold, type Mark, type Spool } from '../spool/index.js';
import { handOff } from './hand-off.js';

/** What a checkpoint records beside its mark: what the pipeline needs to go on from there after a crash. */
export interface PipelineState {
  runId: string;
  seq: number;
  ledger: LedgerState;
  /**
   * Lines given up at this checkpoint, with the positions of the records that brought their pieces
   * and where the queue stood when they were given up (a checkpoint that failed is written with the
   * next one, whose mark is later: the line was given up at its own). Absent: the checkpoint's mark.
   */
  given: { key: string; sources: number[]; mark?: Mark }[];
  /** What the export files' offsets have shown so far (see coverage/upstream-gaps.ts). */
  upstream: UpstreamState;
  /** Where the last aggregate rows were taken: every flow folded before it is in an aggregate row on disk. */
  aggregated: Mark;
}

export interface CheckpointDeps {
  processor: Processor;
  ledger: CoverageLedger;
  upstream: UpstreamGaps;
  spool: Spool | null;
  batcher: Batcher;
  run: RunInfo;
  log: Logger;
  /** Counts a checkpoint made (lines given up), for the metrics. */
  publish(c: Counts): void;
  coverageWindowClosed(): void;
  /** Where the record queue stands: what is counted so far. */
  mark(): Mark;
  /**
   * How far the flows folded so far reach. Behind `mark` while a backlog counted before a crash is
   * folded again: a checkpoint taken then must not say that the rest of it is in aggregate rows.
   */
  foldMark(): Mark;
  /** Whether lines may be given up now (the queue has caught up: no piece of theirs waits in it). */
  expiryAllowed(): boolean;
  /** The spool is close to full: what only a checkpoint lets go (counted records) should go now. */
  spoolPressed(): boolean;
  oldestPendingSeconds(now: number): number;
}

export interface CheckpointOptions {
  /** Aggregate rows are taken when this window ends (aggregation.windowSeconds, clock-aligned); null: only when coverage windows close. */
  aggregationWindowMs: number | null;
  partialMaxAgeMs: number;
  /** Rows counted wait at most this long for the checkpoint that counts them before they are delivered. */
  intervalMs: number;
}

/** A checkpoint made but not yet on disk. */
interface Payload {
  mark: Mark;
  state: PipelineState;
  rows: CheckpointRows;
  chunks: { table: TableKey; chunk: EncodedChunk }[];
  /** Records counted since the previous checkpoint: they may go once this one is on disk. */
  counted: Hold[];
  /** Records whose flows were folded into the aggregate rows this checkpoint holds (none if it took no aggregates). */
  folded: Hold[];
  given: DecidedLine[];
  /** Rows counted since the previous checkpoint, handed to the batcher once this one is on disk. */
  release: Release[];
}

/** Rows waiting for the checkpoint that counts them. */
interface Release {
  rows: number;
  bytes: number;
  go: () => void;
}

/**
 * Checkpoints: where counting is made durable. Every record counted holds its place in the spool
 * until the next checkpoint is on disk; a checkpoint is one spool record holding the mark (what is
 * counted), the pipeline's state at that mark (the coverage windows and what they counted, the
 * lines it gave up) and the rows it made (aggregates, lines given up, coverage rows), so that after
 * a crash the next run starts from the latest one and counts every record after it exactly once.
 * Checkpoints are written one at a time and in order: one that fails is carried into the next, so
 * a later mark is never on disk before an earlier checkpoint's rows. The latest stays in the spool
 * until a newer one is on disk.
 */
export class Checkpoints {
  private counted: Hold[] = [];
  private folded: Hold[] = [];
  /** Rows counted since the last checkpoint, waiting for the next one to be on disk. */
  private waiting: Release[] = [];
  private waitingRows = 0;
  private waitingBytes = 0;
  private soon: NodeJS.Timeout | null = null;
  /** Where the last aggregate rows were taken (a checkpoint that took them). */
  private aggregatedAt: Mark;
  private readonly crashRows: CoverageRow[] = [];
  private latest: Hold | null;
  private carried: Payload | null = null;
  private writing: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private seq = 0;
  /** Counts checkpoints taken: a record counted in this epoch is enlisted once. */
  epoch = 0;
  /** Counts the checkpoints that took aggregate rows: a record folded in this epoch is enlisted once. */
  aggregateEpoch = 0;
  private aggregationWindow: number;
  private lastExpiryAt = 0;
  private lastTakenAt = 0;

  constructor(
    private readonly d: CheckpointDeps,
    private readonly o: CheckpointOptions,
    /** The hold on the latest checkpoint an earlier run left, released once this run writes one. */
    restoredLatest: Hold | null,
    /** Where that checkpoint says the last aggregate rows were taken. */
    restoredAggregated: Mark,
    now: number,
  ) {
    this.latest = restoredLatest;
    this.aggregatedAt = restoredAggregated;
    this.aggregationWindow = this.windowOf(now);
  }

  /** A record was counted: it stays in the spool until the next checkpoint is on disk. */
  enlist(hold: Hold): void {
    this.counted.push(hold);
  }

  /**
   * Rows of a slice just counted: they are handed on (`go`) once the checkpoint that counts them is
   * on disk, so that a delivered row's count is never lost in a crash, and a crash makes only rows
   * not yet delivered again. A checkpoint comes within spool.checkpointIntervalMs.
   */
  afterCounted(rows: number, bytes: number, go: () => void): void {
    this.waiting.push({ rows, bytes, go });
    this.waitingRows += rows;
    this.waitingBytes += bytes;
    if (!this.soon) {
      this.soon = setTimeout(() => {
        this.soon = null;
        this.take(Date.now()).catch(() => undefined);
      }, this.o.intervalMs);
      this.soon.unref();
    }
  }

  /** Rows (and their encoded bytes) waiting for a checkpoint: part of what memory bounds count. */
  get waitingFor(): { rows: number; bytes: number } {
    return { rows: this.waitingRows, bytes: this.waitingBytes };
  }

  /** Flows of a record were folded into aggregates: it stays until the checkpoint holding those aggregate rows is on disk. */
  enlistFolded(hold: Hold): void {
    this.folded.push(hold);
  }

  /** The window of a crashed run, closed when the backlog reached the next run: written with the next checkpoint. */
  crashed(row: CoverageRow): void {
    this.crashRows.push(row);
  }

  /**
   * Whether a checkpoint is due now: a coverage window or an aggregation window ended, a line is
   * past its age, one failed, or the spool is close to full (counted records go once one is written).
   */
  due(now: number): boolean {
    if (this.carried && this.inFlight === 0) return true;
    if (now >= this.d.ledger.liveEnd) return true;
    if (this.aggregationDue(now)) return true;
    if ((this.counted.length > 0 || this.waiting.length > 0) && now - this.lastTakenAt >= this.o.intervalMs) return true;
    if (this.d.spoolPressed() && now - this.lastTakenAt >= 1000) return true;
    return this.expiryDue(now);
  }

  /**
   * The run stops with every record delivered and counted: the latest checkpoint says nothing the
   * next start needs, and may leave the spool too.
   */
  releaseLatest(): void {
    this.latest?.release();
    this.latest = null;
  }

  /**
   * A checkpoint could not be written (a full disk) and waits to be written with the next. Nothing
   * more should be made into rows meanwhile: every slice adds to what that checkpoint must hold, and
   * records are let go only once it is on disk, so a queue that went on would grow it past the room
   * the disk has when it frees up, and never write it.
   */
  get carrying(): boolean {
    return this.carried !== null;
  }

  /** Writes under way, or carried after a failure. */
  get pending(): boolean {
    return this.inFlight > 0 || this.carried !== null;
  }

  /**
   * Make a checkpoint now (between two slices of the record queue) and write it. `stopping`: the
   * run ends with every record counted (the live window closed now; a run that stops with records
   * left makes a plain checkpoint, and the next run finishes its window).
   * Resolves once it is on disk, or rejects when it could not be written (it is carried into the next one).
   */
  take(now: number, stopping = false, foldNow = false): Promise<void> {
    const d = this.d;
    this.lastTakenAt = now;
    const mark = d.mark();
    const foldMark = d.foldMark();
    const counting = d.ledger.countingWindow;
    const stamp = { receiverNode: d.run.nodeName, runId: counting?.s.run.runId ?? d.run.runId, coverageWindow: counting?.s.seq ?? null };
    // A line still waiting for pieces when the run stops is not given up: its pieces stay in the
    // spool, and the next run has it again when it makes them into rows (Fluent Bit sends the rest there).
    const expireAt = this.expiryDue(now) ? now : null;
    if (expireAt !== null) this.lastExpiryAt = now;
    const closing = d.ledger.liveOpen && (stopping || now >= d.ledger.liveEnd);
    // Aggregate rows never span coverage windows (they name the one that counted them): they are
    // taken when one closes, when the aggregation window ends, and whenever asked (a cut, a run's end).
    const aggregates = foldNow || stopping || closing || this.crashRows.length > 0 || this.aggregationDue(now);
    const out = d.processor.checkpoint({ now, expireAt, aggregates: aggregates ? { idPrefix: `agg-${d.run.runId}-${this.seq}` } : null, stamp });
    d.ledger.count(out.counts);
    d.publish(out.counts);
    if (aggregates) {
      this.aggregationWindow = this.windowOf(now);
      this.aggregatedAt = foldMark;
      this.aggregateEpoch++;
    }
    const coverage = this.crashRows.splice(0);
    if (closing) {
      const up = d.upstream.closeWindow(now);
      d.ledger.liveWindow.upstream(
        up.missingBytes,
        up.missing.map((m) => ({ File: m.file, Bytes: m.bytes, Ranges: m.ranges })),
        up.sequencesStarted,
      );
      coverage.push(d.ledger.closeLive(now, mark, stopping, d.oldestPendingSeconds(now)));
    }
    for (let i = 0; i < coverage.length; i++) d.coverageWindowClosed();
    // Ranges of records that have left the spool are never asked for again; keeping them would grow every checkpoint.
    if (d.spool) d.ledger.trim({ position: d.spool.oldestPosition, item: 0 });
    const cov = coverage.length > 0 ? d.processor.encodeRows('coverage', coverage, now, true) : null;
    const rows: CheckpointRows = { ...(out.rowObjects ?? {}) };
    if (coverage.length > 0) rows.coverage = coverage;
    const payload: Payload = {
      mark,
      state: {
        runId: d.run.runId,
        seq: this.seq++,
        ledger: d.ledger.snapshot(),
        upstream: d.upstream.snapshot(),
        aggregated: this.aggregatedAt,
        given: out.given.map((g) => ({ key: g.key, sources: g.line.sources.map((s) => (s as Receipt).position), mark })),
      },
      rows,
      chunks: [...out.chunks, ...(cov?.chunks ?? [])],
      counted: this.counted,
      folded: aggregates ? this.folded : [],
      given: out.given.map((g) => g.line),
      release: this.waiting,
    };
    this.waiting = [];
    if (this.soon) clearTimeout(this.soon);
    this.soon = null;
    this.counted = [];
    if (aggregates) this.folded = [];
    this.epoch++;
    this.inFlight++;
    const done = this.writing.then(() => this.write(payload));
    this.writing = done.catch(() => undefined);
    return done;
  }

  private async write(p: Payload): Promise<void> {
    const merged = this.carried ? merge(this.carried, p) : p;
    this.carried = null;
    let receipt: Receipt;
    try {
      receipt = this.d.spool ? await this.d.spool.appendCheckpoint({ mark: merged.mark, state: merged.state }, merged.rows) : new Receipt(-1);
    } catch (err) {
      // Nothing of it is on disk: its rows, holds and lines go with the next checkpoint.
      this.carried = merged;
      this.inFlight--;
      this.d.log.error({ err }, 'could not write a checkpoint to the spool; it is carried into the next one');
      throw err;
    }
    this.inFlight--;
    handOff(merged.chunks, receipt, this.d.batcher);
    const latest = receipt.hold();
    receipt.made();
    // Lines given up here: their dead letters are in this checkpoint; it stays as long as any record
    // that brought their pieces does, so that a replay meets it and forgets the line at its mark.
    for (const line of merged.given) {
      for (const s of line.sources) receipt.keepUntil(s as Receipt);
      for (const h of line.holds) h.release();
    }
    for (const r of merged.release) {
      this.waitingRows -= r.rows;
      this.waitingBytes -= r.bytes;
      r.go();
    }
    for (const h of merged.counted) h.release();
    for (const h of merged.folded) h.release();
    this.latest?.release();
    this.latest = latest;
  }

  private expiryDue(now: number): boolean {
    const oldest = this.d.processor.oldestPartialAt;
    if (oldest === null || !this.d.expiryAllowed()) return false;
    return now - oldest >= this.o.partialMaxAgeMs && now - this.lastExpiryAt >= Math.min(this.o.partialMaxAgeMs, 5000);
  }

  private aggregationDue(now: number): boolean {
    return this.o.aggregationWindowMs !== null && this.windowOf(now) !== this.aggregationWindow;
  }

  private windowOf(now: number): number {
    return this.o.aggregationWindowMs === null ? 0 : Math.floor(now / this.o.aggregationWindowMs);
  }
}

/** A failed checkpoint carried into the next: the newer mark and state, the rows, holds and lines of both. */
function merge(a: Payload, b: Payload): Payload {
  const rows: CheckpointRows = { ...a.rows };
  for (const [t, r] of Object.entries(b.rows) as [TableKey, unknown[]][]) rows[t] = [...(rows[t] ?? []), ...r];
  const given = [...a.state.given, ...b.state.given];
  return {
    mark: b.mark,
    state: { ...b.state, given },
    rows,
    chunks: [...a.chunks, ...b.chunks],
    counted: [...a.counted, ...b.counted],
    folded: [...a.folded, ...b.folded],
    given: [...a.given, ...b.given],
    release: [...a.release, ...b.release],
  };
}
