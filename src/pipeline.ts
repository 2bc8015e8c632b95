import type { FastifyBaseLogger } from 'fastify';
import { Batcher, type RowSource } from './batch/index.js';
import type { Config } from './config/index.js';
import { Enricher, type Outcome } from './enrich/index.js';
import { Extractor, type DeadLetter, type ExporterRecord, type ExtractOutput, type PieceSource, type SkipReason } from './extract/index.js';
import { LabelCap, type Metrics } from './metrics/index.js';
import { DeadLetterRows, normalizeEvent, normalizeFlow, tooDeepColumn } from './normalize/index.js';
import { boundedJson } from './json-values.js';
import { decodeBody, type BadPart, type BodyFormat, type Decoded, type IngestSummary, type IngestTarget } from './receive/index.js';
import { SCHEMA_VERSION, TABLE_KEYS as TABLES, type DeadLetterRow, type EventRow, type FlowRow, type IdentityRow, type RowOfTable, type TableKey } from './schema/index.js';
import type { Sink } from './sink/index.js';
import { RequestHold, Spool, type SpooledRequest, type SpoolRecord } from './spool/index.js';

type Logger = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;

/** Rows of one request (or one timer tick), by table, on their way to the spool and the batcher. */
interface Staged {
  flows: FlowRow[];
  events: EventRow[];
  deadLetters: DeadLetterRow[];
  identities: IdentityRow[];
}

/** A request's rows when there is no spool: only their size is tracked. */
type MemorySource = RowSource & { record?: undefined };
type Source = SpoolRecord | MemorySource;

/**
 * The stages wired in order: decoded records → extract → normalize → spool → batch → sink. It is
 * the receiver's IngestTarget and the extractor's output. A request is answered only once it is in
 * the spool (when enabled: the request as received, from which its rows are made again on replay);
 * it leaves the spool only once the sink acknowledged all its rows.
 * Backpressure has hysteresis: above a bound the receiver answers 503 until everything is back
 * under `batch.resumeBelow` of its bound.
 */
export class Pipeline implements IngestTarget, ExtractOutput {
  private readonly extractor: Extractor;
  private readonly enricher: Enricher;
  private outcomes = new Map<Outcome, number>();
  private readonly batcher: Batcher<Source>;
  private readonly spool: Spool | null;
  private readonly timer: NodeJS.Timeout;
  private draining = false;
  /** Set once the batches are stopped: nothing more is made into rows. */
  private closing = false;
  /** recover() has taken the spool: requests can be spooled. */
  private started = false;
  private replaying = false;
  private refusing: string | null = null;
  /**
   * Requests in the spool not yet made into rows, oldest first: what an earlier run left, and what
   * arrived while the rows in memory were at their bounds (an ADX outage). Only where they are is
   * kept in memory; each is read back from the spool in its turn.
   */
  private parked: { record: SpoolRecord; receivedAt: number; backlog: boolean }[] = [];
  private unparking: Promise<void> | null = null;
  private backlogLeft = 0;
  private backlogDone: (() => void) | null = null;
  private replayedRows = 0;
  private staged: Staged = emptyStaged();
  private counts = { flows: 0, events: 0, skipped: 0, dead: 0 };
  /** The time of the request being extracted, read by record(). */
  private now = Date.now();
  /**
   * Set while replaying spooled requests (see remake): no aggregation, and nothing counted again in
   * the metrics (it was counted when the request first arrived).
   */
  private remaking = false;
  /** Sources of the pieced lines finished since the last commit (see RequestHold). */
  private finished: PieceSource[] = [];
  private skips = new Map<SkipReason, number>();
  private readonly deadRows: DeadLetterRows;
  private readonly lostNodeLabel: LabelCap;
  private readonly lostSourceLabel: LabelCap;
  /** State evictions already published, to publish the growth of each counter. */
  private evictionsSeen = { cri_partial_lines: 0, identities: 0, aggregate_keys: 0 };

