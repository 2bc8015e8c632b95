import type { RetryPolicy } from '../retry-policy.js';
import { TABLE_KEYS, type TableKey } from '../schema/index.js';
import type { Sink } from '../sink/index.js';
import type { DeliveryToken } from '../spool/index.js';
import { batchOf, sliceChunk, type Batch, type EncodedChunk } from './encoded.js';

export interface BatcherOptions {
  maxRows: number;
  maxAgeMs: number;
  /** Batches of one table being written at once. */
  maxInFlight: number;
}

export interface BatcherHooks {
  /** A batch was taken by the sink (its tokens are already acknowledged). */
  written(batch: Batch, now: number): void;
  failed(table: TableKey, rows: number, err: unknown, retryInMs: number): void;
}

/** The rows of one batch, with the tokens of the requests they came from (a run per request). */
interface Gathering {
  chunks: EncodedChunk[];
  tokens: DeliveryToken[];
  counts: number[];
  rows: number;
  bytes: number;
  openedAt: number;
}

interface Lane {
  open: Gathering | null;
  /** Sealed, not yet being written, oldest first. */
  ready: Gathering[];
  /** Being written (and retried until the sink takes them). */
  writing: Set<Gathering>;
}

/**
 * Gathers encoded rows into batches per table (by rows, bytes and age) and writes them to the sink,
 * up to `maxInFlight` batches of a table at once, oldest first (one at a time, the wait for each
 * acknowledgement, not CPU, bounded throughput). A batch that fails is written again (the one retry
 * policy) until the sink takes it; once it has, the tokens it carries are
 * acknowledged with their counts. `pendingRows` and `pendingBytes` count everything not yet taken,
 * and are what backpressure is decided on.
 */
export class Batcher {
  private readonly lanes = new Map<TableKey, Lane>();
  private pending = 0;
  private pendingByteCount = 0;
  private timer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly sink: Sink,
    private readonly opts: BatcherOptions,
    private readonly retry: RetryPolicy,
    private readonly hooks: BatcherHooks,
  ) {
    for (const k of TABLE_KEYS) this.lanes.set(k, { open: null, ready: [], writing: new Set() });
    this.timer = setInterval(() => this.flushAged(Date.now()), Math.max(5, Math.min(250, opts.maxAgeMs / 2)));
    this.timer.unref();
  }

  get pendingRows(): number {
    return this.pending;
  }

  /** Encoded bytes of the rows not yet taken. */
  get pendingBytes(): number {
    return this.pendingByteCount;
  }

  /** When the oldest row not yet taken by the sink was added, or null when there is none. */
  oldestPendingSince(): number | null {
    let oldest: number | null = null;
    for (const lane of this.lanes.values()) {
      for (const g of lane.writing) if (oldest === null || g.openedAt < oldest) oldest = g.openedAt;
      const g = lane.ready[0] ?? lane.open;
      if (g && (oldest === null || g.openedAt < oldest)) oldest = g.openedAt;
    }
    return oldest;
  }

  /** Rows of one table from one request, to be acknowledged to `token` once the sink has them. */
  add(table: TableKey, chunk: EncodedChunk, token: DeliveryToken): void {
    const lane = this.lanes.get(table)!;
    this.pending += chunk.rows;
    this.pendingByteCount += chunk.data.length;
    const maxBytes = this.sink.maxBatchBytes;
    let from = 0;
    while (from < chunk.rows) {
      const g = (lane.open ??= { chunks: [], tokens: [], counts: [], rows: 0, bytes: 0, openedAt: Date.now() });
      let to = Math.min(chunk.rows, from + this.opts.maxRows - g.rows);
      // Cut by bytes too when the chunk's rows are evenly sized enough to tell where.
      if (g.bytes + (chunk.data.length * (to - from)) / chunk.rows > maxBytes && to - from > 1) {
        const perRow = chunk.data.length / chunk.rows;
        to = Math.max(from + 1, Math.min(to, from + Math.floor((maxBytes - g.bytes) / perRow)));
      }
      const part = sliceChunk(chunk, from, to);
      g.chunks.push(part);
      g.rows += part.rows;
      g.bytes += part.data.length;
      const last = g.tokens.length - 1;
      if (last >= 0 && g.tokens[last] === token) g.counts[last]! += part.rows;
      else {
        g.tokens.push(token);
        g.counts.push(part.rows);
      }
      from = to;
      if (g.rows >= this.opts.maxRows || g.bytes >= maxBytes) this.seal(table, lane);
    }
  }

  /** Seal every open batch now and resolve once everything pending has been written. */
  flush(): Promise<void> {
    for (const [k, lane] of this.lanes) if (lane.open) this.seal(k, lane);
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
    for (let failures = 0; ; ) {
      try {
        await this.sink.write(batch);
        break;
      } catch (err) {
        // Stopped: the batch stays pending (in the spool, when there is one).
        if (this.stopped) return;
        failures++;
        this.hooks.failed(table, g.rows, err, this.retry.delayMs(failures));
        await this.retry.wait(failures);
        if (this.stopped) return;
      }
    }
    lane.writing.delete(g);
    this.pending -= g.rows;
    this.pendingByteCount -= g.bytes;
    for (let i = 0; i < g.tokens.length; i++) g.tokens[i]!.ack(g.counts[i]!);
    this.hooks.written(batch, Date.now());
    this.start(table, lane);
    if (this.pending === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
