import { hostname } from 'node:os';
import { Backpressure } from './backpressure.js';
import { Batcher, type Batch } from './batch/index.js';
import type { Config } from './config/index.js';
import type { RunInfo } from './coverage/index.js';
import type { Logger } from './logger.js';
import { CountsPublisher, PipelineGauges, type Metrics } from './metrics/index.js';
import { OverloadPolicy } from './overload.js';
import { Processor, type Counts } from './process/index.js';
import type { IngestSummary, IngestTarget, ReceivedRequest } from './receive/index.js';
import { admit } from './runtime/admission.js';
import { start, type Core } from './runtime/lifecycle.js';
import { deliveryFor, type RetryChain, type Sink } from './sink/index.js';

export interface PipelineOptions {
  /** `replay` writes its coverage rows as a run of its own kind, never taken for the node's. */
  runKind?: RunInfo['kind'];
  /** The spool's lock was lost: this process must stop at once (the service exits non-zero). */
  fatal?: (err: Error) => void;
  /**
   * A turn to decode a request read back from the spool, `bytes` inflated, shared with the
   * receiver's (released once its records are made into rows). None: decoded at once.
   */
  decodeTurn?: (bytes: number) => Promise<() => void>;
}

const NO_TURN_NEEDED = () => Promise.resolve(() => undefined);

/**
 * The runtime, wired: receive → admission → spool → record queue → process → batch → retry chain →
 * sink, with checkpoints making counting durable. Admission (runtime/admission.ts), the start and
 * the queue (runtime/lifecycle.ts, runtime/record-queue.ts), checkpoints (runtime/checkpoints.ts)
 * and the hand-off of rows to receipts (runtime/hand-off.ts) each live in a module of their own;
 * this class holds them together, answers the receiver, ticks, and stops.
 */
export class Pipeline implements IngestTarget {
  private readonly processor: Processor;
  private readonly delivery: RetryChain;
  private readonly batcher: Batcher;
  private readonly counts: CountsPublisher;
  private readonly gauges: PipelineGauges;
  private readonly backpressure: Backpressure;
  private readonly overload: OverloadPolicy;
  private readonly nodeName: string;
  private core: Core | null = null;
  private timer: NodeJS.Timeout | null = null;
  private draining = false;
  private lost: Error | null = null;
  private roomWaiters: (() => void)[] = [];
  /** Requests between the receiver and the record queue (being spooled): a stop waits for them. */
  private admitting = 0;
  private admittedWaiters: (() => void)[] = [];

  constructor(
    private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly sink: Sink,
    private readonly log: Logger,
    private readonly opts: PipelineOptions = {},
  ) {
    this.processor = new Processor(config, (table) => sink.writer(table));
    this.counts = new CountsPublisher(metrics, config.limits.maxMetricLabelValues);
    this.gauges = new PipelineGauges(metrics);
    this.backpressure = new Backpressure(config.batch.resumeBelow);
    this.overload = new OverloadPolicy(config.overload.mode, config.overload.afterSeconds);
    this.nodeName = config.coverage.nodeName ?? process.env.NODE_NAME ?? hostname();
    this.delivery = deliveryFor(sink, config, metrics, log);
    this.batcher = new Batcher(this.delivery, config.batch, (batch, acknowledged, now) => this.written(batch, acknowledged, now));
    metrics.spoolLimit.set(config.spool.enabled ? config.spool.maxBytes : 0);
  }

  /**
   * Take the spool, begin the run, and queue what an earlier run left (made into rows first, as
   * room allows, while new requests wait behind it). Resolves with how many records were left.
   */
  async recover(): Promise<number> {
    const core = await start({
      config: this.config,
      processor: this.processor,
      batcher: this.batcher,
      log: this.log,
      runKind: this.opts.runKind ?? 'serve',
      nodeName: this.nodeName,
      fsyncSeconds: (s) => this.metrics.spoolFsync.observe(s),
      tornRecord: (reason) => this.metrics.spoolTornRecords.inc({ reason }),
      publish: (c) => this.counts.publish(c),
      coverageWindowClosed: () => this.metrics.coverageWindows.inc(),
      replayedRows: (rows) => this.metrics.spoolReplayedRows.inc(rows),
      hasRoom: () => this.hasRoom(),
      roomFreed: () => this.roomFreed(),
      decodeTurn: this.opts.decodeTurn ?? NO_TURN_NEEDED,
      oldestPendingSeconds: (now) => this.oldestPendingSeconds(now),
    });
    this.core = core;
    void core.spool?.lost.then((err) => this.lockLost(err));
    this.timer = setInterval(() => this.tick(Date.now()), 1000);
    this.timer.unref();
    if (core.recovered > 0) this.log.info({ records: core.recovered }, 'spool replayed: what the previous run left is made into rows and sent first');
    this.publishGauges();
    return core.recovered;
  }