  constructor(
    private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly sink: Sink,
    private readonly log: Logger,
  ) {
    this.extractor = new Extractor({ ...config.extract, maxLineBytes: config.limits.maxLineBytes }, this);
    this.deadRows = new DeadLetterRows({
      perRequest: config.limits.maxDeadLetterRowsPerRequest,
      perMinute: config.limits.maxDeadLetterRowsPerMinute,
      maxRawBytes: config.extract.maxDeadLetterRawBytes,
    });
    const capped = () => metrics.labelValuesCapped.inc({ metric: 'hubble_adx_hubble_lost_events_total' });
    this.lostNodeLabel = new LabelCap(config.limits.maxMetricLabelValues, capped);
    this.lostSourceLabel = new LabelCap(config.limits.maxMetricLabelValues, capped);
    this.enricher = new Enricher({
      cluster: config.cluster,
      enrich: config.enrich,
      filters: config.filters,
      sampling: config.sampling,
      // loadConfig has checked that every key is a flows column.
      aggregation: { ...config.aggregation, key: config.aggregation.key as (keyof FlowRow)[] },
    });
    this.spool = config.spool.enabled
      ? new Spool(config.spool, { fsyncSeconds: (s) => metrics.spoolFsync.observe(s) })
      : null;
    metrics.spoolLimit.set(config.spool.enabled ? config.spool.maxBytes : 0);
    this.batcher = new Batcher<Source>(sink, config.batch, {
      written: (table, rows, sources, now) => this.written(table, rows, sources, now),
      failed: (table, rows, err, retryInMs) => {
        metrics.sinkErrors.inc({ table });
        log.error({ err, table, rows, retryInMs, sink: sink.name }, 'sink write failed; batch kept for retry');
      },
    });
    this.timer = setInterval(() => this.tick(Date.now()), 1000);
    this.timer.unref();
  }

  /**
   * Take the spool, then send first what an earlier run left in it. Requests are answered 503
   * (`replaying`) only while the spool is read; from then on they are parked behind that backlog
   * (spooled, made into rows in their turn), so order is kept. Resolves once the backlog is made
   * into rows, with how many.
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
    let backlog = 0;
    try {
      for await (const r of spool.replay((file, offset, reason) => {
        this.metrics.spoolTornRecords.inc({ reason });
        this.log.warn({ file, offset, reason }, 'spool segment cut at a torn or corrupt record');
      })) {
        if (r.kind === 'rows') {
          while (this.overMemoryBounds(1)) await new Promise((res) => setTimeout(res, 20));
          this.batcher.add(r.table, r.rows as RowOfTable[typeof r.table][], r.record);
          this.replayedRows += r.rows.length;
          continue;
        }
        // Only where it is: the body is read again when its turn comes.
        this.parked.push({ record: r.record, receivedAt: r.request.receivedAt, backlog: true });
        backlog++;
      }
    } finally {
      this.replaying = false;
    }
    const done = backlog === 0 ? Promise.resolve() : new Promise<void>((res) => (this.backlogDone = res));
    this.backlogLeft = backlog;
    this.kickUnpark();
    await done;
    this.metrics.spoolReplayedRows.inc(this.replayedRows);
    if (this.replayedRows > 0) this.log.info({ rows: this.replayedRows }, 'spool replayed: undelivered rows from the previous run are being sent');
    this.publishGauges();
    return this.replayedRows;
  }

  /**
   * Make the parked requests into rows, oldest first, while the rows in memory are under their
   * bounds; called again whenever batches are written.
   */
  private kickUnpark(): void {
    if (this.unparking || this.parked.length === 0 || this.closing || !this.spool) return;
    const spool = this.spool;
    this.unparking = (async () => {
      while (this.parked.length > 0 && !this.closing && !this.overMemoryBounds(1)) {
        const p = this.parked[0]!;
        let req: SpooledRequest | null;
        try {
          req = await spool.readRequest(p.record);
        } catch (err) {
          this.log.error({ err, offset: p.record.offset }, 'could not read a parked request back from the spool; trying again');
          await new Promise((res) => setTimeout(res, 1000));
          continue;
        }
        this.parked.shift();
        let rows = 0;
        if (!req) {
          this.log.error({ offset: p.record.offset }, 'a parked spool record is not a request this version can read; it is let go');
          spool.expect(p.record, 0, 0);
        } else {
          rows = await this.makeParked(req, p.record);
        }
        if (p.backlog) {
          this.replayedRows += rows;
          if (--this.backlogLeft === 0) this.backlogDone?.();
        }
        this.publishGauges();
      }
    })().finally(() => {
      this.unparking = null;
      // What was parked while the loop ended gets its own turn.
      if (this.parked.length > 0 && !this.overMemoryBounds(this.config.batch.resumeBelow)) this.kickUnpark();
    });
  }

