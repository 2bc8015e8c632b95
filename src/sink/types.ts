import type { Batch, ChunkWriter } from '../batch/index.js';
import type { RowOfTable, TableKey } from '../schema/index.js';

/**
 * Where batches go. Rows are encoded the sink's way as they are made (`writer`), so a batch is
 * bytes. `write` resolves only once the rows are durably taken by the destination (file written,
 * ADX acknowledged, or kept in the dead-letter directory); a rejection means nothing of the batch
 * was taken, and the caller keeps it and tries again.
 */
export interface Sink {
  readonly name: string;
  /** A writer for the rows of `table` made from one request. */
  writer<K extends TableKey>(table: K): ChunkWriter<RowOfTable[K]>;
  /** Largest batch, in encoded bytes, worth handing over at once. */
  readonly maxBatchBytes: number;
  write(batch: Batch): Promise<void>;
  close(): Promise<void>;
}
