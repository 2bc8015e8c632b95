import type { Batcher } from '../batch/index.js';
import type { Config } from '../config/index.js';
import { linePosition, type CoverageLedger, type LinePosition, type RunInfo, type UpstreamGaps } from '../coverage/index.js';
import type { Logger } from '../logger.js';
import type { Counts, Processor, RowStamp } from '../process/index.js';
import { addCounts, emptyCounts } from '../process/index.js';
import { decompress, parseBody, type BadPart, type BodyFormat, type BodyResult, type Decoded } from '../receive/index.js';
import type { RowOfTable, TableKey } from '../schema/index.js';
import { markBefore, type Mark, type Receipt, type Spool } from '../spool/index.js';
import type { Checkpoints } from './checkpoints.js';
import { decideAsCounted } from './decide-as-counted.js';
import { addRows, expectRows, handOff, keepPiecesUntil, sizeOf } from './hand-off.js';

/** Tell the offsets tracker where the lines of records [from, to) lay (records without a position are skipped). */
function observePositions(upstream: UpstreamGaps, records: readonly { record: Record<string, unknown> }[], from: number, to: number): void {
  let positions: LinePosition[] | null = null;
  for (let i = from; i < to; i++) {
    const p = linePosition(records[i]!.record);
    if (p) (positions ??= []).push(p);
  }
  if (positions) upstream.observe(positions, Date.now());
}

/** A request taken live: what the receiver already decoded, so that it need not be read back. */
export interface LiveRequest {
  decoded: Decoded;
}

export type QueueItem =
  | {
      kind: 'request';
      receipt: Receipt;
      receivedAt: number;
      aggregateAllowed: boolean;
      /** Written by a version before checkpoints, which counted it when it came. */
      countedBefore: boolean;
      live: LiveRequest | null;
      /** Told what the request came to once it is made into rows (null: it could not be read, or the queue stopped first). */
      done: ((counts: Counts | null) => void) | null;
      /** Left in the spool by an earlier run. */
      replayed?: boolean;
    }
  | { kind: 'run'; receipt: Receipt; run: RunInfo }
  | { kind: 'checkpoint'; receipt: Receipt }
  | { kind: 'rows'; receipt: Receipt; table: TableKey; rows: unknown[] };

export interface QueueDeps {
  spool: Spool | null;
  processor: Processor;
  batcher: Batcher;
  ledger: CoverageLedger;
  /** Told where in the export files the counted records' lines lay. */
  upstream: UpstreamGaps;
  checkpoints: Checkpoints;
  config: Pick<Config, 'limits' | 'server'>;
  receiverNode: string;
  /** Rows made per call of the processor: a request with more records is made into rows in slices. */
  sliceRecords: number;
  /** Whether the rows in memory leave room for another slice. */
  hasRoom(): boolean;
  /** Resolves once there may be room again (a batch was delivered). */
  roomFreed(): Promise<void>;
  /** A turn to decode `bytes` of body (the receiver's line): resolves with its release. */
  decodeTurn(bytes: number): Promise<() => void>;
  publish(c: Counts): void;
  /** Rows made again from records an earlier run left. */
  replayedRows(rows: number): void;
  log: Logger;
}

/** What the spool held at start: where counting stood, and the lines checkpoints gave up before it. */
export interface Resume {
  /** Records before it were counted before a crash: made into rows again without being counted. */
  counted: Mark;
  /** Records before it had their flows folded into aggregate rows on disk: not folded again. */
  aggregated: Mark;
  /** Lines checkpoints gave up, forgotten again when the queue passes their marks. */
  given: { mark: Mark; keys: string[] }[];
}

/**
 * Every spooled record is made into rows here, one at a time, in the order of the spool: what an
 * earlier run left, requests parked while memory was at its bounds, and live requests alike, by
 * one function (`make`). A request is made into rows in slices, each waiting for room in the
 * batcher, so that no request, however many records it holds, takes memory past the bounds. A
 * record counted before a crash (before the resume mark) is made into rows again the same way but
 * not counted again. A record that cannot be read back is reported and let go; nothing a record
 * holds is thrown out of here.
 */
