/**
 * Delivery accounting, in one place. Every record in the spool has a receipt; the record may leave
 * the spool only once its receipt is settled:
 *
 * - its rows: counted in with `expect` while the record is made into rows, closed with `made`
 *   (from then on its count is fixed), and counted out by the sink with `delivered`;
 * - holds: whatever else the record must outlive takes one (`hold`) and releases it once. A CRI
 *   line holding one of its pieces, the checkpoint that makes its counts and aggregates durable;
 * - other receipts: `keepUntil(other)` keeps it until `other` is settled and reported (a checkpoint
 *   that gave up a line, after the records that brought its pieces); `piecesFor(decider)` keeps it
 *   until `decider` is settled, and the spool is told of it before it is told of `decider` (the request that finished a
 *   CRI line is let go only after the requests holding its first pieces, so that a crash never
 *   leaves the end of a line in the spool without its beginning).
 *
 * Nothing else does arithmetic on these counts: the batcher hands each delivered slice back to the
 * receipt it came with, and the spool is told once, when the receipt settles.
 */

export interface Hold {
  release(): void;
}

/** Whoever is told when a receipt settles: the spool, which then lets the record go. */
export interface Settlement {
  settled(receipt: Receipt): void;
}

const NOBODY: Settlement = { settled: () => undefined };

export class Receipt {
  /** Rows handed on and not yet delivered, plus holds, plus one while it is still being made. */
  private open = 1;
  /** Holds on other receipts, released when this one settles. */
  private dependents: Hold[] | null = null;
  /** Receipts the spool must be told of before this one (the pieces of lines this record finished). */
  private reportAfter: Receipt[] | null = null;
  /** Told once this one is reported to the spool. */
  private onReported: (() => void)[] | null = null;
  private reported = false;
  private settledAlready = false;
  private madeAlready = false;

  constructor(
    /** Where the record is in the spool (see position.ts); -1 for rows never spooled. */
    readonly position: number,
    private readonly settlement: Settlement = NOBODY,
  ) {}

  /** Every row of it delivered, every hold released, every receipt it waits for settled. */
  get settled(): boolean {
    return this.settledAlready;
  }

  /** Whether `made` was called: its row count is fixed. */
  get isMade(): boolean {
    return this.madeAlready;
  }

  /** `rows` more of its rows are handed on; each comes back through `delivered`. */
  expect(rows: number): void {
    if (this.settledAlready || this.madeAlready) throw new Error('rows expected of a receipt whose rows are all made');
    if (!(rows >= 0)) throw new Error(`a receipt cannot expect ${rows} rows`);
    this.open += rows;
  }

  /** The record is made into rows: no row will be added to it (a second call changes nothing). */
  made(): void {
    if (this.madeAlready) return;
    this.madeAlready = true;
    this.close(1);
  }

  /** `rows` of its rows were taken by the sink. */
  delivered(rows: number): void {
    this.close(rows);
  }

  /** Keep the record until the returned hold is released (once; a second release does nothing). */
  hold(): Hold {
    if (this.settledAlready) throw new Error('a hold taken on a receipt already settled');
    this.open++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.close(1);
      },
    };
  }

  /**
   * Keep this record until `other` is settled, and report it to the spool after `other`: a
   * checkpoint that gave up a line must outlive, on disk too, every record that brought a piece of
   * it, or a crash between the two acknowledgements leaves pieces no checkpoint says were given up.
   */
  keepUntil(other: Receipt): void {
    if (other === this) return;
    if (other.settledAlready) return;
    (other.dependents ??= []).push(this.hold());
    (this.reportAfter ??= []).push(other);
  }

  /**
   * This record holds pieces of a CRI line `decider` finished: kept until `decider` settles, and
   * reported to the spool before it.
   */
  piecesFor(decider: Receipt): void {
    if (decider === this || decider.settledAlready) return;
    (decider.dependents ??= []).push(this.hold());
    (decider.reportAfter ??= []).push(this);
  }

  private close(n: number): void {
    if (this.settledAlready) return;
    this.open -= n;
    if (this.open > 0) return;
    if (this.open < 0) throw new Error('a receipt was settled for more rows than it expected');
    this.settledAlready = true;
    const waiting = this.dependents;
    this.dependents = null;
    if (waiting) for (const h of waiting) h.release();
    const before = this.reportAfter?.filter((r) => !r.reported) ?? [];
    this.reportAfter = null;
    if (before.length === 0) {
      this.report();
      return;
    }
    let left = before.length;
    for (const r of before) (r.onReported ??= []).push(() => --left === 0 && this.report());
  }

  private report(): void {
    this.reported = true;
    this.settlement.settled(this);
    const then = this.onReported;
    this.onReported = null;
    if (then) for (const f of then) f();
  }
}
