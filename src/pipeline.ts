import { hostname } from 'node:os';
import { Backpressure } from './backpressure.js';
import { ParkedRequests } from './parked-requests.js';
import { OverloadPolicy } from './overload.js';
import { configHash, CoverageWindow } from './coverage/index.js';
import type { Counts } from './process/index.js';
import { VERSION } from './version.js';
import { Batcher, type Batch } from './batch/index.js';
import type { Config } from './config/index.js';
import type { Logger } from './logger.js';
import { CountsPublisher, PipelineGauges, type Metrics } from './metrics/index.js';
import { Processor, type Output } from './process/index.js';
import { decodeBody, type BadPart, type BodyFormat, type Decoded, type IngestSummary, type IngestTarget } from './receive/index.js';
import { RetryPolicy } from './retry-policy.js';
import type { TableKey } from './schema/index.js';
import type { Sink } from './sink/index.js';
import { MemoryToken, Spool, type DeliveryToken, type SpooledRequest, type SpoolToken } from './spool/index.js';

/** Rows that are not spooled (spool off) travel with this token: nothing to release. */
const IN_MEMORY = new MemoryToken();

/**
 * The runtime: receive → spool → process → batch → sink. A request is answered once it is in the
 * spool (as received; its rows are made again from it on replay), made into encoded rows by the
 * processor in one call, and handed to the batcher with its delivery token; the token is
 * acknowledged when the sink has taken its rows, and the spool lets the request go.
 * While the rows in memory are at their bounds (ADX slow or down), requests are parked in the
 * spool as received and made into rows in their turn; 503 only once the spool is full.
 */
export class Pipeline implements IngestTarget {
  private readonly processor: Processor;
  private readonly batcher: Batcher;
  private readonly spool: Spool | null;
  private readonly counts: CountsPublisher;
  private readonly backpressure: Backpressure;
  private readonly timer: NodeJS.Timeout;
  private draining = false;
  /** recover() has taken the spool: requests can be spooled. */
  private started = false;
  private replaying = false;
  /** Requests in the spool not yet made into rows (null without a spool). */
  private readonly parked: ParkedRequests | null;
  private replayedRows = 0;
  private readonly coverage: CoverageWindow;
  private readonly overload: OverloadPolicy;
  private readonly gauges: PipelineGauges;

  constructor(
    private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly sink: Sink,
    private readonly log: Logger,
  ) {
    this.processor = new Processor(config, (table) => sink.writer(table));
    this.counts = new CountsPublisher(metrics, config.limits.maxMetricLabelValues);
    this.gauges = new PipelineGauges(metrics);
    this.backpressure = new Backpressure(config.batch.resumeBelow);
    this.overload = new OverloadPolicy(config.overload.mode, config.overload.afterSeconds);
    this.spool = config.spool.enabled ? new Spool(config.spool, { fsyncSeconds: (s) => metrics.spoolFsync.observe(s) }) : null;
    this.parked = this.spool
      ? new ParkedRequests({ spool: this.spool, make: (req, token) => this.unpark(this.spool!, req, token), hasRoom: () => !this.overMemoryBounds(1), log })
      : null;
    metrics.spoolLimit.set(config.spool.enabled ? config.spool.maxBytes : 0);
    this.batcher = new Batcher(sink, config.batch, new RetryPolicy(config.retry.minDelayMs, config.retry.maxDelayMs), {
      written: (batch, now) => this.written(batch, now),
      failed: (table, rows, err, retryInMs) => {
        metrics.sinkErrors.inc({ table });
        log.error({ err, table, rows, retryInMs, sink: sink.name }, 'sink write failed; batch kept for retry');
      },
    });
    this.coverage = new CoverageWindow(
      {
        windowSeconds: config.coverage.windowSeconds,
        cluster: config.cluster,
        nodeName: config.coverage.nodeName ?? process.env.NODE_NAME ?? hostname(),
        configHash: configHash(config),
        version: VERSION,
      },
      Date.now(),
    );
    this.timer = setInterval(() => this.tick(Date.now()), 1000);
    this.timer.unref();
  }

  /** A request's counts: into the coverage window always, into the metrics when `publish`. */
  private account(c: Counts, publish: boolean): void {
    this.coverage.add(c);
    if (publish) this.counts.publish(c);
  }

  /** A request was answered 503: counted in the coverage window. */
  refused(): void {
    this.coverage.refused();
  }

  /** Pressure: the rows in memory at their bound or requests parked; it ends under batch.resumeBelow. */
  private notePressure(now: number): void {
    this.overload.note(now, this.overMemoryBounds(1) || this.parkedCount > 0, !this.overMemoryBounds(this.config.batch.resumeBelow) && this.parkedCount === 0);
    const aggregating = this.overload.aggregating(now);
    this.metrics.overloadAggregating.set(aggregating ? 1 : 0);
    if (aggregating) this.coverage.overloadAggregating();
  }