export class RecordQueue {
  private items: QueueItem[] = [];
  private head = 0;
  private running: Promise<void> | null = null;
  private stopped = false;
  private current: Mark = { position: 0, item: 0 };
  private readonly given: { mark: Mark; keys: string[] }[];
  private readonly idleWaiters: (() => void)[] = [];
  /** The outcome settings the processor decides by now (a run's, as it wrote them; undefined: its own). */
  private outcomes: unknown = undefined;

  constructor(
    private readonly d: QueueDeps,
    private readonly resume: Resume,
  ) {
    this.given = [...resume.given].sort((a, b) => (markBefore(a.mark, b.mark) ? -1 : markBefore(b.mark, a.mark) ? 1 : 0));
  }

  /** Records waiting to be made into rows (the one being made included). */
  get length(): number {
    return this.items.length - this.head;
  }

  /** Requests waiting (parked or left by an earlier run): what the gauge shows. */
  get waitingRequests(): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!.kind === 'request') n++;
    return n;
  }

  /** When the oldest waiting request was received. */
  get oldestReceivedAt(): number | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const it = this.items[i]!;
      if (it.kind === 'request') return it.receivedAt;
    }
    return undefined;
  }

  /** Where making rows stands: every record before it is made into rows and counted. */
  get mark(): Mark {
    return this.current;
  }

  /** Nothing waits to be made into rows (the record being made, if any, counts as waiting). */
  get idle(): boolean {
    return this.length === 0;
  }

  push(item: QueueItem): void {
    this.items.push(item);
    // Stopped: it stays in the spool for the next start; whoever waits for it is told now.
    if (this.stopped && item.kind === 'request') item.done?.(null);
  }

  /** Make what is queued into rows, in order, while there is room; does the first record at once when it can. */
  kick(): void {
    if (this.running || this.stopped || this.length === 0) return;
    this.running = this.run().finally(() => {
      this.running = null;
      if (this.length > 0 && !this.stopped) this.kick();
      else if (this.length === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** Resolves once everything queued so far is made into rows (or the queue is stopped). */
  drained(): Promise<void> {
    if (this.length === 0 || this.stopped) return Promise.resolve();
    this.kick();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Make nothing more into rows (what is queued stays in the spool); resolves once the record being made is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    for (const w of this.idleWaiters.splice(0)) w();
    for (let i = this.head; i < this.items.length; i++) {
      const it = this.items[i]!;
      if (it.kind === 'request') it.done?.(null);
    }
  }

  private async run(): Promise<void> {
    while (this.length > 0 && !this.stopped) {
      const item = this.items[this.head]!;
      try {
        // Stopped in the middle of a request: it stays where it is, in the queue and in the spool.
        if (!(await this.make(item))) return;
      } catch (err) {
        // Only a bug can land here (make catches what input can throw): the record becomes a dead
        // letter, so that it neither stops the queue nor comes back at every start.
        this.d.log.error({ err, position: item.receipt.position }, 'a spooled record could not be made into rows; it is set aside as a dead letter');
        await this.setAside(item, err).catch((e: unknown) => this.d.log.error({ err: e }, 'could not set the record aside either; it is kept for the next start'));
      }
      this.items[this.head++] = undefined as never;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
    }
  }

  /** The one way a spooled record is made into rows: live, parked or replayed. False: stopped before it was done. */
  private async make(item: QueueItem): Promise<boolean> {
    const position = item.receipt.position;
    switch (item.kind) {
      case 'request':
        return this.makeRequest(item);
      case 'run':
        this.forgetGiven({ position, item: 0 });
        if (this.d.spool && markBefore({ position, item: 0 }, this.resume.counted)) {
          // Crossed before the checkpoint the spool resumed from: its window is in that checkpoint.
          item.receipt.made();
          return true;
        }
        {
          const row = this.d.ledger.crossRun(item.run, { position, item: 0 });
          this.current = { position: position + 1, item: 0 };
          this.d.checkpoints.enlist(item.receipt.hold());
          item.receipt.made();
          if (row) this.d.checkpoints.crashed(row);
          // What the run before counted and folded (its last window, its aggregates) is written
          // before this run counts anything: aggregate rows never span runs.
          await this.d.checkpoints.take(Date.now(), false, true).catch(() => undefined);
        }
        return true;
      case 'checkpoint': {
        const rows = await this.readRows(item.receipt);
        if (!rows) return false;
        const now = Date.now();
        for (const [table, list] of Object.entries(rows) as [TableKey, unknown[]][]) {
          if (!Array.isArray(list) || list.length === 0) continue;
          handOff(this.d.processor.encodeRows(table, list as RowOfTable[typeof table][], now, false).chunks, item.receipt, this.d.batcher);
        }
        item.receipt.made();
        return true;
      }
      case 'rows':
        handOff(this.d.processor.encodeRows(item.table, item.rows as RowOfTable[typeof item.table][], Date.now(), false).chunks, item.receipt, this.d.batcher);
        item.receipt.made();
        return true;
    }
  }

  private async makeRequest(item: Extract<QueueItem, { kind: 'request' }>): Promise<boolean> {
    const d = this.d;
    const receipt = item.receipt;
    const position = receipt.position;
    let decoded: Decoded | null;
    let release: (() => void) | null = null;
    if (item.live) decoded = item.live.decoded;
    else {
      // Read back only with room to make its rows, and in the receiver's line of decode turns: a
      // request decoded, then held while the sink was down, took heap no bound counted.
      while (!d.hasRoom() && !this.stopped) await d.roomFreed();
      if (this.stopped) return false;
      const read = await this.readBack(receipt);
      decoded = read?.decoded ?? null;
      release = read?.release ?? null;
    }
    const turn = { release };
    try {
      return await this.makeDecoded(item, decoded, turn);
    } finally {
      turn.release?.();
    }
  }

  /** `turn`: the decode turn of a request read back, which this may let go of and take again. */
  private async makeDecoded(item: Extract<QueueItem, { kind: 'request' }>, first: Decoded | null, turn: { release: (() => void) | null }): Promise<boolean> {
    const d = this.d;
    const receipt = item.receipt;
    const position = receipt.position;
    let decoded = first;
    if (!decoded) {
      if (this.stopped) return false;
      receipt.made();
      item.done?.(null);
      return true;
    }
    const n = decoded.records.length;
    // Items before these were counted (and folded) before a crash: made into rows again, not counted (folded) again.
    const countedUpTo = this.upTo(item, this.resume.counted);
    const foldedUpTo = this.upTo(item, this.resume.aggregated);
    let total: Counts | null = null;
    let enlistedIn = -1;
    let foldedIn = -1;
    let from = 0;
    do {
      if (!d.hasRoom()) {
        // A live request is answered now (deferred: it is in the spool) instead of holding its
        // sender and its decode turn until room comes back, which in an ADX outage is when ADX does.
        // What it decoded (and a read-back's turn) is let go while it waits, and read again after.
        if (d.spool) {
          item.done?.(null);
          item.done = null;
          item.live = null;
          decoded = null;
        }
        if (turn.release) {
          turn.release();
          turn.release = null;
        }
        while (!d.hasRoom() && !this.stopped) await d.roomFreed();
        if (this.stopped) return false;
        if (!decoded) {
          const read = await this.readBack(receipt);
          if (!read) {
            if (this.stopped) return false;
            break;
          }
          decoded = read.decoded;
          turn.release = read.release;
        }
      }
      const silent = from < countedUpTo;
      const foldedBefore = from < foldedUpTo;
      const to = Math.min(n, from + d.sliceRecords, silent ? countedUpTo : Number.POSITIVE_INFINITY, foldedBefore ? foldedUpTo : Number.POSITIVE_INFINITY);
      this.forgetGiven({ position, item: from });
      // Decided as the run whose window counts these records decides (counted before a crash:
      // the window that counted them), whatever this process is configured with.
      this.decideAs(silent ? d.ledger.outcomesAt({ position, item: from }) : d.ledger.countingOutcomes);
      // Aggregates are taken before a slice could open more than aggregation.maxKeys of them, so
      // that which flows are aggregated never depends on how full the aggregator was.
      if (!foldedBefore && d.processor.aggregateRoom < to - from) await d.checkpoints.take(Date.now(), false, true).catch(() => undefined);
      // Where each line lay in its export file, read before the slice consumes the records.
      if (!silent) observePositions(d.upstream, decoded.records, from, to);
      const out = d.processor.slice({
        records: decoded.records,
        bad: decoded.bad,
        from,
        to,
        receivedAt: item.receivedAt,
        piecesSince: item.replayed ? Math.max(item.receivedAt, Date.now()) : item.receivedAt,
        source: receipt,
        aggregateAllowed: item.aggregateAllowed,
        foldedBefore,
        stamp: silent ? this.stampAt({ position, item: from }) : this.countingStamp({ position, item: from }),
      });
      // Without a spool there is nothing to make durable first.
      if (silent || !d.spool) handOff(out.chunks, receipt, d.batcher);
      else if (out.chunks.length > 0) {
        // Counted now: delivered once the checkpoint that counts them is on disk.
        expectRows(out.chunks, receipt);
        const { rows, bytes } = sizeOf(out.chunks);
        const chunks = out.chunks;
        d.checkpoints.afterCounted(rows, bytes, () => addRows(chunks, receipt, d.batcher));
      }
      keepPiecesUntil(out.decided, receipt);
      if (item.replayed) d.replayedRows(out.rows);
      if (!silent) {
        d.ledger.count(out.counts);
        d.publish(out.counts);
        total = total ? addCounts(total, out.counts) : out.counts;
        // Counted here: kept in the spool until the checkpoint that makes this count durable.
        if (enlistedIn !== d.checkpoints.epoch) {
          d.checkpoints.enlist(receipt.hold());
          enlistedIn = d.checkpoints.epoch;
        }
      }
      // Folded here: kept until the checkpoint holding those aggregate rows is on disk.
      if (!foldedBefore && (out.counts.outcomes.get('aggregated') ?? 0) > 0 && foldedIn !== d.checkpoints.aggregateEpoch) {
        d.checkpoints.enlistFolded(receipt.hold());
        foldedIn = d.checkpoints.aggregateEpoch;
      }
      from = to;
      this.current = { position, item: from };
    } while (from < n);
    this.current = { position: position + 1, item: 0 };
    receipt.made();
    item.done?.(total ?? emptyCounts());
    return true;
  }

  /** Decide by these outcome settings (a run's, as it wrote them): told to the processor when they change. */
  private decideAs(outcomes: unknown): void {
    if (outcomes === this.outcomes) return;
    this.outcomes = outcomes;
    decideAsCounted(this.d.processor, outcomes, this.d.log);
  }

  /** How many of a request's records come before `mark` (counted, or folded, before a crash). */
  private upTo(item: Extract<QueueItem, { kind: 'request' }>, mark: Mark): number {
    if (item.countedBefore) return Number.POSITIVE_INFINITY;
    // Without a spool nothing is made into rows twice.
    if (!this.d.spool) return 0;
    const position = item.receipt.position;
    if (position < mark.position) return Number.POSITIVE_INFINITY;
    return position === mark.position ? mark.item : 0;
  }

  /** A record `make` threw on: one dead letter holding its raw bytes (bounded), counted once. */
  private async setAside(item: QueueItem, err: unknown): Promise<void> {
    const d = this.d;
    const receipt = item.receipt;
    // Made already (it threw after that): its rows are on their way.
    if (receipt.settled || receipt.isMade) return;
    let raw = '';
    if (item.kind === 'request' && d.spool) {
      const req = await d.spool.readRequest(receipt).catch(() => null);
      raw = req ? req.body.toString('base64') : '';
    }
    const message = `the ${item.kind} record at ${receipt.position} could not be made into rows: ${err instanceof Error ? err.message : 'unknown error'}`;
    const out = d.processor.failed(message, raw, this.countingStamp({ position: receipt.position, item: 0 }));
    handOff(out.chunks, receipt, d.batcher);
    if (item.kind === 'request' && this.upTo(item, this.resume.counted) === 0) {
      d.ledger.count(out.counts);
      d.publish(out.counts);
      d.checkpoints.enlist(receipt.hold());
    }
    this.current = { position: receipt.position + 1, item: 0 };
    receipt.made();
    if (item.kind === 'request') item.done?.(out.counts);
  }

  /** A parked or replayed request, read back from the spool and decoded as the receiver would. */
  private async readBack(receipt: Receipt): Promise<{ decoded: Decoded; release: () => void } | null> {
    const d = this.d;
    if (!d.spool) return null;
    for (;;) {
      try {
        const req = await d.spool.readRequest(receipt);
        if (!req) {
          d.log.error({ position: receipt.position }, 'a spool record is gone, or is not a request this version can read; it is let go');
          return null;
        }
        const refused = (err: unknown) => ({ ok: false as const, error: { status: 400 as const, reason: 'undecodable_body', message: (err as Error).message } });
        const limits = d.config.limits;
        const inflated = await decompress(req.body, req.encoding || undefined, limits.maxDecompressedBytes).catch(refused);
        const release = await d.decodeTurn(inflated.ok ? inflated.body.length : req.body.length);
        let body: BodyResult;
        try {
          body = inflated.ok ? parseBody(inflated.body, req.format as BodyFormat, limits, d.config.server.jsonDateKey) : inflated;
        } catch (err) {
          body = refused(err);
        }
        if (body.ok) return { decoded: body.decoded, release };
        // Refused now: an undecodable body kept to be set aside, or a tighter limit than when it came.
        const bad: BadPart = { reason: body.error.reason, message: body.error.message, raw: req.body.toString('base64') };
        return { decoded: { records: [], bad: [bad] }, release };
      } catch (err) {
        if (this.stopped) return null;
        d.log.error({ err, position: receipt.position }, 'could not read a spooled request back; trying again');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /**
   * A checkpoint's rows, read back. A read that fails (EMFILE, EIO) is tried again, as a request's
   * is: its aggregates and coverage rows are counted nowhere else. Only a record that is gone or
   * does not decode is let go. Null: stopped before it could be read (it stays for the next start).
   */
  private async readRows(receipt: Receipt): Promise<Partial<Record<TableKey, unknown[]>> | null> {
    const spool = this.d.spool;
    if (!spool) return {};
    for (;;) {
      try {
        const rows = await spool.readCheckpointRows(receipt);
        if (!rows) this.d.log.error({ position: receipt.position }, 'the rows of a spooled checkpoint are gone or cannot be decoded; they are let go');
        return rows ?? {};
      } catch (err) {
        if (this.stopped) return null;
        this.d.log.error({ err, position: receipt.position }, 'could not read a spooled checkpoint back; trying again');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private countingStamp(at: Mark): RowStamp {
    const w = this.d.ledger.countingFrom(at);
    return { receiverNode: this.d.receiverNode, runId: w.s.run.runId, coverageWindow: w.s.seq };
  }

  private stampAt(mark: Mark): RowStamp {
    const w = this.d.ledger.windowAt(mark);
    return { receiverNode: this.d.receiverNode, runId: w?.runId ?? null, coverageWindow: w?.seq ?? null };
  }

  /** Lines a checkpoint gave up before a crash are forgotten once the queue reaches that checkpoint's mark. */
  private forgetGiven(at: Mark): void {
    while (this.given.length > 0 && !markBefore(at, this.given[0]!.mark)) this.d.processor.forgetLines(this.given.shift()!.keys);
  }
}