  /** Rows of a parked request, handed to the batcher against its spool record; returns how many. */
  private async makeParked(req: SpooledRequest, record: SpoolRecord): Promise<number> {
    const hold = new RequestHold();
    hold.settle(record);
    const { staged, inflatedBytes } = await this.remake(req, hold);
    const total = countOf(staged);
    this.spool!.expect(record, total + hold.pendingLines, inflatedBytes);
    for (const t of TABLES) if (staged[t].length > 0) this.batcher.add(t, staged[t] as RowOfTable[typeof t][], record);
    this.letGo(record, this.takeFinished(hold));
    return total;
  }

  /**
   * The rows of a spooled request, made with the time it was received. One parked before it was
   * ever made into rows is counted in the metrics and aggregated now, as on arrival. One made into
   * rows by an earlier run is made again the same way, but not counted again, and its flows are not
   * aggregated: an aggregate written before the stop may already count some of them, and counting
   * twice is better than losing them.
   */
  private async remake(req: SpooledRequest, hold: RequestHold): Promise<{ staged: Staged; inflatedBytes: number }> {
    this.staged = emptyStaged();
    this.counts = { flows: 0, events: 0, skipped: 0, dead: 0 };
    let inflatedBytes = req.body.length;
    const format = req.format as BodyFormat;
    const d = await decodeBody(req.body, format, req.encoding || undefined, this.config.limits, this.config.server.jsonDateKey);
    if (!d.ok) {
      // Only a configuration change (tighter limits) can refuse a body taken before: keep it whole.
      this.stageBadParts([{ reason: d.error.reason, message: `spooled request refused on replay: ${d.error.message}`, raw: req.body.toString('base64') }]);
    } else {
      inflatedBytes = d.inflatedBytes;
      this.now = req.receivedAt;
      // Records were counted by the receiver when the request arrived, parked or not.
      this.remaking = req.processed;
      try {
        this.stageBadParts(d.decoded.bad);
        for (const rec of d.decoded.records) this.extractor.push(rec.record, rec.timeSec, req.receivedAt, hold);
      } finally {
        this.remaking = false;
      }
      this.stageIdentities();
    }
    this.closeDeadLetters();
    if (!req.processed) {
      this.publishCounts();
    } else {
      // Counted when the request first arrived.
      this.outcomes.clear();
      this.skips.clear();
    }
    const staged = this.staged;
    this.staged = emptyStaged();
    return { staged, inflatedBytes };
  }

  /**
   * Why a request cannot be taken now (answered 503 with Retry-After, so Fluent Bit keeps it and
   * retries soon), or null. With the spool on, only a full spool refuses: rows over their bounds in
   * memory park the request in the spool instead. Hysteresis: once refusing, requests are taken
   * again when everything is under `batch.resumeBelow` of its bound.
   */
  refuseReason(): string | null {
    if (this.draining) return 'draining';
    if (!this.started) return 'starting';
    if (this.replaying) return 'replaying';
    if (this.refusing) {
      if (this.overBoundsReason(this.config.batch.resumeBelow) === null) this.refusing = null;
    } else {
      this.refusing = this.overBoundsReason(1);
    }
    return this.refusing;
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
    return this.overMemoryBounds(fraction) ? 'queue_full' : null;
  }

  get pendingRows(): number {
    return this.batcher.pendingRows;
  }

  /**
   * `original` is the body as received: with the spool on, it is what is spooled (the rows are
   * made again from it on replay), which costs far less than serializing the rows.
   */
  async ingest(decoded: Decoded, format: BodyFormat, inflatedBytes = 0, original?: { body: Buffer; encoding: string | undefined }): Promise<IngestSummary> {
    if (this.spool && original && (this.parked.length > 0 || this.overMemoryBounds(1))) return this.park(decoded, format, inflatedBytes, original);
    this.counts = { flows: 0, events: 0, skipped: 0, dead: 0 };
    this.stageBadParts(decoded.bad);
    const now = Date.now();
    this.now = now;
    const hold = this.spool && original ? new RequestHold() : undefined;
    for (const r of decoded.records) this.extractor.push(r.record, r.timeSec, now, hold);
    this.stageIdentities();
    this.closeDeadLetters();
    const summary: IngestSummary = {
      records: decoded.records.length,
      flows: this.counts.flows,
      events: this.counts.events,
      skipped: this.counts.skipped,
      deadLettered: this.counts.dead,
      deadLetterRows: this.staged.deadLetters.length,
      deferred: false,
    };
    this.publishCounts();
    await this.commit(inflatedBytes, original ? { format, encoding: original.encoding ?? '', receivedAt: now, body: original.body, processed: true } : undefined, hold);
    return summary;
  }