  /**
   * Take the spool, then send first what an earlier run left in it. Requests are answered 503
   * (`replaying`) only while the spool is read; from then on they are parked behind that backlog,
   * so order is kept. Resolves once the backlog is made into rows, with how many.
   */
  async recover(): Promise<number> {
    if (!this.spool) {
      this.started = true;
      return 0;
    }
    const spool = this.spool;
    await spool.lock();
    this.started = true;
    this.replaying = true;
    const parked = this.parked!;
    try {
      for await (const r of spool.replay((file, offset, reason) => {
        this.metrics.spoolTornRecords.inc({ reason });
        this.log.warn({ file, offset, reason }, 'spool segment cut at a torn or corrupt record');
      })) {
        if (r.kind === 'rows') {
          while (this.overMemoryBounds(1)) await new Promise((res) => setTimeout(res, 20));
          // Counted when they were first made: only encoded again.
          const out = this.processor.rows(r.table, r.rows as never[], Date.now());
          // The record goes once every row made from it is delivered, however many batches they span.
          spool.expect(r.token, out.rows);
          this.hand(out, r.token);
          this.replayedRows += out.rows;
          continue;
        }
        // Only where it is: the body is read again when its turn comes.
        parked.add(r.token, r.request.receivedAt, true);
      }
    } finally {
      this.replaying = false;
    }
    const done = parked.backlogMade();
    parked.kick();
    await done;
    this.replayedRows += parked.backlogRows;
    this.metrics.spoolReplayedRows.inc(this.replayedRows);
    if (this.replayedRows > 0) this.log.info({ rows: this.replayedRows }, 'spool replayed: undelivered rows from the previous run are being sent');
    this.publishGauges();
    return this.replayedRows;
  }

  /**
   * Why a request cannot be taken now (answered 503 with Retry-After, so Fluent Bit keeps it and
   * retries soon), or null. With the spool on, only a full spool refuses: rows over their bounds in
   * memory park the request in the spool instead.
   */
  refuseReason(): string | null {
    if (this.draining) return 'draining';
    if (!this.started) return 'starting';
    if (this.replaying) return 'replaying';
    return this.backpressure.reason((f) => this.overBoundsReason(f));
  }

  /**
   * Whether the process can take requests at all: started, spool open, not shutting down. A full
   * pipeline is not unreadiness (it is answered 503 in band): a node-local Service must keep its
   * endpoint so that Fluent Bit sees the 503 and retries on its short schedule.
   */
  notReadyReason(): string | null {
    if (this.draining) return 'draining';
    if (!this.started) return 'starting';
    if (this.spool?.closed) return 'spool_closed';
    return null;
  }

  /** Rows in memory over `fraction` of their bounds. */
  overMemoryBounds(fraction: number): boolean {
    const b = this.config.batch;
    return this.batcher.pendingRows >= b.maxPendingRows * fraction || this.batcher.pendingBytes >= b.maxPendingBytes * fraction;
  }

  /** What refuses requests: the spool's size with a spool, the rows in memory without one. */
  private overBoundsReason(fraction: number): string | null {
    if (this.spool) return this.spool.bytes >= this.config.spool.maxBytes * fraction ? 'spool_full' : null;
    // Aggregating allowed flows, requests are taken up to twice the bound: denied flows still add rows.
    const allowance = this.overload.aggregating(Date.now()) ? 2 : 1;
    return this.overMemoryBounds(fraction * allowance) ? 'queue_full' : null;
  }

  get pendingRows(): number {
    return this.batcher.pendingRows;
  }

  /**
   * `original` is the body as received: with the spool on, it is what is spooled (the rows are
   * made again from it on replay), which costs far less than serializing the rows.
   */
  async ingest(decoded: Decoded, format: BodyFormat, original?: { body: Buffer; encoding: string | undefined }): Promise<IngestSummary> {
    if (this.spool && !original) throw new Error('with the spool on, a request is spooled as received: its body must come with it');
    const spooled = this.spool;
    const receivedAt = Date.now();
    const request = original ? { format, encoding: original.encoding ?? '', receivedAt, body: original.body } : null;
    this.notePressure(receivedAt);
    const aggregateAllowed = this.overload.aggregating(receivedAt);
    // Under overload with aggregate-allowed, requests are made into rows at once (allowed flows
    // folded) rather than parked, up to twice the bounds in memory.
    const park = aggregateAllowed ? this.overMemoryBounds(2) : this.parkedCount > 0 || this.overMemoryBounds(1);
    if (spooled && request && park) {
      return this.park(spooled, { ...request, processed: false }, decoded.records.length);
    }
    const token = spooled ? spooled.issue() : undefined;
    const out = this.processor.request({ records: decoded.records, bad: decoded.bad, receivedAt, madeBefore: false, source: token, aggregateAllowed });
    this.account(out.counts, true);
    const c = out.counts;
    const summary: IngestSummary = { records: c.records, flows: c.flows, events: c.events, skipped: c.skipped, deadLettered: c.deadLettered, deadLetterRows: c.deadLetterRows, deferred: false };
    if (spooled && token && request) await this.commitRequest(spooled, token, { ...request, processed: true }, out);
    else await this.commitRows(out);
    return summary;
  }

