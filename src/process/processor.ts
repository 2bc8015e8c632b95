import type { ChunkWriter } from '../batch/index.js';
import type { Config } from '../config/index.js';
import { Enricher } from '../enrich/index.js';
import { Extractor, type DeadLetter, type ExporterRecord, type PieceSource } from '../extract/index.js';
import { boundedJson } from '../json-values.js';
import { DeadLetterRows, InvalidValue, normalizeEvent, normalizeFlow, tooDeepColumn } from '../normalize/index.js';
import type { BadPart, LogRecord } from '../receive/index.js';
import type { FlowRow, IdentityRow, RowOfTable, TableKey } from '../schema/index.js';
import { bump } from './counts.js';
import { RequestOutput, type Output, type RowMaker } from './output.js';

export type ProcessorConfig = Pick<Config, 'cluster' | 'extract' | 'limits' | 'enrich' | 'filters' | 'sampling' | 'aggregation'>;

const RELEASED: LogRecord = { record: {}, timeSec: null };

/** A decoded request to make into rows. */
export interface RequestInput {
  /**
   * Consumed: each entry is released once it is made into rows, so that what a request holds
   * shrinks as it goes instead of surviving young-generation collections whole.
   */
  records: LogRecord[];
  bad: readonly BadPart[];
  /** When it was received: the time its rows are made at. */
  receivedAt: number;
  /**
   * Made into rows once already, by an earlier run (a spooled request replayed): its flows are not
   * aggregated again, since an aggregate written before the stop may already count some of them
   * (counting twice is better than losing them).
   */
  madeBefore: boolean;
  /** Who brought its records: remembered by the CRI partial lines its pieces are part of. */
  source?: PieceSource;
  /** Fold allowed flows into aggregate rows (overload.mode aggregate-allowed, under pressure). */
  aggregateAllowed?: boolean;
}

/**
 * Decoded requests to encoded rows, in one synchronous call each: extract → normalize → enrich →
 * encode, every row written into its table's chunk (the sink's encoding) as soon as it is made.
 * The state that spans requests lives here: CRI partial lines, the identity catalog, aggregation
 * windows, the dead-letter row bounds. Everything else is returned, as values.
 */
export class Processor implements RowMaker {
  private readonly extractor: Extractor;
  private readonly enricher: Enricher;
  private readonly deadRows: DeadLetterRows;

  constructor(
    private readonly config: ProcessorConfig,
    private readonly writerFor: <K extends TableKey>(table: K) => ChunkWriter<RowOfTable[K]>,
  ) {
    this.extractor = new Extractor({ ...config.extract, maxLineBytes: config.limits.maxLineBytes });
    this.deadRows = new DeadLetterRows({
      perRequest: config.limits.maxDeadLetterRowsPerRequest,
      perMinute: config.limits.maxDeadLetterRowsPerMinute,
      maxRawBytes: config.extract.maxDeadLetterRawBytes,
    });
    this.enricher = new Enricher({
      cluster: config.cluster,
      enrich: config.enrich,
      filters: config.filters,
      sampling: config.sampling,
      // loadConfig has checked that every key is a flows column.
      aggregation: { ...config.aggregation, key: config.aggregation.key as (keyof FlowRow)[] },
    });
  }