  /**
   * Spool a request without making it into rows yet: the rows in memory are at their bounds (ADX is
   * slow or down), or older requests are parked and order must be kept. It is counted and made into
   * rows in its turn (kickUnpark).
   */
  private async park(decoded: Decoded, format: BodyFormat, inflatedBytes: number, original: { body: Buffer; encoding: string | undefined }): Promise<IngestSummary> {
    const receivedAt = Date.now();
    const request: SpooledRequest = { format, encoding: original.encoding ?? '', receivedAt, body: original.body, processed: false };
    const record = await this.spool!.appendRequest(request, 0, inflatedBytes);
    this.parked.push({ record, receivedAt, backlog: false });
    this.publishGauges();
    this.kickUnpark();
    return { records: decoded.records.length, flows: 0, events: 0, skipped: 0, deadLettered: 0, deadLetterRows: 0, deferred: true };
  }

  /** A body that cannot be decoded at all is still kept, as dead letters. */
  async setAside(parts: BadPart[]): Promise<void> {
    this.stageBadParts(parts);
    await this.commit(parts.reduce((n, p) => n + p.raw.length, 0));
  }

  private stageBadParts(parts: BadPart[]): void {
    for (const p of parts) {
      if (!this.remaking) this.metrics.parseErrors.inc({ stage: 'receive', reason: p.reason });
      this.dead({ stage: 'receive', reason: p.reason, message: p.message, raw: p.raw, nodeName: null });
    }
  }

  // ExtractOutput: called synchronously by the extractor for each record.
  record(r: ExporterRecord): void {
    try {
      if (r.kind === 'flow') {
        const row = normalizeFlow(r.payload, r, this.config.cluster);
        if (this.tooDeep('flows', row, r)) return;
        const outcome = this.enricher.process(row, this.now, !this.remaking);
        this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
        if (outcome === 'kept') this.staged.flows.push(row);
        this.counts.flows++;
        return;
      }
      const row = normalizeEvent(r.kind, r.payload, r, this.config.cluster);
      if (this.tooDeep('events', row, r)) return;
      if (!this.remaking) {
        if (r.kind === 'lost_events' && row.NumEventsLost) {
          const labels = { source: this.lostSourceLabel.value(row.Type ?? 'unknown'), node: this.lostNodeLabel.value(row.NodeName ?? 'unknown') };
          this.metrics.hubbleLostEvents.inc(labels, row.NumEventsLost);
        }
        this.metrics.events.inc({ kind: r.kind });
      }
      this.staged.events.push(row);
      this.counts.events++;
    } catch (err) {
      // A shape no normalizer rule expected: keep the record, say why, go on with the rest.
      this.dead({ stage: 'normalize', reason: 'normalize_failed', message: (err as Error).message, raw: r.line ?? boundedJson(r.payload), nodeName: r.nodeName });
    }
  }

  /** A row nested deeper than limits.maxJsonDepth is dead-lettered instead: it could not be encoded. */
  private tooDeep(table: 'flows' | 'events', row: object, r: ExporterRecord): boolean {
    const max = this.config.limits.maxJsonDepth;
    const column = tooDeepColumn(table, row, max);
    if (column === null) return false;
    const message = `${r.kind} record nests deeper than limits.maxJsonDepth (${max}) in what goes to ${column}`;
    this.dead({ stage: 'normalize', reason: 'too_deep', message, raw: r.line ?? boundedJson(r.payload), nodeName: r.nodeName });
    return true;
  }

  piecesDone(sources: readonly PieceSource[]): void {
    for (const s of sources) this.finished.push(s);
  }

  /** The finished lines' sources, but for `own`: a line a request both started and finished holds nothing. */
  private takeFinished(own?: PieceSource): RequestHold[] {
    if (this.finished.length === 0) return [];
    const out: RequestHold[] = [];
    for (const s of this.finished) if (s !== own && s instanceof RequestHold) out.push(s);
    this.finished = [];
    return out;
  }