  /**
   * Spool a request without making it into rows yet: the rows in memory are at their bounds (ADX is
   * slow or down), or older requests are parked and order must be kept.
   */
  private async park(spool: Spool, request: SpooledRequest, records: number): Promise<IngestSummary> {
    const token = await spool.appendParked(request);
    this.parked!.add(token, request.receivedAt, false);
    this.publishGauges();
    this.parked!.kick();
    return { records, flows: 0, events: 0, skipped: 0, deadLettered: 0, deadLetterRows: 0, deferred: true };
  }

  /** A body that cannot be decoded at all is still kept, as dead letters. */
  async setAside(parts: BadPart[]): Promise<void> {
    const out = this.processor.badBody(parts, Date.now());
    this.account(out.counts, true);
    await this.commitRows(out);
  }

  /**
   * Make a request durable with its token, then hand its rows on. Rejects when the spool cannot
   * take it: nothing of it is handed on, Fluent Bit sends it again.
   */
  private async commitRequest(spool: Spool, token: SpoolToken, request: SpooledRequest, out: Output): Promise<void> {
    if (out.rows === 0 && token.pendingLines === 0) {
      // Nothing to deliver and no line of it waiting: the request need not be kept.
      spool.keepUntilDelivered(out.finished, null);
      return;
    }
    try {
      await spool.appendRequest(token, request, out.rows);
    } catch (err) {
      // The requests whose pieces it finished stay in the spool: on a restart they are replayed.
      this.processor.forgetIdentities(out.identities);
      throw err;
    }
    spool.keepUntilDelivered(out.finished, token);
    this.hand(out, token);
  }

  /** Rows made without a request to spool (a tick, shutdown, an undecodable body): spooled as rows. */
  private async commitRows(out: Output): Promise<void> {
    const spool = this.spool;
    if (!spool) {
      this.hand(out, IN_MEMORY);
      return;
    }
    const tables = out.chunks.map((c) => c.table);
    const tokens = await Promise.all(tables.map((t) => spool.appendRows(t, out.rowObjects?.[t] ?? [])));
    // Pieced lines finished here were expired or drained into dead letters.
    spool.keepUntilDelivered(out.finished, tokens[tables.indexOf('deadLetters')] ?? tokens[0] ?? null);
    out.chunks.forEach(({ table, chunk }, i) => this.batcher.add(table, chunk, tokens[i]!));
    this.publishGauges();
  }

  private hand(out: Output, token: DeliveryToken): void {
    for (const { table, chunk } of out.chunks) this.batcher.add(table, chunk, token);
    this.publishGauges();
  }

  /**
   * The rows of a spooled request, made with the time it was received. One parked before it was
   * ever made into rows is counted in the metrics now, as on arrival; one made into rows by an
   * earlier run is not counted again.
   */
  private async unpark(spool: Spool, req: SpooledRequest, token: SpoolToken): Promise<number> {
    const d = await decodeBody(req.body, req.format as BodyFormat, req.encoding || undefined, this.config.limits, this.config.server.jsonDateKey);
    // Only a configuration change (tighter limits) can refuse a body taken before: keep it whole.
    const { records, bad } = d.ok ? d.decoded : { records: [], bad: [{ reason: d.error.reason, message: `spooled request refused on replay: ${d.error.message}`, raw: req.body.toString('base64') }] };
    const out = this.processor.request({ records, bad, receivedAt: req.receivedAt, madeBefore: req.processed, source: token, aggregateAllowed: this.overload.aggregating(Date.now()) });
    this.account(out.counts, !req.processed);
    spool.expect(token, out.rows);
    spool.keepUntilDelivered(out.finished, token);
    this.hand(out, token);
    return out.rows;
  }

  /** Write every row accepted so far, parked requests included (batches are sealed early); requests are still taken. */
  async flush(): Promise<void> {
    await this.unparked();
    await this.batcher.flush();
  }

