import type { ChunkWriter } from '../batch/index.js';
import type { Config, OutcomeSettings } from '../config/index.js';
import { Enricher } from '../enrich/index.js';
import { Extractor, type DeadLetter, type DecidedLine, type ExporterRecord, type PieceSource } from '../extract/index.js';
import { boundedJson } from '../json-values.js';
import { DeadLetterRows, InvalidValue, normalizeEvent, normalizeFlow, tooDeepColumn } from '../normalize/index.js';
import type { BadPart, LogRecord } from '../receive/types.js';
import type { FlowRow, RowOfTable, TableKey } from '../schema/index.js';
import { bump, emptyCounts, type Counts } from './counts.js';
import { RequestOutput, type Output, type RowMaker, type RowStamp } from './output.js';

export type ProcessorConfig = Pick<Config, 'cluster' | 'extract' | 'limits' | 'enrich' | 'filters' | 'sampling' | 'aggregation'>;

const RELEASED: LogRecord = { record: {}, timeSec: null };

/** Records [from, to) of a decoded request, to be made into rows now. */
export interface SliceInput {
  /**
   * The request's records. Consumed: each entry is released once it is made into rows, so that what
   * a request holds shrinks as it goes instead of surviving young-generation collections whole.
   */
  records: LogRecord[];
  /** Parts of the body that could not be decoded: made into dead letters with the slice that starts at 0. */
  bad: readonly BadPart[];
  from: number;
  to: number;
  /** When the request was received: the time its rows are made at. */
  receivedAt: number;
  /**
   * Where the age of the CRI partial lines its pieces begin counts from (extract.partialMaxAgeMs):
   * when it was received, or for a request replayed from the spool, when it was replayed. A restart
   * is no wait for a line's last piece: Fluent Bit cannot send it while no process answers.
   */
  piecesSince: number;
  /** Who brought the records: remembered by the CRI partial lines its pieces are part of. */
  source: PieceSource;
  /** Fold allowed flows into aggregate rows (overload.mode aggregate-allowed, under pressure when it came). */
  aggregateAllowed: boolean;
  /**
   * Folded already, before a crash: its aggregated flows are in the aggregate rows of a checkpoint
   * on disk. Its rows are made again and its outcomes told the same way, but those flows are not
   * folded again.
   */
  foldedBefore: boolean;
  stamp: RowStamp;
}

/** What time alone makes, at a checkpoint. */
export interface CheckpointInput {
  now: number;
  /** Give up the CRI partial lines that got no final piece within extract.partialMaxAgeMs of `now` (Infinity: all of them). */
  expireAt: number | null;
  /** Take the aggregate rows held now, with these Uuids' prefix. */
  aggregates: { idPrefix: string } | null;
  stamp: RowStamp;
}

