import type { FastifyBaseLogger } from 'fastify';
import { Batcher } from './batch/index.js';
import type { Config } from './config/index.js';
import { Extractor, type DeadLetter, type ExporterRecord, type ExtractOutput, type SkipReason } from './extract/index.js';
import type { Metrics } from './metrics/index.js';
import { normalizeEvent, normalizeFlow } from './normalize/index.js';
import type { BadPart, BodyFormat, Decoded, IngestSummary, IngestTarget } from './receive/index.js';
import { SCHEMA_VERSION, type DeadLetterRow, type RowOfTable, type TableKey } from './schema/index.js';
import type { Sink } from './sink/index.js';

type Logger = Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>;

/**
 * The stages wired in order: decoded records → extract → normalize → batch → sink. It is the
 * receiver's IngestTarget and the extractor's output; it owns the per-request counters and turns
 * them into metrics once per request rather than once per record.
 */
export class Pipeline implements IngestTarget, ExtractOutput {
  private readonly extractor: Extractor;
  private readonly batcher: Batcher;
  private readonly expiryTimer: NodeJS.Timeout;
  private draining = false;
  private counts = { flows: 0, events: 0, skipped: 0, dead: 0 };
  private skips = new Map<SkipReason, number>();

  constructor(
    private readonly config: Config,
    private readonly metrics: Metrics,
    private readonly sink: Sink,
    private readonly log: Logger,
  ) {
    this.extractor = new Extractor(config.extract, this);
    this.batcher = new Batcher(sink, config.batch, {
      written: (table, rows, now) => this.written(table, rows, now),
      failed: (table, rows, err, retryInMs) => {
        metrics.sinkErrors.inc({ table });
        log.error({ err, table, rows, retryInMs, sink: sink.name }, 'sink write failed; batch kept for retry');
      },
    });
    this.expiryTimer = setInterval(() => {
      const now = Date.now();
      this.extractor.expire(now);
      metrics.criPartialsPending.set(this.extractor.pendingPartials);
      const oldest = this.batcher.oldestPendingSince();
      metrics.oldestPendingAge.set(oldest === null ? 0 : (now - oldest) / 1000);
    }, 1000);
    this.expiryTimer.unref();
  }

  refuseReason(): string | null {
    if (this.draining) return 'draining';
    if (this.batcher.isFull()) return 'queue_full';
    return null;
  }

  get pendingRows(): number {
    return this.batcher.pendingRows;
  }

  ingest(decoded: Decoded, _format: BodyFormat): IngestSummary {
    this.counts = { flows: 0, events: 0, skipped: 0, dead: 0 };
    this.setAside(decoded.bad, 'receive');
    const now = Date.now();
    for (const r of decoded.records) this.extractor.push(r.record, r.timeSec, now);
    this.publishCounts();
    return {
      records: decoded.records.length,
      flows: this.counts.flows,
      events: this.counts.events,
      skipped: this.counts.skipped,
      deadLettered: this.counts.dead,
    };
  }

  setAside(parts: BadPart[], stage: 'receive'): void {
    for (const p of parts) {
      this.metrics.parseErrors.inc({ stage, reason: p.reason });
      this.dead({ stage, reason: p.reason, message: p.message, raw: p.raw, nodeName: null });
    }
  }

  // ExtractOutput: called synchronously by the extractor for each record.
  record(r: ExporterRecord): void {
    try {
      if (r.kind === 'flow') {
        this.batcher.add('flows', normalizeFlow(r.payload, r, this.config.cluster));
        this.counts.flows++;
        return;
      }
      const row = normalizeEvent(r.kind, r.payload, r, this.config.cluster);
      if (r.kind === 'lost_events' && row.NumEventsLost) {
        this.metrics.hubbleLostEvents.inc({ source: row.Type ?? 'unknown', node: row.NodeName ?? 'unknown' }, row.NumEventsLost);
      }
      this.metrics.events.inc({ kind: r.kind });
      this.batcher.add('events', row);
      this.counts.events++;
    } catch (err) {
      // A shape no normalizer rule expected: keep the record, say why, go on with the rest.
      this.dead({ stage: 'normalize', reason: 'normalize_failed', message: (err as Error).message, raw: safeJson(r.payload), nodeName: r.nodeName });
    }
  }

  skip(reason: SkipReason): void {
    this.counts.skipped++;
    this.skips.set(reason, (this.skips.get(reason) ?? 0) + 1);
  }

  dead(d: DeadLetter): void {
    const max = this.config.extract.maxDeadLetterRawBytes;
    const cut = d.raw.length > max;
    const row: DeadLetterRow = {
      TimeGenerated: new Date().toISOString(),
      Stage: d.stage,
      Reason: d.reason,
      Message: cut ? `${d.message} [raw cut from ${d.raw.length} to ${max} characters]` : d.message,
      NodeName: d.nodeName,
      RawData: cut ? d.raw.slice(0, max) : d.raw,
      SchemaVersion: SCHEMA_VERSION,
    };
    if (d.stage !== 'receive') this.metrics.parseErrors.inc({ stage: d.stage, reason: d.reason });
    this.metrics.deadLetters.inc({ stage: d.stage, reason: d.reason });
    this.batcher.add('deadLetters', row);
    this.counts.dead++;
  }

  /** Write every row accepted so far (batches are sealed early); requests are still taken. */
  flush(): Promise<void> {
    return this.batcher.flush();
  }

  /** Stop taking requests (503), report unfinished partial lines, and write everything pending. */
  async drain(): Promise<void> {
    this.draining = true;
    this.extractor.drain();
    await this.batcher.flush();
  }

  async close(): Promise<void> {
    await this.drain();
    clearInterval(this.expiryTimer);
    this.batcher.stop();
    await this.sink.close();
  }

  private publishCounts(): void {
    if (this.counts.flows > 0) this.metrics.flows.inc(this.counts.flows);
    for (const [reason, n] of this.skips) this.metrics.linesSkipped.inc({ reason }, n);
    this.skips.clear();
    this.metrics.pendingRows.set(this.batcher.pendingRows);
    this.metrics.criPartialsPending.set(this.extractor.pendingPartials);
  }

  private written<K extends TableKey>(table: K, rows: RowOfTable[K][], now: number): void {
    this.metrics.rowsWritten.inc({ table }, rows.length);
    this.metrics.batchRows.observe({ table }, rows.length);
    const lag = this.metrics.eventLag.labels({ table });
    for (const row of rows) {
      const t = Date.parse(row.TimeGenerated as string);
      if (!Number.isNaN(t)) lag.observe(Math.max(0, (now - t) / 1000));
    }
    this.metrics.pendingRows.set(this.batcher.pendingRows);
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return String(v);
  }
}
