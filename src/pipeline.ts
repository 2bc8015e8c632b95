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
  private replaying = false;
  private refusing: string | null = null;
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
   * Send first what an earlier run left in the spool. Requests are refused (503) until all of it is
   * handed to the batcher; the batcher's own bounds pace the replay.
   */
  async recover(): Promise<number> {
    if (!this.spool) return 0;
    const spool = this.spool;
    this.replaying = true;
    let rows = 0;
    try {
      for await (const r of spool.replay((file, offset, reason) => {
        this.metrics.spoolTornRecords.inc({ reason });
        this.log.warn({ file, offset, reason }, 'spool segment cut at a torn or corrupt record');
      })) {
        while (this.overBounds(1)) await new Promise((res) => setTimeout(res, 20));
        if (r.kind === 'rows') {
          this.batcher.add(r.table, r.rows as RowOfTable[typeof r.table][], r.record);
          rows += r.rows.length;
          continue;
        }
        const hold = new RequestHold();
        hold.settle(r.record);
        const { staged, inflatedBytes } = await this.remake(r.request, hold);
        const total = countOf(staged);
        spool.expect(r.record, total + hold.pendingLines, inflatedBytes);
        for (const t of TABLES) if (staged[t].length > 0) this.batcher.add(t, staged[t] as RowOfTable[typeof t][], r.record);
        this.letGo(r.record, this.takeFinished(hold));
        rows += total;
      }
    } finally {
      this.replaying = false;
    }
    this.metrics.spoolReplayedRows.inc(rows);
    if (rows > 0) this.log.info({ rows }, 'spool replayed: undelivered rows from the previous run are being sent');
    this.publishGauges();
    return rows;
  }

  /**
   * The rows of a spooled request, made again the way they were made when it arrived (same
   * receive time). Flows are not aggregated this time: an aggregate written before the stop may
   * already count some of them, and counting twice is better than losing them.
   */
  private async remake(req: SpooledRequest, hold: RequestHold): Promise<{ staged: Staged; inflatedBytes: number }> {
    this.staged = emptyStaged();
    let inflatedBytes = req.body.length;
    const format = req.format as BodyFormat;
    const d = await decodeBody(req.body, format, req.encoding || undefined, this.config.limits, this.config.server.jsonDateKey);
    if (!d.ok) {
      // Only a configuration change (tighter limits) can refuse a body taken before: keep it whole.
      this.stageBadParts([{ reason: d.error.reason, message: `spooled request refused on replay: ${d.error.message}`, raw: req.body.toString('base64') }]);
    } else {
      inflatedBytes = d.inflatedBytes;
      this.now = req.receivedAt;
      this.remaking = true;
      try {
        this.stageBadParts(d.decoded.bad);
        for (const rec of d.decoded.records) this.extractor.push(rec.record, rec.timeSec, req.receivedAt, hold);
      } finally {
        this.remaking = false;
      }
      this.stageIdentities();
    }
    this.closeDeadLetters();
    // Counted when the request first arrived.
    this.outcomes.clear();
    this.skips.clear();
    const staged = this.staged;
    this.staged = emptyStaged();
    return { staged, inflatedBytes };
  }

  refuseReason(): string | null {
    if (this.draining) return 'draining';
    if (this.replaying) return 'replaying';
    if (this.refusing) {
      if (!this.overBounds(this.config.batch.resumeBelow)) this.refusing = null;
    } else {
      this.refusing = this.overBoundsReason(1);
    }
    return this.refusing;
  }

  /** Not ready while refusing, or once the spool is 90% full (so that traffic moves before it fills). */
  notReadyReason(): string | null {
    const refused = this.refuseReason();
    if (refused) return refused;
    if (this.spool && this.spool.bytes >= this.config.spool.maxBytes * 0.9) return 'spool_near_full';
    return null;
  }

  private overBounds(fraction: number): boolean {
    return this.overBoundsReason(fraction) !== null;
  }

  private overBoundsReason(fraction: number): string | null {
    const b = this.config.batch;
    if (this.batcher.pendingRows >= b.maxPendingRows * fraction) return 'queue_full';
    if (this.batcher.pendingBytes >= b.maxPendingBytes * fraction) return 'queue_full';
    if (this.spool && this.spool.bytes >= this.config.spool.maxBytes * fraction) return 'spool_full';
    return null;
  }

  get pendingRows(): number {
    return this.batcher.pendingRows;
  }

  /**
   * `original` is the body as received: with the spool on, it is what is spooled (the rows are
   * made again from it on replay), which costs far less than serializing the rows.
   */
  async ingest(decoded: Decoded, format: BodyFormat, inflatedBytes = 0, original?: { body: Buffer; encoding: string | undefined }): Promise<IngestSummary> {
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
    };
    this.publishCounts();
    await this.commit(inflatedBytes, original ? { format, encoding: original.encoding ?? '', receivedAt: now, body: original.body } : undefined, hold);
    return summary;
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

  /** Write every row accepted so far (batches are sealed early); requests are still taken. */
  flush(): Promise<void> {
    return this.batcher.flush();
  }

  /**
   * Stop taking requests (503), report unfinished partial lines, and deliver what is pending,
   * waiting at most `graceMs`. Returns whether everything was delivered; what was not stays in the
   * spool for the next start.
   */
  async drain(graceMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    this.draining = true;
    this.extractor.drain();
    this.stageAggregated(Date.now(), true);
    await this.commit(0).catch((err: unknown) => this.log.error({ err }, 'could not spool the last dead letters'));
    if (graceMs === Number.POSITIVE_INFINITY) {
      await this.batcher.flush();
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      this.batcher.flush().then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
    ]);
    clearTimeout(timer);
    return done;
  }

  async close(graceMs?: number): Promise<boolean> {
    const delivered = await this.drain(graceMs);
    clearInterval(this.timer);
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
    const oldest = this.batcher.oldestPendingSince();
    m.oldestPendingAge.set(oldest === null ? 0 : (Date.now() - oldest) / 1000);
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
    this.publishGauges();
  }
}

function emptyStaged(): Staged {
  return { flows: [], events: [], deadLetters: [], identities: [] };
}

function countOf(s: Staged): number {
  return s.flows.length + s.events.length + s.deadLetters.length + s.identities.length;
}

