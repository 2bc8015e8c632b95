import { TABLE_KEYS, type TableKey } from '../schema/index.js';
import { batchOf, sliceChunk, type Batch, type EncodedChunk } from './encoded.js';

/** Whoever is told that rows it handed on were delivered: the receipt of the record they came from. */
export interface DeliveryReceipt {
  delivered(rows: number): void;
}

/** Where batches go: resolves once the batch is durably taken, rejects only when delivery stopped (shutdown). */
export interface Delivery {
  /** Largest batch, in encoded bytes, worth handing over at once. */
  readonly maxBatchBytes: number;
  /** Resolves once every row is either acknowledged or set aside (how many were set aside). */
  deliver(batch: Batch): Promise<{ setAside: number }>;
}

export interface BatcherOptions {
  maxRows: number;
  maxAgeMs: number;
  /** Batches of one table being written at once. */
  maxInFlight: number;
}

/** The rows of one batch: each slice with the receipt of the record it came from. */
interface Gathering {
  chunks: EncodedChunk[];
  receipts: DeliveryReceipt[];
  rows: number;
  bytes: number;
  openedAt: number;
}

interface Lane {
  open: Gathering | null;
  /** Sealed, not yet being written, oldest first. */
  ready: Gathering[];
  /** Being delivered. */
  writing: Set<Gathering>;
}

/**
 * Gathers encoded rows into batches per table (by rows, bytes and age) and hands them to delivery,
 * up to `maxInFlight` batches of a table at once, oldest first. Delivery retries what fails (the
 * one retry chain); once a batch is delivered, each slice in it is handed back to its receipt.
 * `pendingRows` and `pendingBytes` count everything not yet delivered: what memory bounds and
 * backpressure are decided on.
 */
export class Batcher {
  private readonly lanes = new Map<TableKey, Lane>();
  private pending = 0;
  private pendingByteCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly delivery: Delivery,
    private readonly opts: BatcherOptions,
    /** A batch was delivered (its receipts are already told). */
    /** A batch left: `acknowledged` of its rows taken by the destination (the rest set aside as dead letters). */
    private readonly written: (batch: Batch, acknowledged: number, now: number) => void,
  ) {
    for (const k of TABLE_KEYS) this.lanes.set(k, { open: null, ready: [], writing: new Set() });
    this.timer = setInterval(() => this.flushAged(Date.now()), Math.max(5, Math.min(250, opts.maxAgeMs / 2)));
    this.timer.unref();
  }

  get pendingRows(): number {
    return this.pending;
  }

  /** Encoded bytes of the rows not yet delivered. */
  get pendingBytes(): number {
    return this.pendingByteCount;
  }

  /** When the oldest row not yet delivered was added, or null when there is none. */
  oldestPendingSince(): number | null {
    let oldest: number | null = null;
    for (const lane of this.lanes.values()) {
      for (const g of lane.writing) if (oldest === null || g.openedAt < oldest) oldest = g.openedAt;
      const g = lane.ready[0] ?? lane.open;
      if (g && (oldest === null || g.openedAt < oldest)) oldest = g.openedAt;
    }
    return oldest;
  }

  /** Rows of one table, to be handed back to `receipt` (which expects them) once delivered. */
  add(table: TableKey, chunk: EncodedChunk, receipt: DeliveryReceipt): void {
    const lane = this.lanes.get(table)!;
    this.pending += chunk.rows;
    this.pendingByteCount += chunk.data.length;
    const maxBytes = this.delivery.maxBatchBytes;
    let from = 0;
    while (from < chunk.rows) {
      const g = (lane.open ??= { chunks: [], receipts: [], rows: 0, bytes: 0, openedAt: Date.now() });
      let to = Math.min(chunk.rows, from + this.opts.maxRows - g.rows);
      // Cut by bytes too when the chunk's rows are evenly sized enough to tell where.
      if (g.bytes + (chunk.data.length * (to - from)) / chunk.rows > maxBytes && to - from > 1) {
        const perRow = chunk.data.length / chunk.rows;
        to = Math.max(from + 1, Math.min(to, from + Math.floor((maxBytes - g.bytes) / perRow)));
      }
      const part = sliceChunk(chunk, from, to);
      g.chunks.push(part);
      g.receipts.push(receipt);
      g.rows += part.rows;
      g.bytes += part.data.length;
      from = to;
      if (g.rows >= this.opts.maxRows || g.bytes >= maxBytes) this.seal(table, lane);
    }
  }

  /** Seal every open batch now and resolve once everything pending has been delivered. */
  flush(): Promise<void> {
    for (const [k, lane] of this.lanes) if (lane.open) this.seal(k, lane);
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop: batches not yet delivered stay pending (in the spool, when there is one). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private flushAged(now: number): void {
    for (const [k, lane] of this.lanes) if (lane.open && now - lane.open.openedAt >= this.opts.maxAgeMs) this.seal(k, lane);
  }

  private seal(table: TableKey, lane: Lane): void {
    if (!lane.open) return;
    lane.ready.push(lane.open);
    lane.open = null;
    this.start(table, lane);
  }

  private start(table: TableKey, lane: Lane): void {
    while (!this.stopped && lane.ready.length > 0 && lane.writing.size < this.opts.maxInFlight) {
      const g = lane.ready.shift()!;
      lane.writing.add(g);
      void this.write(table, lane, g);
    }
  }

  private async write(table: TableKey, lane: Lane, g: Gathering): Promise<void> {
    const batch = batchOf(table, g.chunks);
    let setAside: number;
    try {
      ({ setAside } = await this.delivery.deliver(batch));
    } catch {
      // Delivery stopped (shutdown): the batch stays pending, in the spool.
      return;
    }
    lane.writing.delete(g);
    this.pending -= g.rows;
    this.pendingByteCount -= g.bytes;
    for (let i = 0; i < g.chunks.length; i++) g.receipts[i]!.delivered(g.chunks[i]!.rows);
    this.written(batch, batch.rows - setAside, Date.now());
    this.start(table, lane);
    if (this.pending === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