  /** A request made into rows. */
  request(input: RequestInput): Output {
    const out = this.open(input.source, { at: input.receivedAt, aggregate: !input.madeBefore, aggregateAllowed: input.aggregateAllowed === true }, false);
    out.counts.records = input.records.length;
    for (const p of input.bad) this.badPart(p, out);
    const records = input.records;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      records[i] = RELEASED;
      this.extractor.push(r.record, r.timeSec, input.receivedAt, out, input.source);
    }
    return this.close(out);
  }

  /** A body that could not be decoded at all, as dead letters (spooled as rows). */
  badBody(parts: readonly BadPart[], now: number): Output {
    const out = this.open(undefined, { at: now, aggregate: false }, true);
    for (const p of parts) this.badPart(p, out);
    return this.close(out);
  }

  /**
   * What time alone makes: partial lines past their age (not while a backlog of old requests is
   * being made, whose pieces carry their own time), and aggregation windows that ended. Its rows
   * are returned as objects too: they are spooled as rows.
   */
  tick(now: number, expirePartials: boolean): Output {
    const out = this.open(undefined, { at: now, aggregate: true }, true);
    if (expirePartials) this.extractor.expire(now, out);
    this.aggregated(this.enricher.takeAggregated(now, false), out);
    return this.close(out);
  }

  /** At shutdown: every unfinished partial line as a dead letter, every aggregate now. */
  drain(now: number): Output {
    const out = this.open(undefined, { at: now, aggregate: true }, true);
    this.extractor.drain(out);
    this.aggregated(this.enricher.takeAggregated(now, true), out);
    return this.close(out);
  }

  /** Rows made elsewhere (coverage), encoded, and kept as objects to be spooled as rows. */
  made<K extends TableKey>(table: K, rows: readonly RowOfTable[K][], now: number): Output {
    const out = this.open(undefined, { at: now, aggregate: false }, true);
    for (const row of rows) this.encode(out, table, row, null);
    return out.finish([]);
  }

  /** Rows spooled as rows by an earlier run, encoded again; one that no longer encodes is a dead letter. */
  rows<K extends TableKey>(table: K, rows: readonly RowOfTable[K][], now: number): Output {
    const out = this.open(undefined, { at: now, aggregate: false }, false);
    for (const row of rows) this.encode(out, table, row, null);
    return this.close(out);
  }

  /** Identity rows of an output that was not taken: they are written again when next seen. */
  forgetIdentities(rows: readonly IdentityRow[]): void {
    this.enricher.forgetIdentities(rows);
  }

  /** The state that spans requests, for the gauges. */
  get state() {
    return {
      partialLines: this.extractor.pendingPartials,
      partialBytes: this.extractor.pendingPartialBytes,
      partialsEvicted: this.extractor.evictedPartials,
      identitiesEvicted: this.enricher.identityEvictions,
      aggregateOverflows: this.enricher.aggregateOverflows,
    };
  }

  record(r: ExporterRecord, out: RequestOutput): void {
        const flow = r.kind === 'flow';
    if (flow) out.counts.flowsSeen++;
    try {
      if (flow) {
        const row = normalizeFlow(r.payload, r, this.config.cluster);
        if (this.tooDeep('flows', row, r, out)) {
          out.counts.flowsDeadLettered++;
          return;
        }
        const outcome = this.enricher.process(row, out.at, out.aggregate, out.aggregateAllowed);
        out.counts.flows++;
        if (outcome === 'kept' && !this.encode(out, 'flows', row, r)) {
          out.counts.flowsDeadLettered++;
          return;
        }
        bump(out.counts.outcomes, outcome);
        return;
      }
      const row = normalizeEvent(r.kind, r.payload, r, this.config.cluster);
      if (this.tooDeep('events', row, r, out)) return;
      if (!this.encode(out, 'events', row, r)) return;
      if (r.kind === 'lost_events' && row.NumEventsLost) out.counts.lost.push({ source: row.Type ?? 'unknown', node: row.NodeName ?? 'unknown', events: row.NumEventsLost });
      bump(out.counts.eventKinds, r.kind);
      out.counts.events++;
    } catch (err) {
      // A value that cannot be what its field holds (invalid_value, naming the field), or a shape no
      // normalizer rule expected: keep the record, say why, go on with the rest.
      if (flow) out.counts.flowsDeadLettered++;
      const reason = err instanceof InvalidValue ? err.reason : 'normalize_failed';
      this.dead({ stage: 'normalize', reason, message: (err as Error).message, raw: r.line ?? boundedJson(r.payload), nodeName: r.nodeName }, out);
    }
  }

  dead(d: DeadLetter, out: RequestOutput): void {
    out.counts.deadLettered++;
    if (d.stage === 'receive' || d.stage === 'extract') {
      // A line or body part that could not be read may have been a flow: it is accounted as one.
      out.counts.flowsSeen++;
      out.counts.flowsDeadLettered++;
    }
    bump(out.counts.deadLetters, `${d.stage}\t${d.reason}`);
    const row = this.deadRows.add(d, Date.now());
    if (!row) return;
    try {
      out.write('deadLetters', row);
      out.counts.deadLetterRows++;
    } catch {
      // Strings only, bounded: cannot fail to encode; if it ever did, it stays counted.
    }
  }

  private open(source: PieceSource | undefined, making: { at: number; aggregate: boolean; aggregateAllowed?: boolean }, keepRows: boolean): RequestOutput {
    return new RequestOutput(this, this.writerFor, source, making.at, making.aggregate, making.aggregateAllowed === true, keepRows);
  }

  private close(out: RequestOutput): Output {
    const summary = this.deadRows.close(Date.now());
    if (summary) {
      out.counts.summarized += summary.summarized;
      out.write('deadLetters', summary.row);
      out.counts.deadLetterRows++;
    }
    const identities = this.enricher.takeIdentities();
    for (const row of identities) out.write('identities', row);
    return out.finish(identities);
  }

  private badPart(p: BadPart, out: RequestOutput): void {
    this.dead({ stage: 'receive', reason: p.reason, message: p.message, raw: p.raw, nodeName: null }, out);
  }

  private aggregated(rows: FlowRow[], out: RequestOutput): void {
    for (const row of rows) if (this.encode(out, 'flows', row, null)) out.counts.aggregateRows++;
  }

  /** Write a row; one that cannot be encoded is a dead letter instead, and the rest goes on. */
  private encode<K extends TableKey>(out: RequestOutput, table: K, row: RowOfTable[K], r: ExporterRecord | null): boolean {
    try {
      out.write(table, row);
      return true;
    } catch (err) {
      const raw = r ? (r.line ?? boundedJson(r.payload)) : boundedJson(row);
      this.dead({ stage: 'normalize', reason: 'unencodable', message: `${table} row cannot be encoded: ${(err as Error).message}`, raw, nodeName: r?.nodeName ?? null }, out);
      return false;
    }
  }

  /** A row nested deeper than limits.maxJsonDepth is dead-lettered instead: it could not be encoded. */
  private tooDeep(table: 'flows' | 'events', row: object, r: ExporterRecord, out: RequestOutput): boolean {
    const max = this.config.limits.maxJsonDepth;
    const column = tooDeepColumn(table, row, max);
    if (column === null) return false;
    const message = `${r.kind} record nests deeper than limits.maxJsonDepth (${max}) in what goes to ${column}`;
    this.dead({ stage: 'normalize', reason: 'too_deep', message, raw: r.line ?? boundedJson(r.payload), nodeName: r.nodeName }, out);
    return true;
  }
}
