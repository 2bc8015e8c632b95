import type { ChunkWriter, EncodedChunk } from '../batch/index.js';
import type { DeadLetter, ExporterRecord, ExtractOutput, PieceSource, SkipReason } from '../extract/index.js';
import type { IdentityRow, RowOfTable, TableKey } from '../schema/index.js';
import { bump, emptyCounts, type Counts } from './counts.js';

/** What a request (or a tick) became: encoded rows per table, counts, and whose pieces it finished. */
export interface Output {
  chunks: { table: TableKey; chunk: EncodedChunk }[];
  rows: number;
  counts: Counts;
  /** Earlier requests whose CRI partial lines this one finished (or gave up). */
  finished: PieceSource[];
  /** The identity rows it wrote: noted again later if the output is not taken. */
  identities: IdentityRow[];
  /** The rows themselves, by table, when they were asked for (a tick's, which are spooled as rows). */
  rowObjects: Partial<Record<TableKey, unknown[]>> | null;
}

export interface RowMaker {
  /** Make a record into its row, written to `out`; returns nothing, tells `out`. */
  record(r: ExporterRecord, out: RequestOutput): void;
  dead(d: DeadLetter, out: RequestOutput): void;
}

/**
 * The output of one request while it is made into rows: the extractor tells it each outcome, the
 * rows are encoded into its writers as they are made. It lives for the call, and is returned.
 */
export class RequestOutput implements ExtractOutput {
  readonly counts: Counts = emptyCounts();
  private readonly writers = new Map<TableKey, ChunkWriter<unknown>>();
  private readonly finished: PieceSource[] = [];
  private readonly rowObjects: Partial<Record<TableKey, unknown[]>> | null;

  constructor(
    private readonly maker: RowMaker,
    private readonly writerFor: <K extends TableKey>(table: K) => ChunkWriter<RowOfTable[K]>,
    /** The source of the pieces this request brings: a line it finishes itself holds nothing. */
    readonly own: PieceSource | undefined,
    /** The time its rows are made at. */
    readonly at: number,
    /** Whether its flows may be aggregated (not when it was made into rows once before). */
    readonly aggregate: boolean,
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

  piecesDone(sources: readonly PieceSource[]): void {
    for (const s of sources) if (s !== this.own) this.finished.push(s);
  }

  /** Encode a row into its table's chunk; throws (nothing written) when it cannot be encoded. */
  write<K extends TableKey>(table: K, row: RowOfTable[K]): void {
    let w = this.writers.get(table) as ChunkWriter<RowOfTable[K]> | undefined;
    if (!w) {
      w = this.writerFor(table);
      this.writers.set(table, w as ChunkWriter<unknown>);
    }
    w.add(row);
    if (this.rowObjects) (this.rowObjects[table] ??= [] as unknown[]).push(row);
  }

  finish(identities: IdentityRow[]): Output {
    const chunks: Output['chunks'] = [];
    let rows = 0;
    for (const [table, w] of this.writers) {
      const chunk = w.finish();
      if (chunk) {
        chunks.push({ table, chunk });
        rows += chunk.rows;
      }
    }
    return { chunks, rows, counts: this.counts, finished: this.finished, identities, rowObjects: this.rowObjects };
  }
}