/**
 * Decoded requests to encoded rows, one slice of a request per call: extract → normalize → enrich →
 * encode, every row written into its table's chunk (the sink's encoding) as soon as it is made.
 * The state that spans requests lives here: CRI partial lines, the identity catalog, the aggregate
 * rows being folded, the dead-letter row bounds. Everything else is returned, as values. A record
 * that throws anywhere on its way is a dead letter of its own; nothing a record holds reaches the
 * caller as an exception.
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

  /**
   * Decide the flows that come next by the outcome settings of the run that counts them (null: this
   * process's own). False: they are not valid now, and this process's own decide instead.
   */
  decideWith(settings: OutcomeSettings | null): boolean {
    // The aggregation key was checked against the flows columns when the settings were read.
    return this.enricher.decideWith(settings && { ...settings, aggregation: { ...settings.aggregation, key: settings.aggregation.key as (keyof FlowRow)[] } });
  }

  /** Records [from, to) of a request made into rows. */
  slice(input: SliceInput): Output {
    const out = new RequestOutput(this, this.writerFor, input.source, input.receivedAt, input.stamp, input.foldedBefore, input.aggregateAllowed, false);
    const records = input.records;
    if (input.from === 0) for (const p of input.bad) this.badPart(p, out);
    out.counts.records = input.to - input.from;
    for (let i = input.from; i < input.to; i++) {
      const r = records[i]!;
      records[i] = RELEASED;
      try {
        this.extractor.push(r.record, r.timeSec, input.piecesSince, out, input.source);
      } catch (err) {
        this.dead({ stage: 'extract', reason: 'extract_failed', message: `the record could not be read: ${describe(err)}`, raw: boundedJson(r.record), nodeName: null }, out);
      }
    }
    // The dead-letter row bound is per request: its summary row comes with its last slice.
    return this.close(out, input.to >= records.length);
  }

  /**
   * What a checkpoint makes: CRI partial lines past their age given up (returned with their keys,
   * so that a replay forgets them at the same point; their holds are the caller's to release), and
   * every aggregate row held.
   */
  checkpoint(input: CheckpointInput): Output & { given: { key: string; line: DecidedLine }[] } {
    const out = new RequestOutput(this, this.writerFor, undefined, input.now, input.stamp, false, false, true);
    const given = input.expireAt === null ? [] : this.extractor.expire(input.expireAt, out);
    if (input.aggregates) {
      const rows = this.enricher.takeAggregated();
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        // A stable key, so that an aggregate written again after a crash is recognised (HubbleFlowsDedup).
        row.Uuid = `${input.aggregates.idPrefix}-${i}`;
        if (this.encode(out, 'flows', row, null)) out.counts.aggregateRows++;
      }
    }
    return { ...this.close(out, true), given };
  }

  /**
   * A spooled record that could not be made into rows at all (what threw is a bug, not the input's
   * fault, yet the input must not stall the pipeline): one dead letter with its raw text, counted as
   * one flow set aside, so that the record can leave the spool.
   */
  failed(message: string, raw: string, stamp: RowStamp): Output {
    const out = new RequestOutput(this, this.writerFor, undefined, Date.now(), stamp, false, false, false);
    this.dead({ stage: 'extract', reason: 'record_failed', message, raw, nodeName: null }, out);
    return this.close(out, true);
  }

  /** Lines a checkpoint gave up before a crash: forgotten when a replay reaches that checkpoint's mark. */
  forgetLines(keys: readonly string[]): void {
    this.extractor.forget(keys);
  }

  /** Rows made elsewhere (coverage) or read back from a checkpoint, encoded; kept as objects when `keep`. */
  encodeRows<K extends TableKey>(table: K, rows: readonly RowOfTable[K][], now: number, keep: boolean): Output {
    const out = new RequestOutput(this, this.writerFor, undefined, now, { receiverNode: '', runId: null, coverageWindow: null }, false, false, keep);
    for (const row of rows) this.encode(out, table, row, null);
    return out.finish();
  }

  /**
   * What a request whose records all make nothing (agent log lines only) comes to, or null when
   * one of them may make something. Changes no state.
   */
  junkOnly(records: readonly LogRecord[]): Counts | null {
    const c = emptyCounts();
    for (const r of records) {
      const why = this.extractor.junkReason(r.record);
      if (why === null) return null;
      c.skipped++;
      bump(c.skips, why);
    }
    c.records = records.length;
    return c;
  }

  /** Aggregate rows that can still be opened: a slice of more flows than this waits for a checkpoint first. */
  get aggregateRoom(): number {
    return this.enricher.aggregateRoom;
  }

  /** When the oldest unfinished CRI line got its first piece (null: none). */
  get oldestPartialAt(): number | null {
    return this.extractor.oldestPartialAt;
  }

  /** The state that spans requests, for the gauges. */
  get state() {
    return {
      partialLines: this.extractor.pendingPartials,
      partialBytes: this.extractor.pendingPartialBytes,
      partialsEvicted: this.extractor.evictedPartials,
      identitiesEvicted: this.enricher.identityEvictions,
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
        const outcome = this.enricher.process(row, out.at, out.aggregateAllowed);
        out.counts.flows++;
        if (outcome === 'kept' || outcome === 'aggregated') this.stampFlow(row, out.stamp);
        if (outcome === 'kept' && !this.encode(out, 'flows', row, r)) {
          out.counts.flowsDeadLettered++;
          return;
        }
        if (outcome === 'aggregated' && !out.foldedBefore) this.enricher.absorb(row, out.aggregateAllowed);
        bump(out.counts.outcomes, outcome);
        return;
      }
      const row = normalizeEvent(r.kind, r.payload, r, this.config.cluster);
      row.ReceiverNode = out.stamp.receiverNode;
      row.RunId = out.stamp.runId;
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
      this.dead({ stage: 'normalize', reason, message: describe(err), raw: r.line ?? boundedJson(r.payload), nodeName: r.nodeName }, out);
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
    row.ReceiverNode = out.stamp.receiverNode;
    row.RunId = out.stamp.runId;
    try {
      out.write('deadLetters', row);
      out.counts.deadLetterRows++;
    } catch {
      // Strings only, bounded: cannot fail to encode; if it ever did, it stays counted.
    }
  }

  private stampFlow(row: FlowRow, stamp: RowStamp): void {
    row.ReceiverNode = stamp.receiverNode;
    row.RunId = stamp.runId;
    row.CoverageWindow = stamp.coverageWindow;
  }

  private close(out: RequestOutput, endOfRequest: boolean): Output {
    const summary = endOfRequest ? this.deadRows.close(Date.now()) : null;
    if (summary) {
      out.counts.summarized += summary.summarized;
      summary.row.ReceiverNode = out.stamp.receiverNode;
      summary.row.RunId = out.stamp.runId;
      out.write('deadLetters', summary.row);
      out.counts.deadLetterRows++;
    }
    for (const row of this.enricher.takeIdentities()) {
      row.ReceiverNode = out.stamp.receiverNode;
      row.RunId = out.stamp.runId;
      this.encode(out, 'identities', row, null);
    }
    return out.finish();
  }

  private badPart(p: BadPart, out: RequestOutput): void {
    this.dead({ stage: 'receive', reason: p.reason, message: p.message, raw: p.raw, nodeName: null }, out);
  }

  /** Write a row; one that cannot be encoded is a dead letter instead, and the rest goes on. */
  private encode<K extends TableKey>(out: RequestOutput, table: K, row: RowOfTable[K], r: ExporterRecord | null): boolean {
    try {
      out.write(table, row);
      return true;
    } catch (err) {
      const raw = r ? (r.line ?? boundedJson(r.payload)) : boundedJson(row);
      this.dead({ stage: 'normalize', reason: 'unencodable', message: `${table} row cannot be encoded: ${describe(err)}`, raw, nodeName: r?.nodeName ?? null }, out);
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

/** An error's message, whatever was thrown (input can make code throw anything). */
function describe(err: unknown): string {
  try {
    return err instanceof Error ? err.message : typeof err === 'string' ? err : 'a value that is not an Error';
  } catch {
    return 'an error whose message cannot be read';
  }
}
