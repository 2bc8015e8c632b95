import type { RowOfTable, TableKey } from '../schema/index.js';

/**
 * Where batches go. `write` resolves only once the rows are durably taken by the destination
 * (file written, ADX acknowledged); a rejection means nothing of the batch was taken, and the
 * caller keeps it and tries again.
 */
export interface Sink {
  readonly name: string;
  write<K extends TableKey>(table: K, rows: RowOfTable[K][]): Promise<void>;
  close(): Promise<void>;
}