  /**
   * Stop taking requests (503), report unfinished partial lines, and deliver what is pending,
   * waiting at most `graceMs`. Returns whether everything was delivered; what was not stays in the
   * spool for the next start.
   */
  async drain(graceMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    this.draining = true;
    const deadline = Date.now() + graceMs;
    const within = async (p: Promise<unknown>): Promise<boolean> => {
      if (graceMs === Number.POSITIVE_INFINITY) return p.then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
      return done;
    };
    // Parked requests first: one may hold the final piece of a line a request before it started.
    // What is still parked when the time is up stays in the spool, and so do the unfinished lines.
    if (!(await within(this.unparked()))) return false;
    const now = Date.now();
    const out = this.processor.drain(now);
    this.account(out.counts, true);
    await this.commitRows(out).catch((err: unknown) => this.log.error({ err }, 'could not spool the last dead letters'));
    const delivered = await within(this.batcher.flush());
    // The last coverage window ends here, with what was delivered in it: the next start begins a
    // new one, and the time between is uncovered.
    await this.commitCoverage(Date.now(), true).catch((err: unknown) => this.log.error({ err }, 'could not spool the last coverage row'));
    return (await within(this.batcher.flush())) && delivered;
  }

  /** Resolves once every parked request is made into rows (they go as batches are written). */
  private async unparked(): Promise<void> {
    await this.parked?.drained();
  }

  /** Parked requests get their turn once the rows in memory are back under batch.resumeBelow. */
  private kickUnpark(): void {
    if (this.parked && this.parkedCount > 0 && !this.overMemoryBounds(this.config.batch.resumeBelow)) this.parked.kick();
  }

  async close(graceMs?: number): Promise<boolean> {
    const delivered = await this.drain(graceMs);
    clearInterval(this.timer);
    await this.parked?.stop();
    // Stop the batcher before the sink, so that a batch still being retried is left pending
    // (it is in the spool) instead of being written anywhere else.
    this.batcher.stop();
    await this.sink.close();
    await this.spool?.close();
    return delivered;
  }

  /** The coverage row of the window that ended (every window, traffic or not), spooled and handed on. */
  private async commitCoverage(now: number, final: boolean): Promise<void> {
    const row = this.coverage.close(now, this.oldestPendingSeconds(now), final);
    if (!row) return;
    this.metrics.coverageWindows.inc();
    await this.commitRows(this.processor.made('coverage', [row], now));
  }

  private tick(now: number): void {
    // While replaying, pieces carry their request's original time: they would all look expired.
    const out = this.processor.tick(now, !this.replaying);
    this.account(out.counts, true);
    if (out.rows > 0 || out.finished.length > 0) {
      this.commitRows(out).catch((err: unknown) => this.log.error({ err }, 'could not spool aggregated rows or expired partial lines'));
    }
    this.notePressure(now);
    if (!this.draining) this.commitCoverage(now, false).catch((err: unknown) => this.log.error({ err }, 'could not spool a coverage row'));
    this.kickUnpark();
    this.publishGauges();
  }

  private publishGauges(): void {
    const s = this.processor.state;
    this.gauges.publish({
      pendingRows: this.batcher.pendingRows,
      pendingBytes: this.batcher.pendingBytes,
      ...s,
      oldestPendingSeconds: this.oldestPendingSeconds(Date.now()),
      parkedRequests: this.parkedCount,
      spool: this.spool ? { bytes: this.spool.bytes, segments: this.spool.segmentCount } : null,
    });
  }

  private get parkedCount(): number {
    return this.parked?.length ?? 0;
  }

  /** Age of the oldest row not yet delivered, parked requests included. */
  private oldestPendingSeconds(now: number): number {
    let oldest = this.batcher.oldestPendingSince();
    const firstParked = this.parked?.oldestReceivedAt;
    if (firstParked !== undefined && (oldest === null || firstParked < oldest)) oldest = firstParked;
    return oldest === null ? 0 : Math.max(0, (now - oldest) / 1000);
  }


  private written(batch: Batch, now: number): void {
    const table: TableKey = batch.table;
    this.metrics.rowsWritten.inc({ table }, batch.rows);
    this.metrics.batchRows.observe({ table }, batch.rows);
    this.coverage.written(batch.rows);
    const lag = this.metrics.eventLag.labels({ table });
    for (const c of batch.chunks) {
      const times = c.times;
      for (let i = 0; i < times.length; i++) {
        const t = times[i]!;
        if (!Number.isNaN(t)) lag.observe(Math.max(0, (now - t) / 1000));
      }
    }
    this.kickUnpark();
    this.publishGauges();
  }
}