  /**
   * Why a request cannot be taken now (answered 503 with Retry-After, so Fluent Bit keeps it and
   * retries soon), or null. With the spool on, only a full spool refuses: rows over their bounds
   * in memory park requests in the spool instead.
   */
  refuseReason(): string | null {
    if (this.draining) return 'draining';
    if (this.lost) return 'spool_closed';
    if (!this.core) return 'starting';
    const spool = this.core.spool;
    const queue = this.core.queue;
    return this.backpressure.reason((f) => {
      if (spool) return spool.bytes >= this.config.spool.maxBytes * f ? 'spool_full' : null;
      // No spool: nothing can wait. Aggregating allowed flows, memory is taken up to twice the bound.
      const allowance = this.overload.aggregating(Date.now()) ? 2 : 1;
      return this.overMemoryBounds(f * allowance) || queue.length > 0 ? 'queue_full' : null;
    });
  }

  /**
   * Whether the process can take requests at all: started, spool held, not shutting down. A full
   * pipeline is not unreadiness (it is answered 503 in band): a node-local Service must keep its
   * endpoint so that Fluent Bit sees the 503 and retries on its short schedule.
   */
  notReadyReason(): string | null {
    if (this.draining) return 'draining';
    if (this.lost) return 'spool_lock_lost';
    if (!this.core) return 'starting';
    return null;
  }

  ingest(request: ReceivedRequest): Promise<IngestSummary> {
    const core = this.core;
    if (!core) return Promise.reject(new Error('the pipeline has not started'));
    this.notePressure(Date.now());
    this.admitting++;
    const answered = admit(
      {
        config: this.config,
        spool: core.spool,
        queue: core.queue,
        processor: this.processor,
        hasRoom: () => this.hasRoom(),
        aggregating: (now) => this.overload.aggregating(now),
        countJunk: (c: Counts) => {
          core.ledger.liveWindow.add(c);
          this.counts.publish(c);
        },
      },
      request,
    );
    return answered.finally(() => {
      if (--this.admitting === 0) for (const w of this.admittedWaiters.splice(0)) w();
      this.publishGauges();
    });
  }

  /** A request was answered 503: counted in the live coverage window; bytes of the export files it held may come later. */
  refused(): void {
    this.core?.ledger.refused();
    this.core?.upstream.refused(Date.now());
  }

  get pendingRows(): number {
    return this.batcher.pendingRows;
  }

  /** Room to make another slice into rows: memory within its bounds, and no checkpoint waiting for the disk. */
  private hasRoom(): boolean {
    return !this.overMemoryBounds(1) && !this.core?.checkpoints.carrying;
  }

  /** Rows in memory (in batches, or waiting for the checkpoint that counts them) over `fraction` of their bounds. */
  overMemoryBounds(fraction: number): boolean {
    const b = this.config.batch;
    const waiting = this.core?.checkpoints.waitingFor ?? { rows: 0, bytes: 0 };
    return this.batcher.pendingRows + waiting.rows >= b.maxPendingRows * fraction || this.batcher.pendingBytes + waiting.bytes >= b.maxPendingBytes * fraction;
  }

  /**
   * Make every record queued so far into rows, deliver everything (batches sealed early), and write
   * a checkpoint (aggregates taken now), so that every record delivered leaves the spool; requests
   * are still taken meanwhile.
   */
  async flush(): Promise<void> {
    const core = this.core;
    await core?.queue.drained();
    await this.batcher.flush();
    if (!core || this.lost || this.draining) return;
    await core.checkpoints.take(Date.now()).catch(() => undefined);
    await this.batcher.flush();
    await core.spool?.idle();
  }