  /** The requests whose pieces went into rows of `after` are kept until it is delivered (now if none). */
  private letGo(after: SpoolRecord | null, done: readonly RequestHold[]): void {
    const spool = this.spool;
    if (!spool) return;
    for (const h of done) {
      h.whenSpooled((held) => {
        if (!held) return;
        if (after) spool.keepUntil(after, held);
        else spool.ack(held, 1);
      });
    }
  }

  skip(reason: SkipReason): void {
    this.counts.skipped++;
    this.skips.set(reason, (this.skips.get(reason) ?? 0) + 1);
  }

  dead(d: DeadLetter): void {
    const row = this.deadRows.add(d, Date.now());
    if (row) this.staged.deadLetters.push(row);
    if (!this.remaking) {
      if (d.stage !== 'receive') this.metrics.parseErrors.inc({ stage: d.stage, reason: d.reason });
      this.metrics.deadLetters.inc({ stage: d.stage, reason: d.reason });
    }
    this.counts.dead++;
  }

  /** The summary row of the dead letters past their bounds in the rows being staged. */
  private closeDeadLetters(): void {
    const summary = this.deadRows.close(Date.now());
    if (!summary) return;
    this.staged.deadLetters.push(summary.row);
    if (!this.remaking) this.metrics.deadLettersSummarized.inc(summary.summarized);
  }

  /**
   * Make the staged rows durable (spool) and hand them to the batcher. Resolves when they are on
   * disk; rejects when the spool cannot take them, and then nothing of them is handed on.
   */
  private async commit(receivedBytes: number, request?: SpooledRequest, hold?: RequestHold): Promise<void> {
    this.closeDeadLetters();
    const staged = this.staged;
    this.staged = emptyStaged();
    const done = this.takeFinished(hold);
    const total = countOf(staged);
    const holds = hold?.pendingLines ?? 0;
    if (total === 0 && holds === 0) {
      hold?.settle(null);
      this.letGo(null, done);
      return;
    }
    if (!this.spool) {
      for (const t of TABLES) {
        const rows = staged[t];
        if (rows.length > 0) this.batcher.add(t, rows as RowOfTable[typeof t][], { rows: rows.length, bytes: (receivedBytes * rows.length) / total });
      }
      this.publishGauges();
      return;
    }
    const spool = this.spool;
    if (request) {
      // One record for the whole request, shared by its rows in every table.
      let rec: SpoolRecord;
      try {
        // Each line still waiting for pieces from later requests counts as one more row to deliver.
        rec = await spool.appendRequest(request, total + holds, receivedBytes);
      } catch (err) {
        // Not taken: Fluent Bit sends the request again, and its identities must then be written.
        // The requests whose pieces it finished stay in the spool: on a restart they are replayed.
        this.enricher.forgetIdentities(staged.identities);
        hold?.settle(null);
        throw err;
      }
      hold?.settle(rec);
      this.letGo(rec, done);
      for (const t of TABLES) if (staged[t].length > 0) this.batcher.add(t, staged[t] as RowOfTable[typeof t][], rec);
      this.publishGauges();
      return;
    }
    const records = await Promise.all(TABLES.map((t) => (staged[t].length > 0 ? spool.append(t, staged[t]) : null)));
    TABLES.forEach((t, i) => {
      const rec = records[i];
      if (rec) this.batcher.add(t, staged[t] as RowOfTable[typeof t][], rec);
    });
    // Pieced lines finished here were expired or drained into dead letters.
    this.letGo(records[TABLES.indexOf('deadLetters')] ?? records.find((r) => r !== null) ?? null, done);
    this.publishGauges();
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
    this.extractor.drain();
    this.stageAggregated(Date.now(), true);
    await this.commit(0).catch((err: unknown) => this.log.error({ err }, 'could not spool the last dead letters'));
    return within(this.batcher.flush());
  }

