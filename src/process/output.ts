import type { ChunkWriter, EncodedChunk } from '../batch/index.js';
import type { DeadLetter, DecidedLine, ExporterRecord, ExtractOutput, PieceSource, SkipReason } from '../extract/index.js';
import type { RowOfTable, TableKey } from '../schema/index.js';
import { bump, emptyCounts, type Counts } from './counts.js';

/** Who received the rows being made, and the coverage window that counts them: stamped on every row. */
export interface RowStamp {
  receiverNode: string;
  runId: string | null;
  /** WindowSequence of the coverage window counting the flows (flow rows only). */
  coverageWindow: number | null;
}

/** What a slice of a request (or a checkpoint) became: encoded rows per table, counts, and the lines it decided. */
export interface Output {
  chunks: { table: TableKey; chunk: EncodedChunk }[];
  rows: number;
  counts: Counts;
  /** Lines made of CRI pieces that this slice (or checkpoint) finished or gave up. */
  decided: DecidedLine[];
  /** The rows themselves, by table, when they were asked for (a checkpoint's, spooled with it). */
  rowObjects: Partial<Record<TableKey, unknown[]>> | null;
}

export interface RowMaker {
  /** Make a record into its row, written to `out`; returns nothing, tells `out`. */
  record(r: ExporterRecord, out: RequestOutput): void;
  dead(d: DeadLetter, out: RequestOutput): void;
}

/**
 * The output of one slice of a request (or a checkpoint) while it is made into rows: the extractor
 * tells it each outcome, the rows are encoded into its writers as they are made. It lives for the
 * call, and is returned.
 */
export class RequestOutput implements ExtractOutput {
  readonly counts: Counts = emptyCounts();
  private readonly writers = new Map<TableKey, ChunkWriter<unknown>>();
  private readonly decided: DecidedLine[] = [];
  private readonly rowObjects: Partial<Record<TableKey, unknown[]>> | null;

  constructor(
    private readonly maker: RowMaker,
    private readonly writerFor: <K extends TableKey>(table: K) => ChunkWriter<RowOfTable[K]>,
    /** The source of the pieces this request brings. */
    readonly source: PieceSource | undefined,
    /** The time its rows are made at. */
    readonly at: number,
    readonly stamp: RowStamp,
    /** Folded already (made into rows again after a crash): aggregated flows are told, not folded again. */
    readonly foldedBefore: boolean,
    /** Whether allowed flows are folded into aggregates whatever aggregation says (overload). */
    readonly aggregateAllowed: boolean,
    keepRows: boolean,
  ) {
    this.rowObjects = keepRows ? {} : null;
  }

  record(r: ExporterRecord): void {
    this.maker.record(r, this);
  }

  skip(reason: SkipReason): void {
    this.counts.skipped++;
    bump(this.counts.skips, reason);
  }

  dead(d: DeadLetter): void {
    this.maker.dead(d, this);
  }

  lineDecided(line: DecidedLine): void {
    this.decided.push(line);
  }

  /** Encode a row into its table's chunk, stamped; throws (nothing written) when it cannot be encoded. */
  write<K extends TableKey>(table: K, row: RowOfTable[K]): void {
    let w = this.writers.get(table) as ChunkWriter<RowOfTable[K]> | undefined;
    if (!w) {
      w = this.writerFor(table);
      this.writers.set(table, w as ChunkWriter<unknown>);
    }
    w.add(row);
    if (this.rowObjects) (this.rowObjects[table] ??= [] as unknown[]).push(row);
  }

  finish(): Output {
    const chunks: Output['chunks'] = [];
    let rows = 0;
    for (const [table, w] of this.writers) {
      const chunk = w.finish();
      if (chunk) {
        chunks.push({ table, chunk });
        rows += chunk.rows;
      }
    }
    return { chunks, rows, counts: this.counts, decided: this.decided, rowObjects: this.rowObjects };
  }
}
