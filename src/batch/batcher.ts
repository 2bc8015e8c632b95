import { TABLE_KEYS, type RowOfTable, type TableKey } from '../schema/index.js';
import type { Sink } from '../sink/index.js';

export interface BatcherOptions {
  maxRows: number;
  maxAgeMs: number;
  /** First and longest wait before writing a failed batch again. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/** Where a group of rows came from (a request, a spool record): its size, for memory accounting. */
export interface RowSource {
  rows: number;
  bytes: number;
}

export interface BatcherHooks<S extends RowSource> {
  /** A batch was taken by the sink; `sources[i]` is where `rows[i]` came from. */
  written<K extends TableKey>(table: K, rows: RowOfTable[K][], sources: S[], now: number): void;
  failed(table: TableKey, rows: number, err: unknown, retryInMs: number): void;
}

interface Sealed<S> {
  rows: unknown[];
  sources: S[];
  openedAt: number;
}

interface Lane<S> {
  open: unknown[];
  openSources: S[];
  openedAt: number;
  ready: Sealed<S>[];
  writing: boolean;
}


/**
 * Gathers rows into batches per table (by row count and age) and writes them to the sink one
 * batch at a time per table, in order. A batch that fails stays at the head of its lane and is
 * written again with backoff: rows are only let go once the sink has taken them. `pendingRows` and
 * `pendingBytes` count everything not yet taken, and are what backpressure is decided on.
 */
export class Batcher<S extends RowSource> {
  private readonly lanes = new Map<TableKey, Lane<S>>();
  private pending = 0;
  private pendingByteCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  private retryDelay: number;
  private stopped = false;

  constructor(
    private readonly sink: Sink,
    private readonly opts: BatcherOptions,
    private readonly hooks: BatcherHooks<S>,
  ) {
    for (const k of TABLE_KEYS) this.lanes.set(k, { open: [], openSources: [], openedAt: 0, ready: [], writing: false });
    this.retryDelay = opts.retryMinMs ?? 500;
    this.timer = setInterval(() => this.flushAged(Date.now()), Math.max(5, Math.min(250, opts.maxAgeMs / 2)));
    this.timer.unref();
  }

  get pendingRows(): number {
    return this.pending;
  }

  /** Bytes of the rows not yet taken, as their sources measured them (spooled or received size). */
  get pendingBytes(): number {
    return this.pendingByteCount;
  }

  /** When the oldest row not yet taken by the sink was added, or null when there is none. */
  oldestPendingSince(): number | null {
    let oldest: number | null = null;
    for (const lane of this.lanes.values()) {
      const t = lane.ready.length > 0 ? lane.ready[0]!.openedAt : lane.open.length > 0 ? lane.openedAt : null;
      if (t !== null && (oldest === null || t < oldest)) oldest = t;
    }
    return oldest;
  }

  add<K extends TableKey>(table: K, rows: readonly RowOfTable[K][], source: S): void {
    const lane = this.lanes.get(table)!;
    for (const row of rows) {
      if (lane.open.length === 0) lane.openedAt = Date.now();
      lane.open.push(row);
      lane.openSources.push(source);
      if (lane.open.length >= this.opts.maxRows) this.seal(table, lane);
    }
    this.pending += rows.length;
    // One source (a spooled request) may feed several tables: each add brings its rows' share.
    this.pendingByteCount += source.rows > 0 ? (source.bytes * rows.length) / source.rows : 0;
  }

  /** Seal every open batch now and resolve once everything pending has been written. */
  flush(): Promise<void> {
    for (const [k, lane] of this.lanes) if (lane.open.length > 0) this.seal(k, lane);
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop writing: batches not yet taken stay pending (in the spool, when there is one). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private flushAged(now: number): void {
    for (const [k, lane] of this.lanes) {
      if (lane.open.length > 0 && now - lane.openedAt >= this.opts.maxAgeMs) this.seal(k, lane);
    }
  }

  private seal(table: TableKey, lane: Lane<S>): void {
    lane.ready.push({ rows: lane.open, sources: lane.openSources, openedAt: lane.openedAt });
    lane.open = [];
    lane.openSources = [];
    if (!lane.writing) void this.drain(table, lane);
  }

  private async drain(table: TableKey, lane: Lane<S>): Promise<void> {
    lane.writing = true;
    while (lane.ready.length > 0 && !this.stopped) {
      const { rows: batch, sources } = lane.ready[0]!;
      try {
        await this.sink.write(table, batch as RowOfTable[typeof table][]);
      } catch (err) {
        if (this.stopped) break;
        const wait = this.retryDelay;
        this.retryDelay = Math.min(this.retryDelay * 2, this.opts.retryMaxMs ?? 30_000);
        this.hooks.failed(table, batch.length, err, wait);
        await new Promise((r) => setTimeout(r, wait * (0.5 + Math.random() / 2)));
        continue;
      }
      this.retryDelay = this.opts.retryMinMs ?? 500;
      lane.ready.shift();
      this.pending -= batch.length;
      for (const src of sources) this.pendingByteCount -= src.bytes / src.rows;
      if (this.pending === 0) this.pendingByteCount = 0; // no drift from the per-row division
      this.hooks.written(table, batch as RowOfTable[typeof table][], sources, Date.now());
    }
    lane.writing = false;
    if (this.pending === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