  /** Resolves once every parked request is made into rows (they go as batches are written). */
  private async unparked(): Promise<void> {
    while (this.parked.length > 0 && !this.closing) {
      this.kickUnpark();
      await (this.unparking ?? new Promise((r) => setTimeout(r, 20)));
      if (this.parked.length > 0) await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(graceMs?: number): Promise<boolean> {
    const delivered = await this.drain(graceMs);
    this.closing = true;
    clearInterval(this.timer);
    await this.unparking;
    // Stop the batcher before the sink, so that a batch still being retried is left pending
    // (it is in the spool) instead of being written anywhere else.
    this.batcher.stop();
    await this.sink.close();
    await this.spool?.close();
    return delivered;
  }

  private tick(now: number): void {
    // While replaying, pieces carry their request's original time: they would all look expired.
    if (!this.replaying) this.extractor.expire(now);
    this.stageAggregated(now, false);
    if (this.staged.deadLetters.length > 0 || this.staged.flows.length > 0) {
      this.commit(0).catch((err: unknown) => this.log.error({ err }, 'could not spool aggregated rows or expired partial lines'));
    }
    if (this.parked.length > 0 && !this.overMemoryBounds(this.config.batch.resumeBelow)) this.kickUnpark();
    this.publishGauges();
  }

  private stageIdentities(): void {
    const rows = this.enricher.takeIdentities();
    for (const r of rows) this.staged.identities.push(r);
  }

  private stageAggregated(now: number, force: boolean): void {
    const rows = this.enricher.takeAggregated(now, force);
    if (rows.length > 0) {
      this.staged.flows.push(...rows);
      this.metrics.enrichRows.inc({ outcome: 'aggregate_rows' }, rows.length);
    }
  }

  private publishCounts(): void {
    if (this.counts.flows > 0) this.metrics.flows.inc(this.counts.flows);
    for (const [reason, n] of this.skips) this.metrics.linesSkipped.inc({ reason }, n);
    this.skips.clear();
    for (const [outcome, n] of this.outcomes) this.metrics.enrichRows.inc({ outcome }, n);
    this.outcomes.clear();
  }

  private publishGauges(): void {
    const m = this.metrics;
    m.pendingRows.set(this.batcher.pendingRows);
    m.pendingBytes.set(this.batcher.pendingBytes);
    m.criPartialsPending.set(this.extractor.pendingPartials);
    m.criPartialBytes.set(this.extractor.pendingPartialBytes);
    this.publishEvictions('cri_partial_lines', this.extractor.evictedPartials);
    this.publishEvictions('identities', this.enricher.identityEvictions);
    this.publishEvictions('aggregate_keys', this.enricher.aggregateOverflows);
    let oldest = this.batcher.oldestPendingSince();
    const firstParked = this.parked[0]?.receivedAt;
    if (firstParked !== undefined && (oldest === null || firstParked < oldest)) oldest = firstParked;
    m.oldestPendingAge.set(oldest === null ? 0 : (Date.now() - oldest) / 1000);
    m.parkedRequests.set(this.parked.length);
    if (this.spool) {
      m.spoolBytes.set(this.spool.bytes);
      m.spoolSegments.set(this.spool.segmentCount);
    }
  }

  private publishEvictions(state: keyof Pipeline['evictionsSeen'], total: number): void {
    const grown = total - this.evictionsSeen[state];
    if (grown > 0) this.metrics.stateEvictions.inc({ state }, grown);
    this.evictionsSeen[state] = total;
  }

  private written<K extends TableKey>(table: K, rows: RowOfTable[K][], sources: Source[], now: number): void {
    this.metrics.rowsWritten.inc({ table }, rows.length);
    this.metrics.batchRows.observe({ table }, rows.length);
    const lag = this.metrics.eventLag.labels({ table });
    for (const row of rows) {
      const t = Date.parse(row.TimeGenerated as string);
      if (!Number.isNaN(t)) lag.observe(Math.max(0, (now - t) / 1000));
    }
    if (this.spool) {
      // Count this batch's rows per record, then acknowledge each record once.
      let prev: Source | null = null;
      let n = 0;
      for (const src of sources) {
        if (src === prev) {
          n++;
          continue;
        }
        if (prev && 'segment' in prev) this.spool.ack(prev, n);
        prev = src;
        n = 1;
      }
      if (prev && 'segment' in prev) this.spool.ack(prev, n);
    }
    if (this.parked.length > 0 && !this.overMemoryBounds(this.config.batch.resumeBelow)) this.kickUnpark();
    this.publishGauges();
  }
}

function emptyStaged(): Staged {
  return { flows: [], events: [], deadLetters: [], identities: [] };
}

function countOf(s: Staged): number {
  return s.flows.length + s.events.length + s.deadLetters.length + s.identities.length;
}

