import type { TableKey } from '../schema/index.js';

/**
 * Rows of one table made from one request (or one timer tick), already encoded the way the sink
 * sends them. Rows are either newline-terminated text (JSON lines: a newline byte only ever ends a
 * row, JSON escapes the ones inside strings) or concatenated Avro datums, whose ends are kept so
 * that a batch can be cut between rows.
 */
export interface EncodedChunk {
  data: Buffer;
  rows: number;
  /** Byte offset just past each row, for Avro datums; null for newline-terminated rows. */
  ends: Uint32Array | null;
  /** Each row's TimeGenerated in ms since the epoch (NaN when it has none), for the lag metric. */
  times: Float64Array;
}

/** Writes rows of one table into one chunk as they are made; a sink hands these out per table. */
export interface ChunkWriter<Row> {
  /** Append one row; throws, having appended nothing, when the row cannot be encoded. */
  add(row: Row): void;
  /** The rows added so far as one chunk (null when none); the writer is not used again. */
  finish(): EncodedChunk | null;
}

/** Rows handed to the sink together, in the order they were made. */
export interface Batch {
  table: TableKey;
  chunks: readonly EncodedChunk[];
  rows: number;
  bytes: number;
}

export function batchOf(table: TableKey, chunks: readonly EncodedChunk[]): Batch {
  let rows = 0;
  let bytes = 0;
  for (const c of chunks) {
    rows += c.rows;
    bytes += c.data.length;
  }
  return { table, chunks, rows, bytes };
}

/** Where row `row` of a chunk starts. */
function offsetOfRow(c: EncodedChunk, row: number): number {
  if (row <= 0) return 0;
  if (row >= c.rows) return c.data.length;
  if (c.ends) return c.ends[row - 1]!;
  let at = -1;
  for (let n = 0; n < row; n++) at = c.data.indexOf(10, at + 1);
  return at + 1;
}

/** Rows [from, to) of a chunk, sharing its memory. */
export function sliceChunk(c: EncodedChunk, from: number, to: number): EncodedChunk {
  if (from <= 0 && to >= c.rows) return c;
  const start = offsetOfRow(c, from);
  const end = offsetOfRow(c, to);
  let ends: Uint32Array | null = null;
  if (c.ends) {
    ends = new Uint32Array(to - from);
    for (let i = from; i < to; i++) ends[i - from] = c.ends[i]! - start;
  }
  return { data: c.data.subarray(start, end), rows: to - from, ends, times: c.times.subarray(from, to) };
}

/** Rows [from, to) of a batch. */
export function sliceBatch(b: Batch, from: number, to: number): Batch {
  const out: EncodedChunk[] = [];
  let base = 0;
  for (const c of b.chunks) {
    const lo = Math.max(from - base, 0);
    const hi = Math.min(to - base, c.rows);
    if (hi > lo) out.push(sliceChunk(c, lo, hi));
    base += c.rows;
    if (base >= to) break;
  }
  return batchOf(b.table, out);
}

/** A batch cut into `parts` batches of about the same number of rows. */
export function splitBatch(b: Batch, parts: number): Batch[] {
  const size = Math.ceil(b.rows / Math.max(1, Math.min(parts, b.rows)));
  const out: Batch[] = [];
  for (let i = 0; i < b.rows; i += size) out.push(sliceBatch(b, i, Math.min(b.rows, i + size)));
  return out;
}

/** The rows of newline-terminated chunks as one text (JSON lines). */
export function concatData(b: Batch): Buffer {
  return b.chunks.length === 1 ? b.chunks[0]!.data : Buffer.concat(b.chunks.map((c) => c.data));
}