  /**
   * Stop taking requests (503), make what is queued into rows, write the last checkpoint (the last
   * coverage window closes when everything is counted; lines waiting for pieces stay in the spool for
   * the next start) and deliver what is pending, waiting at most `graceMs`. Returns whether everything was delivered;
   * what was not stays in the spool for the next start.
   */
  async close(graceMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    this.draining = true;
    const deadline = Date.now() + graceMs;
    const within = async (p: Promise<unknown>): Promise<boolean> => {
      if (graceMs === Number.POSITIVE_INFINITY) return p.then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      return done;
    };
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const core = this.core;
    let delivered = true;
    let stoppedCleanly = false;
    if (core && !this.lost) {
      // Requests being spooled when the stop began are queued first, so that the last checkpoint counts them.
      if (this.admitting > 0) await within(new Promise<void>((r) => this.admittedWaiters.push(r)));
      const counted = await within(core.queue.drained());
      await core.queue.stop();
      stoppedCleanly = await within(
        core.checkpoints.take(Date.now(), counted && core.queue.length === 0).then(
          () => true,
          (err: unknown) => this.log.error({ err }, 'could not write the last checkpoint'),
        ),
      );
      delivered = counted && (await within(this.batcher.flush()));
      // Nothing left for the next start (no line waits for pieces): the last checkpoint may go too.
      if (delivered && stoppedCleanly && this.processor.state.partialLines === 0) core.checkpoints.releaseLatest();
    }
    // Stop delivery before the sink, so that a batch still being retried is left pending (it is in
    // the spool) instead of being written anywhere else.
    this.delivery.stop();
    this.batcher.stop();
    await this.sink.close();
    await core?.spool?.close(stoppedCleanly ? { runId: core.run.runId, stoppedAt: Date.now() } : undefined);
    return delivered;
  }

  /** The spool's lock is gone: another process may own the directory. Take nothing more, and stop. */
  private lockLost(err: Error): void {
    if (this.lost || this.draining) return;
    this.lost = err;
    this.log.error({ err }, 'the spool lock was lost (another process took the directory, or this one was frozen past its stale time): stopping');
    this.opts.fatal?.(err);
  }

  private notePressure(now: number): void {
    const parked = this.core?.queue.waitingRequests ?? 0;
    this.overload.note(now, this.overMemoryBounds(1) || parked > 0, !this.overMemoryBounds(this.config.batch.resumeBelow) && parked === 0);
    const aggregating = this.overload.aggregating(now);
    this.metrics.overloadAggregating.set(aggregating ? 1 : 0);
    if (aggregating) this.core?.ledger.overloadAggregating();
  }

  private tick(now: number): void {
    this.notePressure(now);
    const core = this.core;
    if (!core) return;
    if (core.checkpoints.due(now)) core.checkpoints.take(now).catch(() => undefined);
    if (!this.overMemoryBounds(1)) this.freeRoom();
    this.publishGauges();
  }

  private roomFreed(): Promise<void> {
    return new Promise((r) => {
      const timer = setTimeout(r, 1000);
      this.roomWaiters.push(() => {
        clearTimeout(timer);
        r();
      });
    });
  }

  private freeRoom(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
    this.core?.queue.kick();
  }

  private written(batch: Batch, acknowledged: number, now: number): void {
    const table = batch.table;
    this.metrics.rowsWritten.inc({ table }, acknowledged);
    this.metrics.batchRows.observe({ table }, batch.rows);
    this.core?.ledger.written(acknowledged);
    const lag = this.metrics.eventLag.labels({ table });
    // The lag of rows that reached ADX (a batch set aside in parts is counted whole: parts carry no times).
    if (acknowledged > 0) for (const c of batch.chunks) {
      const times = c.times;
      for (let i = 0; i < times.length; i++) {
        const t = times[i]!;
        if (!Number.isNaN(t)) lag.observe(Math.max(0, (now - t) / 1000));
      }
    }
    if (!this.overMemoryBounds(1)) this.freeRoom();
    this.publishGauges();
  }

  private publishGauges(): void {
    const spool = this.core?.spool;
    this.gauges.publish({
      pendingRows: this.batcher.pendingRows,
      pendingBytes: this.batcher.pendingBytes,
      ...this.processor.state,
      oldestPendingSeconds: this.oldestPendingSeconds(Date.now()),
      parkedRequests: this.core?.queue.waitingRequests ?? 0,
      spool: spool ? { bytes: spool.bytes, segments: spool.segmentCount } : null,
    });
  }

  /** Age of the oldest row not yet delivered, waiting requests included. */
  private oldestPendingSeconds(now: number): number {
    let oldest = this.batcher.oldestPendingSince();
    const waiting = this.core?.queue.oldestReceivedAt;
    if (waiting !== undefined && (oldest === null || waiting < oldest)) oldest = waiting;
    return oldest === null ? 0 : Math.max(0, (now - oldest) / 1000);
  }
}
